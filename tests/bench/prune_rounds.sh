#!/usr/bin/env bash
# The prune against the rewrites it must beat, alternating, medians: chroma-wal's prune (by
# copy, no backup), `chroma vacuum --force` (chromadb 1.5.9), the sqlite3 CLI's VACUUM INTO of
# the whole file, and a durable copy (dd conv=fsync). Each run gets a fresh copy, synced.
# Usage: tests/bench/prune_rounds.sh DATA_DIR [ROUNDS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$1"; rounds="${2:-3}"
bin="$here/../../target/release/chroma-wal"
venvs="${CW_VENV_DIR:-$HOME/.cache/chroma-wal/venvs}"
work="$(dirname "$data")/rounds-work"
res="$(mktemp)"
fresh() { rm -rf "$work"; cp -r "$data" "$work"; sync; }
run() {
  local name=$1; shift
  fresh
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work.rss" "$@" >/dev/null 2>&1 || echo "$name failed" >&2
  t1=$(date +%s.%N)
  echo "$name $(python3 -c "print($t1 - $t0)") $(tail -1 "$work.rss")" >>"$res"
}
for _ in $(seq 1 "$rounds"); do
  run prune "$bin" prune "$work" --all --yes --no-backup
  run chroma-vacuum "$venvs/cw-1.5.9/bin/chroma" vacuum --path "$work" --force
  run vacuum-into sqlite3 "$work/chroma.sqlite3" "VACUUM INTO '$work/into.sqlite3'"
  run dd-fsync dd if="$work/chroma.sqlite3" of="$work/copy" bs=4M conv=fsync
done
rm -rf "$work" "$work.rss"
python3 - "$res" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for name in dict.fromkeys(r[0] for r in rows):
    t = [float(r[1]) for r in rows if r[0] == name]
    m = [int(r[2]) for r in rows if r[0] == name]
    med[name] = statistics.median(t)
    print(f"{name:15s} median {med[name]:7.2f} s  ({', '.join(f'{x:.2f}' for x in t)})  peak RSS {max(m) // 1024} MiB")
p = med["prune"]
for other in ("chroma-vacuum", "vacuum-into", "dd-fsync"):
    if other in med:
        print(f"prune / {other} = {p / med[other]:.2f} x")
PY
