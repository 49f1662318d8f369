"""A persist dir with many collections, written by a real chromadb through its public API
(the multi-tenant shape: a collection per user or per chat).

Usage (with a chromadb venv, e.g. 1.5.9 from tests/fixtures/gen/venvs.sh):
  ~/.cache/chroma-wal/venvs/cw-1.5.9/bin/python tests/bench/gen_many.py OUT_DIR COLLECTIONS
Each collection gets 3 rows of 8-dim vectors with a document; automatic purging is off, so
every row stays in the WAL.
"""
import random
import sys
import time

import chromadb
from chromadb.config import Settings


def main(out, n):
    c = chromadb.PersistentClient(path=out, settings=Settings(anonymized_telemetry=False))
    from chromadb.db.impl.sqlite import SqliteDB
    db = c._system.instance(SqliteDB)
    cfg = db.config
    cfg.set_parameter("automatically_purge", False)
    db.set_config(cfg)
    rng = random.Random(3)
    t0 = time.time()
    for i in range(n):
        col = c.create_collection(f"user-{i:05d}", embedding_function=None)
        col.add(ids=[f"u{i}-{j}" for j in range(3)],
                embeddings=[[rng.uniform(-1, 1) for _ in range(8)] for _ in range(3)],
                documents=[f"note {j} of user {i}" for j in range(3)])
        if (i + 1) % 1000 == 0:
            print(f"{i + 1} collections, {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
