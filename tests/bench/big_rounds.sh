#!/usr/bin/env bash
# The prune of a very big dir (≥ 15 GB, made by gen.py) against `dd bs=4M conv=fsync`, each
# from a dropped page cache, alternating over ROUNDS rounds; medians at the end. By hand, not
# in CI. Each binary prunes with its default backup, a hard link of the untouched original,
# and the original is then moved back from the backup: every run starts from the same file,
# and the dir is not made again between runs. Disk: the dir's size free (the `dd` copy).
# With MEM_LIMIT (bytes, e.g. 6442450944), every run is inside a cgroup-v1 memory group of
# that size, whose page cache is charged to it: a machine with that much memory free for the
# file, where a 20 GB file does not stay in the page cache between two reads of it.
# Usage: [MEM_LIMIT=BYTES] tests/bench/big_rounds.sh DATA_DIR ROUNDS BIN [BIN ...]
set -euo pipefail
data="$1"; rounds="$2"; shift 2
tmp="$(mktemp -d)"
in_group() { "$@"; }
if [ -n "${MEM_LIMIT:-}" ]; then
  group=/sys/fs/cgroup/memory/cw-big-rounds
  mkdir -p "$group"; echo "$MEM_LIMIT" > "$group/memory.limit_in_bytes"
  in_group() { bash -c 'echo $$ > "$0/tasks"; exec "$@"' "$group" "$@"; }
fi
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
ls -la "$data/chroma.sqlite3"
for r in $(seq 1 "$rounds"); do
  drop; t0=$(now)
  in_group dd if="$data/chroma.sqlite3" of="$data.ddcopy" bs=4M conv=fsync status=none
  t1=$(now); rm -f "$data.ddcopy"
  echo "round $r dd $(python3 -c "print(f'{$t1 - $t0:.2f}')")" | tee -a "$tmp/all"
  for bin in "$@"; do
    drop; t0=$(now)
    in_group /usr/bin/time -f "%M" -o "$tmp/rss" "$bin" prune "$data" --all --yes --json >"$tmp/out" 2>"$tmp/err"
    t1=$(now)
    python3 - "$tmp/out" "$bin" "$r" "$(python3 -c "print(f'{$t1 - $t0:.2f}')")" "$(tail -1 "$tmp/rss")" <<'PY' | tee -a "$tmp/all"
import json, sys
r = json.load(open(sys.argv[1]))
steps = ", ".join(f"{s['name']} {s['seconds']:.1f}" for s in r["steps"] if not s["skipped"])
print(f"round {sys.argv[3]} {sys.argv[2]} {sys.argv[4]}  ({r['rows_deleted']} rows, peak {int(sys.argv[5]) // 1024} MiB; {steps})")
PY
    # Put the original back: the backup is the original file itself.
    b="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["backup"])' "$tmp/out")"
    mv "$b" "$data/chroma.sqlite3"
    rm -rf "$(dirname "$b")"
  done
done
echo "medians (s):"
python3 - "$tmp/all" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    w = line.split()
    runs.setdefault(w[2], []).append(float(w[3]))
dd = statistics.median(runs.pop("dd"))
print(f"  dd {dd:.2f}")
for k, v in runs.items():
    m = statistics.median(v)
    print(f"  {k} {m:.2f} = {m / dd:.2f} x dd (per run: {', '.join(f'{x:.1f}' for x in v)})")
PY
rm -rf "$tmp"
