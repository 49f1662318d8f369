#!/usr/bin/env bash
# Install what tests/bench/compare.sh compares against, in uv venvs beside the fixtures' ones:
# chromadb 1.5.9 (`chroma vacuum`, via tests/fixtures/gen/venvs.sh) and chromadb-ops 0.1.5
# (`chops wal clean`). typer 0.9, which chops pins, breaks with click 8.2, so click is held
# below it. Also the `time` and `tmux` packages when apt is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venvs="${CW_VENV_DIR:-$HOME/.cache/chroma-wal/venvs}"
if ! command -v /usr/bin/time >/dev/null || ! command -v tmux >/dev/null || ! command -v sqlite3 >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq time tmux sqlite3) >/dev/null 2>&1 || echo "apt-get failed: install time, tmux and sqlite3 yourself" >&2
fi
bash "$here/../fixtures/gen/venvs.sh"
if [ ! -x "$venvs/cw-chops/bin/chops" ]; then
  uv venv -q -p 3.11 "$venvs/cw-chops"
  VIRTUAL_ENV="$venvs/cw-chops" uv pip install -q 'chromadb-ops[core]==0.1.5' 'click<8.2'
fi
echo "bench tools ready in $venvs"
