#!/usr/bin/env bash
# What `records --jsonl` costs against its floor: the sqlite3 CLI selecting the same ids,
# documents and metadata, plus a `cat` of data_level0.bin, alternating round by round; warm
# (page cache as the previous command left it) and cold (caches dropped before each command;
# needs root). Medians, peak RSS, and the ratio in the same rounds.
# Usage: tests/bench/records_rounds.sh DATA_DIR COLLECTION ROUNDS BINARY
set -euo pipefail
dir="$1"; coll="$2"; rounds="${3:-5}"; bin="$4"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
db="$dir/chroma.sqlite3"
seg=$(sqlite3 "file:$db?mode=ro" "SELECT s.id FROM segments s JOIN collections c ON c.id = s.collection WHERE (c.name = '$coll' OR c.id = '$coll') AND s.scope = 'METADATA' LIMIT 1")
vseg=$(sqlite3 "file:$db?mode=ro" "SELECT s.id FROM segments s JOIN collections c ON c.id = s.collection WHERE (c.name = '$coll' OR c.id = '$coll') AND s.scope = 'VECTOR' LIMIT 1")
sql="SELECT e.embedding_id, m.key, m.string_value, m.int_value, m.float_value FROM embeddings e LEFT JOIN embedding_metadata m ON m.id = e.id WHERE e.segment_id = '$seg' ORDER BY e.id"
floor() { sqlite3 "file:$db?mode=ro" "$sql" > /dev/null; cat "$dir/$vseg/data_level0.bin" > /dev/null; }
t() { local name=$1; shift; /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" >/dev/null; cat "$tmp/t" >> "$tmp/$name"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
export -f floor; export db sql dir vseg
for _ in $(seq 1 "$rounds"); do
  t floor_warm bash -c floor
  t records_warm "$bin" records --jsonl --collection "$coll" "$dir"
  drop; t floor_cold bash -c floor
  drop; t records_cold "$bin" records --jsonl --collection "$coll" "$dir"
done
med() { sort -n -k"$2" "$tmp/$1" | awk -v c="$2" '{a[NR]=$c} END {print a[int((NR+1)/2)]}'; }
echo "$dir, collection $coll: $rounds rounds"
for n in floor_warm records_warm floor_cold records_cold; do
  printf '%-13s median %6s s, peak RSS %7s KiB\n' "$n" "$(med $n 1)" "$(med $n 2)"
done
for w in warm cold; do
  awk -v d="$(med records_$w 1)" -v c="$(med floor_$w 1)" -v w=$w \
    'BEGIN {printf "%s: records --jsonl / floor = %.2f x\n", w, d / c}'
done
