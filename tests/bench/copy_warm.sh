#!/usr/bin/env bash
# The prune's CPU, apart from the disk: a dir small enough to stay in the page cache (made
# by gen.py, e.g. 1.5 M rows: 2.9 GiB), read once to warm the cache, then pruned by each
# binary in turn over ROUNDS rounds, the original put back from the hard-link backup after
# each run. Prints each run's steps, wall, user and system seconds, and the medians of the
# delete step (the copy) and of user + system time per binary. By hand, not in CI.
# Usage: tests/bench/copy_warm.sh DATA_DIR ROUNDS BIN [BIN ...]
set -euo pipefail
data="$1"; rounds="$2"; shift 2
tmp="$(mktemp -d)"
cat "$data/chroma.sqlite3" > /dev/null
for r in $(seq 1 "$rounds"); do
  for bin in "$@"; do
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$bin" prune "$data" --all --yes --json >"$tmp/out" 2>"$tmp/err"
    python3 - "$tmp/out" "$bin" "$r" "$(cat "$tmp/time")" <<'PY' | tee -a "$tmp/all"
import json, sys
r = json.load(open(sys.argv[1]))
wall, user, sys_, rss = sys.argv[4].split()
steps = {s["name"]: s["seconds"] for s in r["steps"] if not s["skipped"]}
print(f"{sys.argv[2]} round {sys.argv[3]}: delete {steps.get('delete', 0):.2f} verify {steps.get('verify', 0):.2f} wall {wall} user {user} sys {sys_} cpu {float(user) + float(sys_):.2f} peak {int(rss) // 1024} MiB")
PY
    b="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["backup"])' "$tmp/out")"
    mv "$b" "$data/chroma.sqlite3"
    rm -rf "$(dirname "$b")"
  done
done
python3 - "$tmp/all" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    w = line.split()
    d = dict(zip(w[3::2], w[4::2]))
    runs.setdefault(w[0], []).append((float(d["delete"]), float(d["cpu"]), float(d["wall"])))
for k, v in runs.items():
    med = lambda i: statistics.median(x[i] for x in v)
    print(f"{k}: median delete {med(0):.2f} s, cpu {med(1):.2f} s, wall {med(2):.2f} s over {len(v)} runs")
PY
rm -rf "$tmp"
