"""Kill real chromadb writers mid-write, then hold chroma-wal to what the release can read.

Three roles, one file:
- `write DIR SEED` (inside a release's venv): a writer through the public API, adding,
  updating, upserting and deleting in small batches with a low `hnsw:sync_threshold`, so its
  indexes persist often. It runs to the end unless it is killed.
- `read DIR NAME` (inside the same venv): what that release can read of one collection,
  as JSON: its records, or the error it raises.
- `run` (any Python 3, standard library only): for each release and seed, run the writer
  under strace, which kills it with SIGKILL on its Nth write() (a file write, most of them
  the index files' and the pickle's, as Chroma persists), N drawn from the seed. Then:
    1. every collection is read by the release, on a copy of the crashed dir (a read
       replays the WAL and so writes);
    2. `chroma-wal info --json` on another copy: every collection the release cannot read
       must be `damaged`;
    3. `chroma-wal prune --all --yes --no-backup` on that copy: a damaged collection keeps
       every WAL row, and every collection the release could read reads back the same.
  Collections chroma-wal calls damaged that the release reads are listed with the reason.

The kill point is the seed's: the same seed on the same release gives the same write count
most of the time, and the assertions hold whatever the kill point is.
"""

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile

RELEASES = ["0.4.22", "0.5.5", "0.6.3", "1.5.9"]
NAMES = ["alpha", "beta", "gamma"]


# --- the writer and the reader (run inside a release's venv) ---------------------------------

def _client(path):
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))


def _purge_off(path):
    """Turn automatic purging off (0.5.6+), the way chromadb's own tests do."""
    from chromadb.db.impl.sqlite import SqliteDB

    c = _client(path)
    db = c._system.instance(SqliteDB)
    cfg = db.config
    cfg.set_parameter("automatically_purge", False)
    db.set_config(cfg)


def write(path, seed):
    import chromadb

    rng = random.Random(seed)
    if seed % 2 == 1 and tuple(int(x) for x in chromadb.__version__.split(".")[:2]) >= (0, 6):
        _purge_off(path)
    c = _client(path)
    dim = rng.choice([16, 32, 64])
    cols = []
    for name in NAMES:
        meta = {
            "hnsw:sync_threshold": rng.choice([10, 20, 40]),
            "hnsw:batch_size": rng.choice([5, 10]),
            "hnsw:num_threads": 1,
        }
        cols.append((c.create_collection(name, metadata=meta, embedding_function=None), []))

    def vecs(n):
        return [[rng.uniform(-1, 1) for _ in range(dim)] for _ in range(n)]

    next_id = 0
    for _ in range(120):
        col, ids = rng.choice(cols)
        op = rng.random()
        if op < 0.6 or len(ids) < 20:
            n = rng.randint(3, 25)
            new = [f"r{next_id + i}" for i in range(n)]
            next_id += n
            col.add(ids=new, embeddings=vecs(n), documents=[f"doc {x}" for x in new],
                    metadatas=[{"i": int(x[1:]), "even": int(x[1:]) % 2 == 0} for x in new])
            ids.extend(new)
        elif op < 0.75:
            some = rng.sample(ids, rng.randint(1, 5))
            col.delete(ids=some)
            for x in some:
                ids.remove(x)
        elif op < 0.9:
            some = rng.sample(ids, rng.randint(1, 8))
            col.update(ids=some, embeddings=vecs(len(some)), documents=[f"updated {x}" for x in some])
        else:
            some = rng.sample(ids, rng.randint(1, 4)) + [f"r{next_id}", f"r{next_id + 1}"]
            next_id += 2
            col.upsert(ids=some, embeddings=vecs(len(some)), documents=[f"upserted {x}" for x in some])
            ids.extend(some[-2:])


def read_all(path, names):
    """Each collection's records, or the error its read raised."""
    c = _client(path)
    out = {}
    for name in names:
        try:
            out[name] = read(c, name)
        except Exception as e:  # noqa: BLE001 - any error is the release failing to read
            out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
    return out


def read(c, name):
    col = c.get_collection(name, embedding_function=None)
    count = col.count()
    got = col.get(include=["embeddings", "documents", "metadatas"])
    rows = sorted(
        [i, d, m, [round(float(x), 5) for x in e]]
        for i, d, m, e in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"])
    )
    if len(rows) != count:
        raise RuntimeError(f"get returned {len(rows)} records, count() says {count}")
    found = []
    if rows:
        # Every record by its own vector: an index that lost elements cannot return them.
        res = col.query(query_embeddings=[r[3] for r in rows], n_results=min(3, len(rows)))
        found = sorted(r[0] for r, ids in zip(rows, res["ids"]) if r[0] in ids)
    return {"count": count, "rows": rows, "found_by_own_vector": found}


