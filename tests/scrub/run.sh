#!/usr/bin/env bash
# Deleted means gone: on each `canaries` fixture (records with canary strings and vectors
# deleted, updated and in a deleted collection, written by real chromadb 0.4.22, 0.5.5, 0.6.3
# and 1.5.9), `scrub --all` must leave no canary string or vector in any file under the dir
# and no byte past the elements in any length.bin or data_level0.bin, `--dry-run` must change
# nothing, and the release must read every collection exactly as from the untouched copy and
# go on writing (adds, a deleted id added again, deletes) as it does there.
# Usage: tests/scrub/run.sh [BINARY]  (venvs from tests/fixtures/gen/venvs.sh)
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(realpath "${1:-$here/target/release/chroma-wal}")"
VENV_DIR="${CW_VENV_DIR:-$HOME/.cache/chroma-wal/venvs}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
scan() { python3 "$here/tests/scrub/canaries.py" scan "$1"; }
total() { python3 -c "import json,sys; t=json.loads(sys.argv[1])['total']; print(sum(t.values()))" "$1"; }
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
fail=0
for spec in canaries_v0_4_22:0.4.22 canaries_v0_5_5:0.5.5 canaries_v0_6_3:0.6.3 canaries_v1_5_9:1.5.9; do
  name="${spec%%:*}"; v="${spec##*:}"
  a="$tmp/$name.untouched"; b="$tmp/$name"
  cp -r "$here/tests/fixtures/$name" "$a"; cp -r "$here/tests/fixtures/$name" "$b"
  before="$(scan "$b")"
  if [ "$(total "$before")" = 0 ]; then echo "$name: the fixture holds no canary: the test cannot fail" >&2; fail=1; continue; fi
  sums "$b" > "$tmp/before.sums"
  "$bin" scrub --all --dry-run --json "$b" > "$tmp/plan.json" 2>/dev/null
  sums "$b" > "$tmp/after.sums"
  if ! cmp -s "$tmp/before.sums" "$tmp/after.sums"; then echo "$name: --dry-run changed files" >&2; fail=1; fi
  "$bin" scrub --all --yes --backup-dir "$tmp/backups-$name" "$b" > "$tmp/report.txt" 2>"$tmp/steps.txt" \
    || { echo "$name: scrub failed: $(tail -1 "$tmp/steps.txt")" >&2; fail=1; continue; }
  after="$(scan "$b")"
  if [ "$(total "$after")" != 0 ]; then echo "$name: left after scrub: $after" >&2; fail=1; fi
  inbackup="$(scan "$tmp/backups-$name")"
  if [ "$(total "$inbackup")" = 0 ]; then echo "$name: the backup does not hold what the scrub removed" >&2; fail=1; fi
  if ! "$VENV_DIR/cw-$v/bin/python" "$here/tests/scrub/canaries.py" same "$a" "$b" > "$tmp/same.txt" 2> >(grep -vi telemetry >&2); then
    echo "$name: $v reads or writes the scrubbed dir differently: $(cat "$tmp/same.txt")" >&2; fail=1; continue
  fi
  echo "$name ($v): canaries $(python3 -c "import json,sys; print(json.loads(sys.argv[1])['total'])" "$before") -> none; $(cat "$tmp/same.txt") read and written on alike"
done
exit "$fail"
