#!/usr/bin/env bash
# Every picture of the explorer, from the current release binary in a real terminal.
# tmux runs the binary (130x34), send-keys types, capture-pane -e reads the screen with its
# colours; ansi2svg.py draws that as SVG (xterm's palette) and the plain text goes beside it.
# - main, detail (the segments pane), confirm, result, rows, row, space: on a copy of the demo dir;
# - running: on a bigger dir made by tests/bench/gen.py (the demo prunes in milliseconds),
#   captured while the prune runs.
# Needs tmux and python3. Usage: bash assets/screenshots/make.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=assets/screenshots
bin=target/release/chroma-wal
[ -x "$bin" ] || cargo build --release --quiet
tmp="$(mktemp -d)"
sock="cw-shots-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$tmp"' EXIT
W=130 H=34

start() {  # dir
  tmux -L "$sock" kill-server 2>/dev/null || true
  tmux -L "$sock" new-session -d -s s -x $W -y $H \
    "cd '$tmp' && TERM=xterm-256color '$PWD/$bin' '$1' --backup-dir '$tmp/backups'; sleep 60"
}
keys() { tmux -L "$sock" send-keys -t s "$@"; }
shot() {  # name [seconds to wait first]
  sleep "${2:-0.6}"
  tmux -L "$sock" capture-pane -e -p -t s >"$tmp/$1.ansi"
  tmux -L "$sock" capture-pane -p -t s | sed 's/[[:space:]]*$//' >"$out/$1.txt"
  python3 "$out/ansi2svg.py" "$tmp/$1.ansi" "$out/$1.svg" $W $H
}

cp -r assets/demo "$tmp/chroma"
start ./chroma
shot main 1.5
keys Enter; shot detail
keys Enter; sleep 0.4
keys a; sleep 0.4
keys p; shot confirm
keys y; shot result 2

# The rows view, and one row whole (on an unpruned copy).
cp -r assets/demo "$tmp/demo"
start ./demo
sleep 1.5
keys w; sleep 1
keys PageDown PageDown PageDown; sleep 0.3
keys Down Down Down Down Down Down Down Down Down Down Down Down Down Down Down Down Down Down; shot rows 1
keys Enter; shot row
keys Escape Escape; sleep 0.3
keys m; shot space 1.5

# A prune long enough to be seen running.
python3 tests/bench/gen.py "$tmp/big" 150000 >/dev/null
start ./big
sleep 2
keys a; sleep 0.4
keys p; sleep 0.6
keys y; shot running 0.5

ls "$out"