# --- the driver (any Python 3) ---------------------------------------------------------------

def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def release_read(py, path, names):
    """What the release reads of each collection, on a copy (a read replays the WAL, and so
    writes). All in one process; if that process dies (a crash in native code), each
    collection again in a process of its own, so one crash does not hide the others."""

    def once(names):
        with tempfile.TemporaryDirectory() as t:
            d = os.path.join(t, "d")
            shutil.copytree(path, d)
            try:
                p = sh([py, __file__, "read", d, *names], timeout=300)
            except subprocess.TimeoutExpired:
                return None, "timed out"
            if p.returncode != 0:
                return None, last_error(p)
            return json.loads(p.stdout), None

    got, _ = once(names)
    if got is not None:
        return got
    out = {}
    for name in names:
        one, why = once([name])
        out[name] = one[name] if one else {"error": f"the reader died: {why}"}
    return out


def last_error(p):
    """The line of a dead process's stderr that says what killed it."""
    noise = ("telemetry", "could benefit from vacuuming")
    lines = [l for l in p.stderr.strip().splitlines() if not any(n in l for n in noise)]
    for l in reversed(lines):
        if any(w in l for w in ("Error", "Exception", "panicked", "error")):
            return l.strip()[:300]
    return (lines[-1].strip() if lines else f"exit {p.returncode}")[:300]


def wal_rows(path):
    conn = sqlite3.connect(f"file:{path}/chroma.sqlite3?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT topic, COUNT(*) FROM embeddings_queue GROUP BY topic"))
    finally:
        conn.close()


def topic_of(c):
    return c.get("topic") or f"persistent://default/default/{c['id']}"


