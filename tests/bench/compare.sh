#!/usr/bin/env bash
# Time chroma-wal against the alternatives on the same data, alternating A B C ... per round.
# Usage: tests/bench/compare.sh DATA_DIR [ROUNDS]   (DATA_DIR from tests/bench/gen.py; it is never modified)
# Each run gets a fresh copy of DATA_DIR made outside the timed region (so every run starts
# with the file in the page cache, as right after a copy), followed by `sync`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
data="$1"; rounds="${2:-3}"
bin="$repo/target/release/chroma-wal"
venvs="${CW_VENV_DIR:-$HOME/.cache/chroma-wal/venvs}"
work="$(dirname "$data")/bench-work"
results="$(mktemp)"
[ -x "$bin" ] || (cd "$repo" && cargo build --release --quiet)
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)"; exit 2; }

# The DELETE that Chroma's rule allows, as plain SQL for the sqlite3 CLI.
sql="$(mktemp)"
"$bin" prune "$data" --all --dry-run --json | python3 -c '
import json, sys
plan = json.load(sys.stdin)
print("BEGIN;")
for t in plan["topics"]:
    if t["rows_deleted"] and t["prune_bound"] is not None:
        print("DELETE FROM embeddings_queue WHERE topic = %s AND seq_id < %d;" % (json.dumps(t["topic"]).replace("\"", "\x27"), t["prune_bound"]))
print("COMMIT;")
print("VACUUM;")' > "$sql"

fresh() { rm -rf "$work" "$work.bak"; cp -r "$data" "$work"; sync; }
run() {  # name command...
  local name=$1; shift
  fresh
  local t0 t1
  t0=$(date +%s.%N)
  local rc=0
  /usr/bin/time -f "%M" -o "$work.rss" "$@" >"$work.out" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { echo "$name exited $rc: $(tail -c 300 "$work.out" | tr '\n' ' ')" >&2; name="$name(exit-$rc)"; }
  t1=$(date +%s.%N)
  echo "$name $(python3 -c "print($t1 - $t0)") $(tail -1 "$work.rss")" >>"$results"
}

chops="$venvs/cw-chops/bin/chops"   # tests/bench/setup.sh installs chromadb-ops 0.1.5 there
for r in $(seq 1 "$rounds"); do
  run chroma-wal "$bin" prune "$work" --all --yes --no-backup
  run chroma-wal+backup "$bin" prune "$work" --all --yes --backup-dir "$work.bak"
  run chroma-wal-in-place "$bin" prune "$work" --all --yes --no-backup --in-place
  run sqlite3-cli sqlite3 "$work/chroma.sqlite3" ".read $sql"
  if [ -x "$venvs/cw-1.5.9/bin/chroma" ]; then
    run chroma-vacuum-1.5.9 "$venvs/cw-1.5.9/bin/chroma" vacuum --path "$work" --force
  fi
  if [ -x "$chops" ]; then
    run chops-wal-clean "$chops" wal clean "$work" --yes
  fi
  run sqlite3-vacuum-into sqlite3 "$work/chroma.sqlite3" "VACUUM INTO '$work/into.sqlite3'"
  run dd-fsync dd if="$work/chroma.sqlite3" of="$work/copy" bs=4M conv=fsync
  run info "$bin" info --json "$work"
  run sqlite3-groupby sqlite3 "$work/chroma.sqlite3" "SELECT topic, COUNT(*) FROM embeddings_queue GROUP BY topic"
  if command -v tmux >/dev/null; then
    # The explorer's first frames, from process start (CHROMA_WAL_FRAME_LOG), in tmux.
    rm -f "$work.frames"
    tmux kill-session -t cwbench 2>/dev/null || true
    tmux new-session -d -s cwbench -x 120 -y 40 "CHROMA_WAL_FRAME_LOG=$work.frames $bin $work"
    for _ in $(seq 1 600); do grep -q counts_frame_ms "$work.frames" 2>/dev/null && break; sleep 0.05; done
    tmux send-keys -t cwbench q; sleep 0.2; tmux kill-session -t cwbench 2>/dev/null || true
    # Stored in seconds like every other row, under "frame:<which>" (printed in ms).
    while read -r k v; do echo "frame:${k%_frame_ms} $(python3 -c "print($v / 1000)") 0" >>"$results"; done <"$work.frames"
  fi
done
rm -rf "$work" "$work.bak" "$work.rss" "$work.frames" "$work.out" "$sql"
python3 - "$results" "$(du -sm "$data/chroma.sqlite3" | cut -f1)" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for name in dict.fromkeys(r[0] for r in rows):
    ts = [float(r[1]) for r in rows if r[0] == name]
    rss = max(int(r[2]) for r in rows if r[0] == name)
    med[name] = statistics.median(ts)
    if name.startswith("frame:"):
        print(f"{name:22s} median {med[name]*1000:7.0f} ms (runs: {', '.join(f'{t*1000:.0f}' for t in ts)})")
        continue
    print(f"{name:22s} median {med[name]:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ts)})  peak RSS {rss/1024:.0f} MiB")
print(f"chroma.sqlite3: {sys.argv[2]} MiB")
def ratio(a, b):
    if a in med and b in med:
        print(f"{a} / {b} = {med[a] / med[b]:.2f}")
ratio("chroma-wal", "chroma-vacuum-1.5.9")
ratio("chroma-wal", "chops-wal-clean")
ratio("chroma-wal", "chroma-wal-in-place")
ratio("chroma-wal-in-place", "chroma-vacuum-1.5.9")
ratio("chroma-wal", "dd-fsync")
ratio("chroma-wal", "sqlite3-cli")
if "chroma-wal+backup" in med:
    print(f"chroma-wal+backup / (chroma-wal + dd-fsync) = {med['chroma-wal+backup'] / (med['chroma-wal'] + med['dd-fsync']):.2f}")
ratio("info", "sqlite3-groupby")
ratio("frame:counts", "sqlite3-groupby")
PY
rm -f "$results"
