#!/usr/bin/env bash
# The worst wait of a live writer's commits while chroma-wal reads the dir, cold cache.
# Usage: tests/bench/live_probe.sh DATA_DIR [BINARY ...]   (DATA_DIR is copied, never changed)
# For each binary (default: target/release/chroma-wal) and each read path (info, info --deep,
# rows of the biggest topic), it drops the page cache (root only), starts the probe writer,
# runs the read, and prints the probe's longest commit wait.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$1"; shift
bins=("$@"); [ ${#bins[@]} -gt 0 ] || bins=("$here/../../target/release/chroma-wal")
work="$(dirname "$data")/live-work"; rm -rf "$work"; cp -r "$data" "$work"
db="$work/chroma.sqlite3"
topic="$(sqlite3 "$db" 'SELECT topic FROM embeddings_queue ORDER BY seq_id DESC LIMIT 1')"
drop() { sync; [ "$(id -u)" = 0 ] && echo 3 > /proc/sys/vm/drop_caches || true; }
for bin in "${bins[@]}"; do
  for what in info deep rows; do
    drop
    out="$(mktemp)"
    python3 "$here/live_probe.py" "$db" 30 "$out" &
    probe=$!
    while [ ! -e "$out.ready" ]; do sleep 0.05; done
    sleep 0.5
    t0=$(date +%s.%N)
    case $what in
      info) "$bin" info --json "$work" >/dev/null || true ;;
      deep) "$bin" info --json --deep "$work" >/dev/null 2>&1 || true ;;
      rows) "$bin" rows "$work" --topic "$topic" --jsonl --limit 2000 >/dev/null 2>&1 || true ;;
    esac
    t1=$(date +%s.%N)
    sleep 0.5
    touch "$out.stop"; wait "$probe" || true
    read -r worst commits <"$out"
    printf '%-50s %-5s read %6.2f s   worst commit wait %8.1f ms over %d commits\n' \
      "$bin" "$what" "$(python3 -c "print($t1 - $t0)")" "$worst" "$commits"
    rm -f "$out" "$out.ready" "$out.stop"
  done
done
