#!/usr/bin/env bash
# What `info --deep` costs against reading the index files it must read: `cat` of every
# data_level0.bin and index_metadata.pickle of the dir, alternating with the binary round by
# round, warm (page cache as the previous command left it) and cold (caches dropped before
# each command; needs root). Medians, peak RSS, and the binary as a ratio to cat in the same
# rounds. A second binary (the one before a change) may be given to compare.
# Usage: tests/bench/truth_rounds.sh DATA_DIR ROUNDS BINARY [BEFORE_BINARY]
set -euo pipefail
dir="$1"; rounds="${2:-5}"; bin="$3"; before="${4:-}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
mapfile -t files < <(find "$dir" -mindepth 2 -maxdepth 2 \( -name data_level0.bin -o -name index_metadata.pickle \))
t() { local name=$1; shift; /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" >/dev/null; cat "$tmp/t" >> "$tmp/$name"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
for _ in $(seq 1 "$rounds"); do
  t cat_warm cat "${files[@]}"
  t deep_warm "$bin" info --deep --json "$dir"
  if [ -n "$before" ]; then t before_warm "$before" info --deep --json "$dir"; fi
  drop; t cat_cold cat "${files[@]}"
  drop; t deep_cold "$bin" info --deep --json "$dir"
  if [ -n "$before" ]; then drop; t before_cold "$before" info --deep --json "$dir"; fi
done
med() { sort -n -k"$2" "$tmp/$1" | awk -v c="$2" '{a[NR]=$c} END {print a[int((NR+1)/2)]}'; }
echo "$dir: ${#files[@]} index files, $(du -cb "${files[@]}" | tail -1 | cut -f1) bytes; $rounds rounds"
for n in cat_warm deep_warm cat_cold deep_cold ${before:+before_warm before_cold}; do
  printf '%-12s median %6s s, peak RSS %7s KiB (all: %s)\n' "$n" "$(med $n 1)" "$(med $n 2)" "$(cut -d' ' -f1 "$tmp/$n" | tr '\n' ' ')"
done
for w in warm cold; do
  awk -v d="$(med deep_$w 1)" -v c="$(med cat_$w 1)" -v w=$w \
    'BEGIN {printf "%s: info --deep / cat = %.2f x\n", w, d / c}'
  if [ -n "$before" ]; then
    awk -v d="$(med deep_$w 1)" -v b="$(med before_$w 1)" -v w=$w \
      'BEGIN {printf "%s: info --deep / before = %.2f x\n", w, d / b}'
  fi
done
