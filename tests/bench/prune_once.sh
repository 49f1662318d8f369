#!/usr/bin/env bash
# One cold prune of a big dir (made by gen.py), with its CPU time: wall, user and system
# seconds and peak RSS (GNU time), the machine's jiffies over the run (steal and iowait
# among them), and the steps. The original is put back from the prune's hard-link backup,
# as in big_rounds.sh. With MEM (bytes) the prune runs inside a cgroup-v1 memory group of
# that size. By hand, not in CI; root (it drops the page cache).
# Usage: tests/bench/prune_once.sh DATA_DIR BIN [MEM]
set -euo pipefail
data="$1"; bin="$2"; mem="${3:-}"
g=/sys/fs/cgroup/memory/cw-prune-once; mkdir -p "$g"
if [ -n "$mem" ]; then echo "$mem" > "$g/memory.limit_in_bytes"; else echo -1 > "$g/memory.limit_in_bytes"; fi
tmp="$(mktemp -d)"
sync; echo 3 > /proc/sys/vm/drop_caches
s0=($(head -1 /proc/stat))
bash -c 'echo $$ > "$0/tasks"; exec "$@"' "$g" /usr/bin/time \
  -f "%e s wall, %U user, %S sys, peak %M KiB" -o "$tmp/time" \
  "$bin" prune "$data" --all --yes --json > "$tmp/out" 2> "$tmp/err" || { cat "$tmp/err"; exit 1; }
s1=($(head -1 /proc/stat))
cat "$tmp/time"
echo "machine jiffies: user $((s1[1]-s0[1])) sys $((s1[3]-s0[3])) idle $((s1[4]-s0[4])) iowait $((s1[5]-s0[5])) steal $((s1[8]-s0[8]))"
python3 - "$tmp/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(", ".join("%s %.1f" % (s["name"], s["seconds"]) for s in r["steps"] if not s["skipped"]))
PY
b="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["backup"])' "$tmp/out")"
mv "$b" "$data/chroma.sqlite3"; rm -rf "$(dirname "$b")" "$tmp"
