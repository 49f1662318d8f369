#!/usr/bin/env bash
# Every picture of the explorer, from the current release binary in a real terminal.
# tmux runs the binary (130x34), send-keys types, capture-pane -e reads the screen with its
# colours; ansi2svg.py draws that as SVG (xterm's palette) and the plain text goes beside it.
# - main, detail (the segments pane), confirm, result, rows, row, space, records, record:
#   on a copy of the demo dir;
# - index (a vector index marked with i), index_confirm, scrub (S): on a copy of the
#   deletions_v1_5_9 fixture, whose indexes hold deleted vectors;
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
  # The old server may still be going away: a new session then fails ("server exited
  # unexpectedly"), so it is asked again.
  local try
  for try in 1 2 3 4 5; do
    sleep 0.3
    tmux -L "$sock" new-session -d -s s -x $W -y $H \
      "cd '$tmp' && TERM=xterm-256color '$PWD/$bin' '$1' --backup-dir '$tmp/backups'; sleep 60" \
      2>/dev/null && return 0
  done
  echo "make.sh: tmux would not start a session" >&2
  return 1
}
keys() { tmux -L "$sock" send-keys -t s "$@"; }
shot() {  # name seconds-to-wait-first words-its-view-shows
  sleep "$2"
  tmux -L "$sock" capture-pane -e -p -t s >"$tmp/$1.ansi"
  tmux -L "$sock" capture-pane -p -t s | sed 's/[[:space:]]*$//' >"$tmp/$1.txt"
  # Each picture must show its view: a key that did not land would otherwise leave the
  # previous view in the picture, under the next one's name.
  if ! grep -qF -- "$3" "$tmp/$1.txt"; then
    echo "make.sh: the $1 picture does not show '$3'; the screen was:" >&2
    cat "$tmp/$1.txt" >&2
    exit 1
  fi
  cp "$tmp/$1.txt" "$out/$1.txt"
  python3 "$out/ansi2svg.py" "$tmp/$1.ansi" "$out/$1.svg" $W $H
}

cp -r assets/demo "$tmp/chroma"
start ./chroma
shot main 1.5 "┌ collections ("
keys Enter; shot detail 0.6 "┌ segments"
keys Enter; sleep 0.4
keys a; sleep 0.4
keys p; shot confirm 0.6 "┌ confirm prune"
keys y; shot result 2 "┌ result"

# The rows view, and one row whole (on an unpruned copy).
cp -r assets/demo "$tmp/demo"
start ./demo
sleep 1.5
keys w; sleep 1
keys PageDown PageDown PageDown; sleep 0.3
keys Down Down Down Down Down Down Down Down Down Down Down Down Down Down Down Down Down Down; shot rows 1 "┌ WAL rows of"
keys Enter; shot row 0.6 "┌ row "
# One Escape at a time: two sent together reach the app as one key (ESC ESC), and the rows
# view stayed open under the space picture's name.
keys Escape; sleep 0.4
keys Escape; sleep 0.4
keys m; shot space 1.5 "where the space goes"

# The records view (after the index truth has been read), and one record whole.
keys Escape; sleep 0.4
keys e; shot records 2 "┌ records of"
keys Down Down; sleep 0.3
keys Enter; shot record 0.8 "┌ record "

# An index marked for a rebuild (i), and its confirm dialog; then a scrub's dialog (S), on a
# dir whose indexes hold deleted vectors.
cp -r tests/fixtures/deletions_v1_5_9 "$tmp/marks"
start ./marks
sleep 2
keys i; shot index 0.6 "[i] churn"
keys p; shot index_confirm 0.8 "Rebuild these vector indexes?"
keys Escape; sleep 0.4
keys i; sleep 0.3
keys S; shot scrub 1.5 "┌ confirm scrub"
keys Escape; sleep 0.4

# A prune long enough to be seen running.
python3 tests/bench/gen.py "$tmp/big" 150000 >/dev/null
start ./big
sleep 2
keys a; sleep 0.4
keys p; sleep 0.6
keys y; shot running 0.5 "┌ pruning"

ls "$out"
