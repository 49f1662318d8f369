#!/usr/bin/env bash
# Time `info` (with the pickles validated whole) against the sqlite3 GROUP BY over the WAL,
# alternating round by round, and `info --deep`; print medians and ratios.
# Usage: tests/bench/info_rounds.sh DATA_DIR [ROUNDS] [BINARY]
set -euo pipefail
dir="$1"; rounds="${2:-5}"; bin="${3:-target/release/chroma-wal}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
t() { local name=$1; shift; /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" >/dev/null; echo "$(cat "$tmp/t")" >> "$tmp/$name"; }
for _ in $(seq 1 "$rounds"); do
  t info "$bin" info --json "$dir"
  t groupby sqlite3 "$dir/chroma.sqlite3" "SELECT topic, COUNT(*) FROM embeddings_queue GROUP BY topic"
  t deep "$bin" info --json --deep "$dir"
done
med() { sort -n "$tmp/$1" | awk -v c="$2" '{a[NR]=$c} END {print a[int((NR+1)/2)]}'; }
for n in info groupby deep; do printf '%-8s median %s s, peak RSS %s KiB\n' "$n" "$(med $n 1)" "$(med $n 2)"; done
awk -v a="$(med info 1)" -v b="$(med groupby 1)" 'BEGIN {printf "info / GROUP BY = %.2f x\n", a / b}'
