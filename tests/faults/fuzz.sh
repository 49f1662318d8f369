#!/usr/bin/env bash
# Fuzz the whole-pickle validator, the index header parser and the max_seq_id decoder with libFuzzer (cargo-fuzz, nightly).
# Usage: tests/faults/fuzz.sh [seconds per target, default 20]
# The pickle corpus is seeded with every index_metadata.pickle of the fixtures. Where no
# nightly toolchain or cargo-fuzz can be had (a fresh machine without them), it says so and
# exits 0: the fuzz targets are extra assurance on top of the unit and property tests.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-20}"
if ! rustup toolchain list 2>/dev/null | grep -q nightly; then
  echo "FUZZ SKIPPED: no nightly toolchain on this machine (cargo-fuzz needs one)"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet || { echo "FUZZ SKIPPED: cargo-fuzz could not be installed"; exit 0; }
fi
corpus="tests/fuzz/corpus/pickle"
mkdir -p "$corpus" tests/fuzz/corpus/seqid tests/fuzz/corpus/header
n=0
while IFS= read -r -d '' p; do
  cp "$p" "$corpus/fixture-$n.pickle"; n=$((n + 1))
done < <(find tests/fixtures assets/demo -name index_metadata.pickle -print0)
printf '\x00\x00\x00\x00\x00\x00\x01\x2c' > tests/fuzz/corpus/seqid/blob300
n=0
while IFS= read -r -d '' p; do
  cp "$p" "tests/fuzz/corpus/header/fixture-$n.bin"; n=$((n + 1))
done < <(find tests/fixtures assets/demo -name header.bin -print0)
status=0
for t in pickle header seqid; do
  log="$(mktemp)"
  if cargo +nightly fuzz run --fuzz-dir tests/fuzz "$t" "tests/fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=1024 >"$log" 2>&1; then
    echo "fuzz $t: $(grep -E '^Done|#[0-9]+.*DONE' "$log" | tail -1) (no crash)"
  else
    echo "fuzz $t: CRASH"; tail -40 "$log"; status=1
  fi
  rm -f "$log"
done
exit $status
