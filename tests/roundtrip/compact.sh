#!/usr/bin/env bash
# Round trip of `compact` against real chromadb releases. For each release: the release writes
# a dir whose indexes hold deleted vectors (ghosts.py make: an l2 and a cosine collection);
# chroma-wal compacts a copy (B) with a backup; then
#   1. the compact's JSON and `info --deep --json` say every ghost is gone;
#   2. no deleted vector's bytes (as the untouched copy A stores them) and no deleted id is left
#      in any file chroma-wal wrote, while A still holds them (so the check can fail);
#   3. the pickle, max_seq_id, segments, config and migrations are byte for byte as before;
#   4. the release reads B back as it reads A (records, vectors, documents, metadata, every
#      sampled record found by its own vector), then writes to both alike (adds, deleted ids
#      added again, upserts, updates, deletes) and reads both back alike, in this process and
#      in a fresh one after the writes persisted;
#   5. `restore` puts the old folders back: every file as in the untouched copy.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
BIN="${CHROMA_WAL_BIN:-$repo/target/release/chroma-wal}"
VENV_DIR="${CW_VENV_DIR:-$HOME/.cache/chroma-wal/venvs}"
[ -x "$BIN" ] || { echo "no binary at $BIN: run cargo build --release" >&2; exit 2; }
work="$(mktemp -d)"
[ -n "${KEEP:-}" ] && echo "work dir: $work" >&2 || trap 'rm -rf "$work"' EXIT
releases=(0.4.22 0.5.5 0.6.3 1.5.9)
passed=0
failed=0
quiet() { grep -v -i -e telemetry -e "could benefit from vacuuming" -e "utils vacuum" >&2; }

