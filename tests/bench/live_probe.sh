#!/usr/bin/env bash
# The worst wait of a live writer's commits while chroma-wal reads the dir, cold cache.
# Usage: tests/bench/live_probe.sh DATA_DIR [BINARY ...]   (DATA_DIR is copied, never changed)
# For each binary (default: target/release/chroma-wal) and each read path (info, info --deep,
# rows of the biggest topic, records of the biggest collection, the explorer until its WAL
# counts are on screen), it drops the page cache (root only), starts the probe writer, runs the
# read, and prints the probe's longest commit wait. READS="info deep" picks some of them;
# the baselines are READS="none cat groupby" (no reader, `cat` of the file, one GROUP BY).
# ROUNDS=N (default 1) repeats everything, binaries alternating, and prints each median.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$1"; shift
bins=("$@"); [ ${#bins[@]} -gt 0 ] || bins=("$here/../../target/release/chroma-wal")
work="$(dirname "$data")/live-work"; rm -rf "$work"; cp -r "$data" "$work"
db="$work/chroma.sqlite3"
topic="$(sqlite3 "$db" 'SELECT topic FROM embeddings_queue ORDER BY seq_id DESC LIMIT 1')"
coll="${topic##*/}"
frames="$(mktemp)"
res="$(mktemp)"
drop() { sync; [ "$(id -u)" = 0 ] && echo 3 > /proc/sys/vm/drop_caches || true; }
for _ in $(seq 1 "${ROUNDS:-1}"); do
for bin in "${bins[@]}"; do
  for what in ${READS:-info deep rows records explorer}; do
    drop
    out="$(mktemp)"
    python3 "$here/live_probe.py" "$db" 30 "$out" &
    probe=$!
    while [ ! -e "$out.ready" ]; do sleep 0.05; done
    sleep 0.5
    t0=$(date +%s.%N)
    case $what in
      none) sleep 1 ;;
      cat) cat "$db" >/dev/null ;;
      groupby) sqlite3 -cmd ".timeout 5000" "$db" "SELECT topic, COUNT(*) FROM embeddings_queue GROUP BY topic" >/dev/null || true ;;
      info) "$bin" info --json "$work" >/dev/null || true ;;
      deep) "$bin" info --json --deep "$work" >/dev/null 2>&1 || true ;;
      rows) "$bin" rows "$work" --topic "$topic" --jsonl --limit 2000 >/dev/null 2>&1 || true ;;
      records) "$bin" records "$work" --collection "$coll" --jsonl --limit 2000 >/dev/null 2>&1 || true ;;
      explorer)
        rm -f "$frames"; tmux kill-session -t cwlive 2>/dev/null || true
        tmux new-session -d -s cwlive -x 120 -y 40 "CHROMA_WAL_FRAME_LOG=$frames $bin $work"
        for _ in $(seq 1 1200); do grep -q counts_frame_ms "$frames" 2>/dev/null && break; sleep 0.05; done
        tmux send-keys -t cwlive q; sleep 0.2; tmux kill-session -t cwlive 2>/dev/null || true ;;
    esac
    t1=$(date +%s.%N)
    sleep 0.5
    touch "$out.stop"; wait "$probe" || true
    read -r worst commits <"$out"
    printf '%-50s %-5s read %6.2f s   worst commit wait %8.1f ms over %d commits\n' \
      "$bin" "$what" "$(python3 -c "print($t1 - $t0)")" "$worst" "$commits"
    echo "$bin $what $worst $(python3 -c "print($t1 - $t0)")" >>"$res"
    rm -f "$out" "$out.ready" "$out.stop"
  done
done
done
python3 - "$res" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for key in dict.fromkeys((r[0], r[1]) for r in rows):
    w = [float(r[2]) for r in rows if (r[0], r[1]) == key]
    t = [float(r[3]) for r in rows if (r[0], r[1]) == key]
    print(f"median {key[1]:9s} worst wait {statistics.median(w):7.1f} ms ({', '.join(f'{x:.1f}' for x in w)})  read {statistics.median(t):.2f} s  {key[0]}")
PY
rm -f "$res"
