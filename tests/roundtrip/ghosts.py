"""Dirs with deleted vectors still in their index, written by a real chromadb release, and
what that release makes of them. Run with the release's own Python:

  ghosts.py make PATH          write the dir: an l2 and a cosine collection, 20 % deleted,
                               with a small sync threshold so the deletes reach the index files
  ghosts.py probe PATH OUT     read everything back (records, own-vector queries), then write
                               (add, re-add deleted ids, upsert, update, delete) and read again;
                               the same ops on an untouched copy must give the same JSON
  ghosts.py read PATH OUT      read only (a second process, after the writes persisted)
  ghosts.py stale PATH SAVE    (0.5.6+) automatic purging off, 300 records persisted, the index
                               folder copied to SAVE, 200 more persisted: putting SAVE back
                               leaves an index behind its max_seq_id row (a lost persist) whose
                               missing records the WAL still holds
"""

import json
import random
import sys

import chromadb
from chromadb.config import Settings

N = 600
DIM = 16
META = {"hnsw:sync_threshold": 40, "hnsw:batch_size": 20}


def client(path):
    return chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))


def vec(rng):
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def make(path):
    c = client(path)
    rng = random.Random(7)
    for name, space in (("plain", "l2"), ("angles", "cosine")):
        meta = dict(META)
        if space != "l2":
            meta["hnsw:space"] = space
        col = c.create_collection(name, metadata=meta, embedding_function=None)
        ids = [f"{name}-{i}" for i in range(N)]
        for at in range(0, N, 50):
            chunk = ids[at:at + 50]
            col.add(ids=chunk, embeddings=[vec(rng) for _ in chunk],
                    documents=[f"doc {i}" for i in chunk],
                    metadatas=[{"n": k, "space": space} for k, _ in enumerate(chunk)])
        gone = [i for k, i in enumerate(ids) if k % 5 == 1]
        for at in range(0, len(gone), 30):
            col.delete(ids=gone[at:at + 30])
        # More writes after the deletes, so the index persists with them marked.
        extra = [f"{name}-x{i}" for i in range(100)]
        for at in range(0, len(extra), 25):
            chunk = extra[at:at + 25]
            col.add(ids=chunk, embeddings=[vec(rng) for _ in chunk],
                    documents=[f"doc {i}" for i in chunk])


def rows(col):
    got = col.get(include=["embeddings", "documents", "metadatas"])
    out = []
    for i, e, d, m in zip(got["ids"], got["embeddings"], got["documents"], got["metadatas"]):
        out.append([i, [round(float(x), 6) for x in e], d, m])
    return sorted(out, key=lambda r: r[0])


def own(col, rs):
    """Each sampled record, queried by its own vector, comes back first."""
    sample = rs[:: max(1, len(rs) // 40)]
    if not sample:
        return []
    res = col.query(query_embeddings=[r[1] for r in sample], n_results=1)
    return [[r[0], got[0] if got else None] for r, got in zip(sample, res["ids"])]


def read(path, names=("plain", "angles")):
    c = client(path)
    out = {}
    for name in names:
        col = c.get_collection(name, embedding_function=None)
        rs = rows(col)
        out[name] = {"count": col.count(), "rows": rs, "own": own(col, rs)}
    return out


def write(path):
    c = client(path)
    rng = random.Random(11)
    for name in ("plain", "angles"):
        col = c.get_collection(name, embedding_function=None)
        new = [f"{name}-n{i}" for i in range(45)]
        col.add(ids=new, embeddings=[vec(rng) for _ in new], documents=[f"new {i}" for i in new])
        back = [f"{name}-{k}" for k in (1, 6, 11, 16, 21)]  # deleted ids, added again
        col.add(ids=back, embeddings=[vec(rng) for _ in back], documents=["back"] * len(back))
        ups = [f"{name}-{k}" for k in (2, 3, 4, 5, 7)]
        col.upsert(ids=ups, embeddings=[vec(rng) for _ in ups], documents=["upserted"] * len(ups))
        col.update(ids=[f"{name}-{k}" for k in (8, 9)], metadatas=[{"updated": True}, {"updated": True}])
        col.delete(ids=[f"{name}-{k}" for k in (10, 12, 13, 14, 15)])


def stale(path, save):
    import os
    import shutil

    from chromadb.db.impl.sqlite import SqliteDB

    c = client(path)
    db = c._system.instance(SqliteDB)
    cfg = db.config
    cfg.set_parameter("automatically_purge", False)
    db.set_config(cfg)
    rng = random.Random(5)
    col = c.create_collection("stale", metadata=dict(META), embedding_function=None)
    for at in range(0, 500, 20):
        ids = [f"s-{i}" for i in range(at, at + 20)]
        col.add(ids=ids, embeddings=[vec(rng) for _ in ids], documents=[f"doc {i}" for i in ids])
        if at + 20 == 300:
            seg = [e for e in os.listdir(path) if os.path.isfile(os.path.join(path, e, "header.bin"))]
            assert len(seg) == 1, seg
            shutil.copytree(os.path.join(path, seg[0]), os.path.join(save, seg[0]))


def main():
    what, path = sys.argv[1], sys.argv[2]
    if what == "make":
        make(path)
        return
    if what == "stale":
        stale(path, sys.argv[3])
        return
    if what == "probe":
        before = read(path)
        write(path)
        after = read(path)
        out = {"before": before, "after": after}
    elif what == "read-one":
        out = read(path, ("stale",))
    else:
        out = read(path)
    with open(sys.argv[3], "w") as f:
        json.dump(out, f, sort_keys=True)
    for name, v in (out.get("after") or out).items():
        misses = [r for r in v["own"] if r[0] != r[1]]
        assert not misses, f"{name}: records not found by their own vector: {misses[:5]}"


if __name__ == "__main__":
    main()
