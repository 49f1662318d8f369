#!/usr/bin/env bash
# compact killed (SIGKILL) at spread-out moments of its run, on a dir whose index chroma-hnswlib
# built (tests/bench/gen_index.py: 40,000 elements of 96 dims, a fifth deleted). After each
# kill the segment's folder must be the old one byte for byte or the new one whole (health ok,
# no ghost, every record reachable, the records identical), never a mix and never missing;
# a compact run afterwards finishes; chromadb 0.4.22 reads the dir as the untouched copy.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
BIN="${CHROMA_WAL_BIN:-$repo/target/release/chroma-wal}"
VENV_DIR="${CW_VENV_DIR:-$HOME/.cache/chroma-wal/venvs}"
py="$VENV_DIR/cw-0.4.22/bin/python"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$py" "$repo/tests/bench/gen_index.py" "$work/O" 40000 96 0.2 clustered 2>/dev/null || { echo "FAIL: gen"; exit 1; }
seg="$(python3 -c "
import json, sys
v = json.load(open(sys.argv[1]))
for c in v['collections']:
    for s in c['segments']:
        if s['scope'] == 'VECTOR' and (s.get('index') or {}).get('elements', 0) > 1000:
            print(s['id'])" <("$BIN" info "$work/O" --json))"
"$BIN" records "$work/O" --collection big --jsonl >"$work/records0.jsonl" 2>/dev/null
# How long an uninterrupted run takes, to spread the kills over it.
cp -r "$work/O" "$work/T"
t0=$(date +%s%N)
"$BIN" compact "$work/T" --all --yes --no-backup >/dev/null 2>&1 || { echo "FAIL: a plain run"; exit 1; }
took=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "an uninterrupted compact takes ${took} ms"
old="$(cd "$work/O/$seg" && sha256sum * | sha256sum)"
kills=12 failed=0 olds=0 news=0
for k in $(seq 1 $kills); do
  rm -rf "$work/K" && cp -r "$work/O" "$work/K"
  # Spread over the run and a little past it: the last kills find it finished.
  at=$(( took * k * 115 / (kills * 100) ))
  "$BIN" compact "$work/K" --all --yes --backup-dir "$work/bk$k" >/dev/null 2>&1 &
  pid=$!
  sleep "$(python3 -c "print($at / 1000)")"
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  if [ ! -d "$work/K/$seg" ]; then echo "kill $k at ${at} ms: the segment folder is gone"; failed=$((failed + 1)); continue; fi
  now="$(cd "$work/K/$seg" && sha256sum * | sha256sum)"
  if [ "$now" = "$old" ]; then
    olds=$((olds + 1))
  else
    "$BIN" info "$work/K" --deep --json >"$work/info.json" 2>/dev/null
    "$BIN" records "$work/K" --collection big --jsonl >"$work/records.jsonl" 2>/dev/null
    if python3 - "$work/info.json" "$seg" <<'PY' && cmp -s "$work/records0.jsonl" "$work/records.jsonl"; then
import json, sys
v = json.load(open(sys.argv[1]))
for c in v["collections"]:
    if any(s["id"] == sys.argv[2] for s in c["segments"]):
        t = c["index_truth"]
        assert c["health"] == "ok" and t["ghosts_on_disk"] == 0 and t["missing"] == 0, (c["health"], t)
PY
      news=$((news + 1))
    else
      echo "kill $k at ${at} ms: the folder is neither the old index nor a whole new one"
      failed=$((failed + 1)); continue
    fi
  fi
  "$BIN" compact "$work/K" --all --yes --no-backup >/dev/null 2>&1 || { echo "kill $k: compact after the kill failed"; failed=$((failed + 1)); }
done
echo "$kills kills: $olds left the old index, $news the new one, $failed neither"
PYTHONHASHSEED=0 "$py" "$here/dump.py" "$work/O" >"$work/dumpO.json" 2>/dev/null
PYTHONHASHSEED=0 "$py" "$here/dump.py" "$work/K" >"$work/dumpK.json" 2>/dev/null
python3 - "$work/dumpO.json" "$work/dumpK.json" <<'PY' || failed=$((failed + 1))
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for k in a:
    for f in ("count", "rows"):
        assert a[k][f] == b[k][f], f"{k}: {f} differs after the kills and a last compact"
print("chromadb 0.4.22 reads the last one's records as the untouched copy's")
PY
[ "$failed" = 0 ] && [ "$olds" -gt 0 ] && [ "$news" -gt 0 ] && echo PASS || { echo "FAIL (a kill must have left each kind at least once)"; exit 1; }
