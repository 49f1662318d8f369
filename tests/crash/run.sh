#!/usr/bin/env bash
# The crash test on a small fixed set of seeds, one per release: in the runs of BENCHMARKS.md
# each of these killed its writer mid-persist and left one collection its release cannot read
# (kill points move a little from run to run; the test fails if no writer is killed at all,
# and every assertion holds wherever the kill lands). Checks outside this
# repo run many more: python3 tests/crash/crash.py run --bin BIN --seeds 1-200
# Needs the release binary (cargo build --release), strace, and the venvs of
# tests/fixtures/gen/venvs.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
BIN="${CHROMA_WAL_BIN:-$repo/target/release/chroma-wal}"
[ -x "$BIN" ] || { echo "no binary at $BIN: run cargo build --release" >&2; exit 2; }
command -v strace >/dev/null || { echo "strace is needed (apt-get install strace)" >&2; exit 2; }
python3 "$here/crash.py" run --bin "$BIN" \
  --cases "${CW_CRASH_CASES:-0.4.22:5,0.5.5:5,0.6.3:5,1.5.9:5}"