check() {  # release
  local rel="$1" d="$work/$1"
  local py="$VENV_DIR/cw-$rel/bin/python"
  mkdir -p "$d"
  "$py" "$here/ghosts.py" make "$d/A" 2> >(quiet) || { echo "make failed"; return 1; }
  cp -r "$d/A" "$d/B" && cp -r "$d/A" "$d/O" && cp -r "$d/A" "$d/R"
  python3 "$here/state.py" "$d/A" >"$d/state0.json" || return 1

  "$BIN" compact "$d/B" --all --yes --backup-dir "$d/backups" --json >"$d/compact.json" 2>"$d/compact.err" \
    || { echo "compact failed: $(tail -3 "$d/compact.err")"; return 1; }
  "$BIN" info "$d/B" --deep --json >"$d/info.json" || { echo "info failed"; return 1; }
  python3 "$here/state.py" "$d/B" >"$d/state1.json" || return 1
  python3 - "$d" <<'PY' || return 1
import json, os, struct, sys
d = sys.argv[1]
c = json.load(open(f"{d}/compact.json")); info = json.load(open(f"{d}/info.json"))
s0 = json.load(open(f"{d}/state0.json")); s1 = json.load(open(f"{d}/state1.json"))
assert not c["dry_run"] and len(c["indexes"]) == 2, c
for i in c["indexes"]:
    assert i["ghosts_removed"] > 0 and i["elements_after"] == i["elements_before"] - i["ghosts_removed"], i
    assert i["recall_after"] + 0.02 >= i["recall_before"], i
for col in info["collections"]:
    t = col.get("index_truth")
    assert t and t["ghosts_on_disk"] == 0 and t["missing"] == 0, (col["name"], t)
# Everything Chroma owns but the rebuilt index files, as before.
for k in s0:
    if k != "segment_files":
        assert s0[k] == s1[k], f"{k} changed"
pickles = {k: v for k, v in s0["segment_files"].items() if k.endswith("index_metadata.pickle")}
for k, v in pickles.items():
    assert s1["segment_files"].get(k) == v, f"{k} changed"

# The deleted vectors and ids, as the untouched copy stores them.
def elements(folder):
    h = open(f"{folder}/header.bin", "rb").read()
    n, size, label_at, data_at = struct.unpack_from("<QQQQ", h, 20)
    data = open(f"{folder}/data_level0.bin", "rb").read()
    for i in range(n):
        b = data[i * size:(i + 1) * size]
        yield b[2] & 1, b[data_at:label_at]
segs = [i["segment"] for i in c["indexes"]]
deleted = [v for s in segs for flag, v in elements(f"{d}/A/{s}") if flag]
assert deleted, "the untouched copy has no deleted vector: the check could not fail"
ids = []
for col in ("plain", "angles"):
    ids += [f"{col}-{k}".encode() for k in range(600) if k % 5 == 1]
def files(root, s):
    for f in sorted(os.listdir(f"{root}/{s}")):
        if f != "index_metadata.pickle":
            yield f, open(f"{root}/{s}/{f}", "rb").read()
found_a = sum(1 for s in segs for _, b in files(f"{d}/A", s) for v in deleted if v in b)
assert found_a >= len(deleted), "the untouched copy must hold every deleted vector"
for s in segs:
    for f, b in files(f"{d}/B", s):
        left = [v for v in deleted if v in b]
        assert not left, f"{s}/{f} still holds {len(left)} deleted vector(s)"
        names = [i for i in ids if i in b]
        assert not names, f"{s}/{f} still holds deleted ids {names[:3]}"
print(f"  {sum(i['ghosts_removed'] for i in c['indexes'])} ghosts removed from {len(segs)} indexes; "
      f"none of {len(deleted)} deleted vectors or {len(ids)} deleted ids left; pickles and tables identical; "
      f"recall@10 {[round(i['recall_after'], 3) for i in c['indexes']]} (was {[round(i['recall_before'], 3) for i in c['indexes']]})")
PY

  PYTHONHASHSEED=0 "$py" "$here/ghosts.py" probe "$d/A" "$d/probeA.json" 2> >(quiet) || { echo "probe A failed"; return 1; }
  PYTHONHASHSEED=0 "$py" "$here/ghosts.py" probe "$d/B" "$d/probeB.json" 2> >(quiet) || { echo "probe B failed"; return 1; }
  cmp -s "$d/probeA.json" "$d/probeB.json" || { echo "the compacted dir reads or writes differently from the untouched one"; return 1; }
  PYTHONHASHSEED=0 "$py" "$here/ghosts.py" read "$d/A" "$d/readA.json" 2> >(quiet) || { echo "read A failed"; return 1; }
  PYTHONHASHSEED=0 "$py" "$here/ghosts.py" read "$d/B" "$d/readB.json" 2> >(quiet) || { echo "read B failed"; return 1; }
  cmp -s "$d/readA.json" "$d/readB.json" || { echo "after the writes, a fresh process reads the compacted dir differently"; return 1; }
  echo "  chromadb $rel reads, writes (add, re-add deleted, upsert, update, delete) and reads again alike"

  "$BIN" compact "$d/R" --all --yes --backup-dir "$d/backupsR" --json >/dev/null 2>&1 || { echo "compact R failed"; return 1; }
  "$BIN" restore "$d/R" --from "$d/backupsR" --yes >"$d/restore.out" 2>&1 || { echo "restore failed: $(cat "$d/restore.out")"; return 1; }
  diff -r "$d/O" "$d/R" >"$d/restore.diff" 2>&1 || { echo "the restored dir differs from the original: $(head -5 "$d/restore.diff")"; return 1; }
  echo "  restore puts every old index folder back byte for byte"
}

for rel in "${releases[@]}"; do
  if [ -n "${ONLY:-}" ] && [[ "$rel" != *"$ONLY"* ]]; then continue; fi
  t0=$SECONDS
  echo "--- compact, chromadb $rel"
  if out="$(check "$rel" 2>&1)"; then
    printf '%s\n' "$out"
    echo "PASS $rel ($((SECONDS - t0)) s)"
    passed=$((passed + 1))
  else
    printf '%s\n' "$out"
    echo "FAIL $rel"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
