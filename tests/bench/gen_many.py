"""A persist dir with many collections, written by a real chromadb through its public API
(the multi-tenant shape: a collection per user or per chat).

Usage (with a chromadb venv, e.g. 1.5.9 from tests/fixtures/gen/venvs.sh):
  ~/.cache/chroma-wal/venvs/cw-1.5.9/bin/python tests/bench/gen_many.py OUT_DIR COLLECTIONS
Each collection gets 3 rows of 8-dim vectors with a document; automatic purging is off, so
every row stays in the WAL.

With a third argument `persisted`, the shape of an app with real traffic: each collection
gets 5-34 vectors with `hnsw:sync_threshold` 10 and `hnsw:batch_size` 10, so every index is
persisted (a folder and a pickle each), and a third of them have one record deleted.
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


def main(out, n, persisted=False):
    c = client_without_purging(out)
    rng = random.Random(3)
    t0 = time.time()
    for i in range(n):
        meta = {"hnsw:sync_threshold": 10, "hnsw:batch_size": 10} if persisted else None
        col = c.create_collection(f"user-{i:05d}", metadata=meta, embedding_function=None)
        k = rng.randint(5, 34) if persisted else 3
        col.add(ids=[f"u{i}-{j}" for j in range(k)],
                embeddings=[[rng.uniform(-1, 1) for _ in range(8)] for _ in range(k)],
                documents=[f"note {j} of user {i}" for j in range(k)])
        if persisted and i % 3 == 0:
            col.delete(ids=[f"u{i}-0"])
        if (i + 1) % 1000 == 0:
            print(f"{i + 1} collections, {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == "persisted")
