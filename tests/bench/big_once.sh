#!/usr/bin/env bash
# One run of the harness on a very big dir (≥ 15 GB; by hand, not in CI): info cold and warm
# against the WAL GROUP BY, the explorer's first frames, a durable copy, the plan alone
# (--dry-run), then the prune of the dir itself with its step times (it is a scratch dir made
# by gen.py: it IS pruned). Disk: about 1.6 × the dir free.
#
# `--chroma-vacuum` instead runs `chroma vacuum --force` (chromadb 1.5.9) on the dir itself,
# which it also changes for good; make the dir again with gen.py before the other run. Its
# VACUUM writes a temporary copy and a rollback journal beside it: about 1.6 × the dir free.
# Usage: tests/bench/big_once.sh DATA_DIR [--chroma-vacuum]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$1"; bin="$here/../../target/release/chroma-wal"; venvs="${CW_VENV_DIR:-$HOME/.cache/chroma-wal/venvs}"
tmp="$(mktemp -d)"
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
t() { local name=$1; shift; local t0 t1; t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$tmp/rss" "$@" >"$tmp/out" 2>"$tmp/err" || echo "$name failed: $(tail -c 300 "$tmp/err")"
  t1=$(date +%s.%N); printf '%-28s %8.2f s   peak RSS %6d KiB\n' "$name" "$(python3 -c "print($t1 - $t0)")" "$(tail -1 "$tmp/rss")"; }
ls -la "$data/chroma.sqlite3"
sqlite3 "$data/chroma.sqlite3" "SELECT COUNT(*) FROM embeddings_queue" | sed 's/^/WAL rows: /'
if [ "${2:-}" = "--chroma-vacuum" ]; then
  drop; t "chroma vacuum --force" "$venvs/cw-1.5.9/bin/chroma" vacuum --path "$data" --force
  ls -la "$data/chroma.sqlite3"; rm -rf "$tmp"; exit 0
fi
drop; t "info (cold)" "$bin" info --json "$data"
t "info (warm)" "$bin" info --json "$data"
t "sqlite3 GROUP BY (warm)" sqlite3 "$data/chroma.sqlite3" "SELECT topic, COUNT(*) FROM embeddings_queue GROUP BY topic"
tmux kill-session -t cwbig 2>/dev/null || true
tmux new-session -d -s cwbig -x 120 -y 40 "CHROMA_WAL_FRAME_LOG=$tmp/frames $bin $data"
for _ in $(seq 1 3000); do grep -q counts_frame_ms "$tmp/frames" 2>/dev/null && break; sleep 0.1; done
tmux send-keys -t cwbig q; sleep 0.3; tmux kill-session -t cwbig 2>/dev/null || true
sed 's/^/explorer /' "$tmp/frames"
drop; t "dd bs=4M conv=fsync (cold)" dd if="$data/chroma.sqlite3" of="$tmp/copy" bs=4M conv=fsync; rm -f "$tmp/copy"
t "prune --dry-run (warm)" "$bin" prune "$data" --all --dry-run
drop; t "chroma-wal prune (cold)" "$bin" prune "$data" --all --yes --no-backup --json
python3 - "$tmp/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("  steps: " + ", ".join(f"{s['name']} {s['seconds']:.1f} s" for s in r["steps"] if not s["skipped"]))
print(f"  {r['sqlite_bytes_before'] / 2**30:.2f} GiB -> {r['sqlite_bytes_after'] / 2**30:.2f} GiB, {r['rows_deleted']} rows deleted")
PY
rm -rf "$tmp"
