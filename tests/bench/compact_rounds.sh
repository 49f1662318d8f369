#!/usr/bin/env bash
# compact against chroma-hnswlib building the same live vectors with the same M,
# ef_construction and thread count, alternating, ROUNDS rounds; peak RSS of compact from
# /usr/bin/time. Each compact runs on a fresh copy of DIR (the copy is not timed).
# Usage: compact_rounds.sh DIR ROUNDS [BIN [COLLECTION]]
# COLLECTION rebuilds that collection's index (`--collection`, ghosts or not) instead of every
# index with ghosts (`--all`): for a dir without deletions, whose indexes are alike (the
# baseline builds the largest).
set -euo pipefail
dir="$1"; rounds="${2:-3}"; bin="${3:-target/release/chroma-wal}"
sel=(--all); [ -n "${4:-}" ] && sel=(--collection "$4")
py="${CW_VENV_DIR:-$HOME/.cache/chroma-wal/venvs}/cw-0.4.22/bin/python"
here="$(cd "$(dirname "$0")" && pwd)"
threads="$(nproc)"
work="$(mktemp -d "$(dirname "$dir")/compact-bench.XXXX")"
trap 'rm -rf "$work"' EXIT
for r in $(seq 1 "$rounds"); do
  base="$("$py" "$here/hnswlib_build.py" "$dir" "$threads")"
  echo "round $r hnswlib $base"
  rm -rf "$work/c" && cp -r "$dir" "$work/c"
  sync
  /usr/bin/time -f "rss_kb=%M wall=%e" "$bin" compact "$work/c" "${sel[@]}" --yes --no-backup --json \
    >"$work/out.json" 2>"$work/err.txt"
  python3 - "$work/out.json" "$work/err.txt" "$r" <<'PY'
import json, re, sys
o = json.load(open(sys.argv[1])); err = open(sys.argv[2]).read()
rss = int(re.search(r"rss_kb=(\d+)", err).group(1)); wall = float(re.search(r"wall=([\d.]+)", err).group(1))
i = o["indexes"][0]
print(f"round {sys.argv[3]} compact wall={wall:.2f} index_seconds={i['seconds']:.2f} rss_mb={rss/1024:.0f} "
      f"bytes_after={i['bytes_after']} ghosts_removed={i['ghosts_removed']} elements_after={i['elements_after']} "
      f"recall={i['recall_after']:.4f} recall_before={i['recall_before']}")
PY
  grep -E "^(rebuild|swap|preflight): done" "$work/err.txt" | sed "s/^/round $r   /"
done
