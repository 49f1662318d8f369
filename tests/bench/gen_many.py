"""A persist dir with many collections, written by a real chromadb through its public API
(the multi-tenant shape: a collection per user or per chat).

Usage (with a chromadb venv, e.g. 1.5.9 from tests/fixtures/gen/venvs.sh):
  ~/.cache/chroma-wal/venvs/cw-1.5.9/bin/python tests/bench/gen_many.py OUT_DIR COLLECTIONS
Each collection gets 3 rows of 8-dim vectors with a document; automatic purging is off, so
every row stays in the WAL.

With a third argument `persisted`, the shape of an app with real traffic: each collection
gets 5-34 vectors with `hnsw:sync_threshold` 10 and `hnsw:batch_size` 10, so every index is
persisted (a folder and a pickle each), and a third of them have one record deleted.

With a fourth argument FROM, OUT_DIR is a copy of a dir this script wrote with FROM
collections and the same third argument; collections FROM to COLLECTIONS - 1 are added, with
the same draws a run from nothing would make (the 40,000 dir is the 20,000 one continued:
half the time).
"""
import random
import sys
import time

import chromadb
from chromadb.config import Settings


def client_without_purging(out):
    """A PersistentClient on `out` with automatic purging off: every WAL row stays."""
    c = chromadb.PersistentClient(path=out, settings=Settings(anonymized_telemetry=False))
    from chromadb.db.impl.sqlite import SqliteDB
    db = c._system.instance(SqliteDB)
    cfg = db.config
    cfg.set_parameter("automatically_purge", False)
    db.set_config(cfg)
    return c


def draws(rng, persisted):
    """One collection's random draws: its size and its vectors."""
    k = rng.randint(5, 34) if persisted else 3
    return k, [[rng.uniform(-1, 1) for _ in range(8)] for _ in range(k)]


def main(out, n, persisted=False, start=0):
    c = client_without_purging(out)
    have = c.count_collections()
    if have != start:
        sys.exit(f"{out} holds {have} collections, not {start}")
    rng = random.Random(3)
    for _ in range(start):
        draws(rng, persisted)
    t0 = time.time()
    for i in range(start, n):
        meta = {"hnsw:sync_threshold": 10, "hnsw:batch_size": 10} if persisted else None
        col = c.create_collection(f"user-{i:05d}", metadata=meta, embedding_function=None)
        k, vectors = draws(rng, persisted)
        col.add(ids=[f"u{i}-{j}" for j in range(k)],
                embeddings=vectors,
                documents=[f"note {j} of user {i}" for j in range(k)])
        if persisted and i % 3 == 0:
            col.delete(ids=[f"u{i}-0"])
        if (i + 1) % 1000 == 0:
            print(f"{i + 1} collections, {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == "persisted",
         int(sys.argv[4]) if len(sys.argv) > 4 else 0)
