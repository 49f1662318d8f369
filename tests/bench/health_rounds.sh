#!/usr/bin/env bash
# What the health checks cost `info` (no --deep): two binaries (before and after a change)
# and the sqlite3 GROUP BY over the WAL as the steady baseline, alternating round by round;
# medians, peak RSS, and each binary as a ratio to the baseline of the same rounds.
# Usage: tests/bench/health_rounds.sh DATA_DIR ROUNDS BEFORE_BINARY AFTER_BINARY
set -euo pipefail
dir="$1"; rounds="${2:-7}"; before="$3"; after="$4"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
t() { local name=$1; shift; /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" >/dev/null; cat "$tmp/t" >> "$tmp/$name"; }
for _ in $(seq 1 "$rounds"); do
  t before "$before" info --json "$dir"
  t groupby sqlite3 "$dir/chroma.sqlite3" "SELECT topic, COUNT(*) FROM embeddings_queue GROUP BY topic"
  t after "$after" info --json "$dir"
done
med() { sort -n -k"$2" "$tmp/$1" | awk -v c="$2" '{a[NR]=$c} END {print a[int((NR+1)/2)]}'; }
for n in before after groupby; do
  printf '%-8s median %s s, peak RSS %s KiB\n' "$n" "$(med $n 1)" "$(med $n 2)"
done
awk -v a="$(med before 1)" -v b="$(med after 1)" -v g="$(med groupby 1)" \
  'BEGIN {printf "before / GROUP BY = %.2f x, after / GROUP BY = %.2f x, after / before = %.2f x\n", a / g, b / g, b / a}'
