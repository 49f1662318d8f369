"""Dump every collection of a persist dir through chromadb's public API, as JSON on stdout.

Run with the release that wrote the dir. Embeddings are rounded to 6 decimals so two dumps
compare exactly; nearest-neighbour results use fixed query vectors.
"""

import json
import random
import sqlite3
import sys

import chromadb
from chromadb.config import Settings


def main(path):
    conn = sqlite3.connect(f"file:{path}/chroma.sqlite3?mode=ro", uri=True)
    dbs = conn.execute("SELECT tenant_id, name FROM databases ORDER BY tenant_id, name").fetchall()
    conn.close()
    out = {}
    for tenant, database in dbs:
        c = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False),
                                      tenant=tenant, database=database)
        for col in c.list_collections():
            name = col if isinstance(col, str) else col.name
            col = c.get_collection(name, embedding_function=None)
            got = col.get(include=["embeddings", "documents", "metadatas"])
            rows = sorted(zip(got["ids"], [[round(float(x), 6) for x in e] for e in got["embeddings"]],
                              got["documents"], got["metadatas"]), key=lambda r: r[0])
            entry = {"id": str(col.id), "count": col.count(), "rows": rows, "queries": []}
            if rows:
                rng = random.Random(42)
                dim = len(rows[0][1])
                qs = [[rng.uniform(-1, 1) for _ in range(dim)] for _ in range(3)]
                res = col.query(query_embeddings=qs, n_results=min(5, len(rows)))
                entry["queries"] = res["ids"]
            out[f"{tenant}/{database}/{name}"] = entry
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