def run_case(bin_, venv_dir, release, seed, work, log):
    py = os.path.join(venv_dir, f"cw-{release}", "bin", "python")
    d = os.path.join(work, f"{release}-{seed}")
    os.makedirs(d)
    crashed = os.path.join(d, "crashed")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", ANONYMIZED_TELEMETRY="False")
    # How many write()s a whole run makes, then a kill at a point the seed picks.
    full = os.path.join(d, "full")
    counted = sh(["strace", "-f", "--seccomp-bpf", "-c", "-e", "trace=write", "-o", os.path.join(d, "count"),
                  py, __file__, "write", full, str(seed)], env=env, timeout=600)
    if counted.returncode != 0:
        raise SystemExit(f"{release} seed {seed}: the writer failed on its own: {counted.stderr[-500:]}")
    writes = 0
    for line in open(os.path.join(d, "count")):
        parts = line.split()
        if parts and parts[-1] == "write":
            writes = int(parts[3])
    rng = random.Random(f"{release}/{seed}")
    kill_at = rng.randint(max(1, writes // 10), max(2, writes - 1))
    # strace counts each thread's writes apart: a writer whose writes are spread over threads
    # (1.x) may never reach N on one thread. Then again, nearer the start.
    for _ in range(4):
        shutil.rmtree(crashed, ignore_errors=True)
        # Not --seccomp-bpf here: with it, strace 6.1 injects only at when=1.
        p = sh(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=write",
                "-e", f"inject=write:signal=KILL:when={kill_at}", py, __file__, "write", crashed,
                str(seed)], env=env, timeout=600)
        killed = p.returncode != 0
        if killed:
            break
        kill_at = max(1, kill_at // 3)
    if not os.path.exists(os.path.join(crashed, "chroma.sqlite3")):
        log.append(f"{release} seed {seed}: killed at write {kill_at} of {writes}, before a dir existed")
        return {"collections": 0, "unreadable": 0, "over_cautious": [], "killed": int(killed)}

    info = sh([bin_, "info", "--json", "--deep", crashed])
    if info.returncode != 0:
        # A dir SQLite cannot open (a hot journal it may not roll back read-only) is refused
        # whole: nothing can be pruned, nothing is lost.
        log.append(f"{release} seed {seed}: info refused the dir: {info.stderr.strip()[:200]}")
        return {"collections": 0, "unreadable": 0, "over_cautious": [], "killed": int(killed)}
    info = json.loads(info.stdout)
    cols = {c["name"]: c for c in info["collections"]}
    before = release_read(py, crashed, sorted(cols))

    pruned = os.path.join(d, "pruned")
    shutil.copytree(crashed, pruned)
    rows0 = wal_rows(pruned)
    pr = sh([bin_, "prune", pruned, "--all", "--yes", "--no-backup", "--json"])
    rows1 = wal_rows(pruned) if pr.returncode == 0 else rows0
    failures, over = [], []
    readable = sorted(n for n in cols if "error" not in before[n])
    after_all = release_read(py, pruned, readable) if readable else {}
    for name, c in cols.items():
        b = before[name]
        t = topic_of(c)
        if "error" in b:
            if c["health"] != "damaged":
                failures.append(f"{name}: the release cannot read it ({b['error']}) but chroma-wal says {c['health']!r}")
            if rows1.get(t, 0) != rows0.get(t, 0):
                failures.append(f"{name}: unreadable, and the prune deleted {rows0.get(t, 0) - rows1.get(t, 0)} of its {rows0.get(t, 0)} WAL rows")
            continue
        if c["health"] == "damaged":
            over.append(f"{release} seed {seed} {name}: {c['status']}")
        after = after_all.get(name)
        if after != b:
            failures.append(f"{name}: reads differently after the prune: {str(after)[:200]}")
    unreadable = sum(1 for b in before.values() if "error" in b)
    log.append(f"{release} seed {seed}: killed={killed} at write {kill_at} of {writes}; "
               f"{len(cols)} collections, {unreadable} unreadable by the release, "
               f"{sum(1 for c in cols.values() if c['health'] == 'damaged')} damaged per chroma-wal, "
               f"prune exit {pr.returncode}")
    for name, b in before.items():
        if "error" in b:
            log.append(f"    {name}: release says {b['error']!r}; chroma-wal: {cols[name]['status']}")
    if failures:
        keep = os.path.join(os.environ.get("CW_CRASH_KEEP", tempfile.gettempdir()), f"crash-{release}-{seed}")
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(crashed, keep)
        raise AssertionError(f"{release} seed {seed} (kept in {keep}):\n  " + "\n  ".join(failures))
    return {"collections": len(cols), "unreadable": unreadable, "over_cautious": over,
            "killed": int(killed)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("dir")
    w.add_argument("seed", type=int)
    r = sub.add_parser("read")
    r.add_argument("dir")
    r.add_argument("names", nargs="+")
    ru = sub.add_parser("run")
    ru.add_argument("--bin", required=True)
    ru.add_argument("--venvs", default=os.environ.get("CW_VENV_DIR", os.path.expanduser("~/.cache/chroma-wal/venvs")))
    ru.add_argument("--releases", default=",".join(RELEASES))
    ru.add_argument("--seeds", default="1,2,3", help="comma-separated, or A-B for a range")
    ru.add_argument("--cases", help="RELEASE:SEED,... instead of every release with every seed")
    a = ap.parse_args()
    if a.cmd == "write":
        write(a.dir, a.seed)
    elif a.cmd == "read":
        json.dump(read_all(a.dir, a.names), sys.stdout)
    else:
        if "-" in a.seeds:
            lo, hi = a.seeds.split("-")
            seeds = list(range(int(lo), int(hi) + 1))
        else:
            seeds = [int(s) for s in a.seeds.split(",")]
        if a.cases:
            cases = [(c.split(":")[0], int(c.split(":")[1])) for c in a.cases.split(",")]
        else:
            cases = [(r, s) for r in a.releases.split(",") for s in seeds]
        log, failed = [], []
        total = unreadable = killed_any = 0
        over = []
        with tempfile.TemporaryDirectory() as work:
            for release, seed in cases:
                seen = len(log)
                try:
                    r = run_case(a.bin, a.venvs, release, seed, work, log)
                    total += r["collections"]
                    unreadable += r["unreadable"]
                    killed_any += r.get("killed", 0)
                    over.extend(r["over_cautious"])
                except AssertionError as e:
                    failed.append(str(e))
                for line in log[seen:]:
                    print(line, flush=True)
        print(f"\n{total} collections after {len(cases)} kills; {unreadable} unreadable by "
              f"their release" + (", every one damaged and kept whole" if not failed else ""))
        print(f"called damaged while the release reads them: {len(over)}")
        for o in over:
            print(f"  {o}")
        for f in failed:
            print(f"FAILED {f}")
        if killed_any == 0:
            # A set of runs in which no writer was killed tested nothing.
            failed.append("no writer was killed: nothing was tested")
        elif unreadable == 0:
            # Kill points move a little from run to run: say so, the assertions still held.
            print("note: no kill this time left a collection its release cannot read")
        print(f"crash: {len(cases) - len(failed)} passed, {len(failed)} failed")
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
