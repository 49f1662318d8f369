#!/usr/bin/env bash
# A dir of many collections: `chroma-wal info --json` against the stock-tools floor for the
# same facts (the sqlite3 CLI reading the catalog joined with max_seq_id, plus the WAL
# GROUP BY, plus `du -sb` of the dir), alternating, medians; then the explorer's first
# frames (CHROMA_WAL_FRAME_LOG, in tmux) and the time a few keys take at that size.
# Usage: tests/bench/many_rounds.sh DATA_DIR [ROUNDS] [BINARY]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$1"; rounds="${2:-3}"; bin="${3:-$here/../../target/release/chroma-wal}"
res="$(mktemp)"; tmp="$(mktemp -d)"
t() { local name=$1; shift; local t0 t1; t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$tmp/rss" "$@" >/dev/null 2>&1; t1=$(date +%s.%N)
  echo "$name $(python3 -c "print($t1 - $t0)") $(tail -1 "$tmp/rss")" >>"$res"; }
floor() {
  sqlite3 "$data/chroma.sqlite3" "SELECT c.id, c.name, s.id, s.scope, m.seq_id FROM collections c JOIN segments s ON s.collection = c.id LEFT JOIN max_seq_id m ON m.segment_id = s.id" >/dev/null
  sqlite3 "$data/chroma.sqlite3" "SELECT topic, COUNT(*) FROM embeddings_queue GROUP BY topic" >/dev/null
  du -sb "$data" >/dev/null
}
export -f floor; export data
for _ in $(seq 1 "$rounds"); do
  t info "$bin" info --json "$data"
  t floor bash -c floor
done
for _ in $(seq 1 "$rounds"); do
  rm -f "$tmp/frames"
  tmux kill-session -t cwmany 2>/dev/null || true
  tmux new-session -d -s cwmany -x 120 -y 40 "CHROMA_WAL_FRAME_LOG=$tmp/frames $bin $data"
  for _ in $(seq 1 1200); do grep -q counts_frame_ms "$tmp/frames" 2>/dev/null && break; sleep 0.05; done
  # Keys at this size: mark all, sort, filter; each must come back at once.
  t0=$(date +%s.%N); tmux send-keys -t cwmany a s s s / u s e r - 1 9 9 Enter; sleep 0.3
  tmux send-keys -t cwmany q; sleep 0.3; tmux kill-session -t cwmany 2>/dev/null || true
  while read -r k v; do echo "frame:${k%_frame_ms} $(python3 -c "print($v / 1000)") 0" >>"$res"; done <"$tmp/frames"
done
python3 - "$res" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for name in dict.fromkeys(r[0] for r in rows):
    ts = [float(r[1]) for r in rows if r[0] == name]
    med[name] = statistics.median(ts)
    rss = max(int(r[2]) for r in rows if r[0] == name)
    unit = (1000, "ms") if name.startswith("frame:") else (1, "s")
    print(f"{name:22s} median {med[name]*unit[0]:8.2f} {unit[1]}  (runs: {', '.join(f'{t*unit[0]:.2f}' for t in ts)})" + ("" if name.startswith("frame:") else f"  peak RSS {rss/1024:.0f} MiB"))
if "info" in med and "floor" in med:
    print(f"info / floor = {med['info'] / med['floor']:.2f}")
PY
rm -rf "$tmp" "$res"
