#!/usr/bin/env bash
# Plain-text screenshots of the explorer.
# - main, detail, confirm, result: the release binary on a copy of the demo dir in a real
#   terminal (tmux, 130x34), keys sent with send-keys, screens read with capture-pane;
# - running: a prune of the demo takes milliseconds, so that view comes from the TestBackend
#   render snapshot of the real app fed a mid-run state (tests/snapshots/tui__running_120x30.snap).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=assets/screenshots
bin=target/release/chroma-wal
[ -x "$bin" ] || cargo build --release --quiet
tmp="$(mktemp -d)"
sock="cw-shots-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$tmp"' EXIT
cp -r assets/demo "$tmp/chroma"
tmux -L "$sock" new-session -d -s s -x 130 -y 34 "cd '$tmp' && '$PWD/$bin' ./chroma --backup-dir '$tmp/backups'; sleep 60"
shot() { sleep "${2:-0.6}"; tmux -L "$sock" capture-pane -p -t s | sed 's/[[:space:]]*$//' >"$out/$1.txt"; }
shot main 1.5
tmux -L "$sock" send-keys -t s Enter; shot detail
tmux -L "$sock" send-keys -t s Enter; sleep 0.4
tmux -L "$sock" send-keys -t s a; sleep 0.4
tmux -L "$sock" send-keys -t s p; shot confirm
tmux -L "$sock" send-keys -t s y; shot result 2
python3 - tests/snapshots/tui__running_120x30.snap "$out/running.txt" <<'PY'
import json, sys
body = open(sys.argv[1]).read().split("---\n", 2)[2]
lines = [json.loads(l).rstrip() for l in body.splitlines() if l.startswith('"')]
open(sys.argv[2], "w").write("\n".join(lines).rstrip() + "\n")
PY
ls "$out"
