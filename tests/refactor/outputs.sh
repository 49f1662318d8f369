#!/usr/bin/env bash
# Every machine-readable output of one binary on every fixture, the demo and any extra dirs,
# into OUT_DIR, so two binaries (before and after a change that must not change behaviour)
# can be compared with `diff -r`. Prunes run on copies; what can differ from run to run
# (seconds, temporary paths, backup names) is blanked out.
# Usage: tests/refactor/outputs.sh BINARY OUT_DIR [EXTRA_DIR ...]
set -euo pipefail
bin="$(realpath "$1")"; out="$2"; shift 2
here="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$out"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
scrub() {  # file: seconds, elapsed times and temporary paths vary run to run
  sed -E -e 's#"(seconds|elapsed|duration)[a-z_]*": [0-9.e-]+#"\1": 0#g' \
         -e 's#done in [0-9.]+ (ms|s)#done in T#g' -e 's#[0-9.]+ [KMGT]iB free#N free#g' \
         -e 's#"(fs_free|available)[a-z_]*": [0-9]+#"\1": 0#g' \
         -e "s#$tmp#TMP#g" -e 's#[0-9]{8}T[0-9]{6}[^"/ ]*#STAMP#g' "$1"
}
dirs=("$here"/tests/fixtures/*/ "$here/assets/demo" "$@")
for src in "${dirs[@]}"; do
  [ -f "$src/chroma.sqlite3" ] || continue
  name="$(basename "$src")"
  d="$tmp/$name"; rm -rf "$d"; cp -r "$src" "$d"
  "$bin" info --json "$d" > "$tmp/o" 2>/dev/null || true; scrub "$tmp/o" > "$out/$name.info.json"
  "$bin" info --json --deep "$d" > "$tmp/o" 2>/dev/null || true; scrub "$tmp/o" > "$out/$name.info-deep.json"
  "$bin" info "$d" > "$tmp/o" 2>/dev/null || true; scrub "$tmp/o" > "$out/$name.info.txt"
  "$bin" prune --all --orphan-dirs --dry-run --json "$d" > "$tmp/o" 2>&1 || true; scrub "$tmp/o" > "$out/$name.plan.json"
  for c in $(python3 -c "import json,sys; [print(c['id']) for c in json.load(open(sys.argv[1]))['collections']]" "$out/$name.info.json" 2>/dev/null); do
    "$bin" rows --collection "$c" --jsonl "$d" > "$tmp/o" 2>&1 || true; scrub "$tmp/o" > "$out/$name.rows.$c.jsonl"
  done
  "$bin" prune --all --orphan-dirs --yes --no-backup --json "$d" > "$tmp/o" 2>&1 || true; scrub "$tmp/o" > "$out/$name.prune.json"
  "$bin" info --json "$d" > "$tmp/o" 2>/dev/null || true; scrub "$tmp/o" > "$out/$name.after.json"
  rm -rf "$d"
done
echo "$(ls "$out" | wc -l) outputs in $out"
