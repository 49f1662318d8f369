"""A vectors-only persist dir written by a real chromadb through its public API: the shape of
an app that feeds embeddings and keeps its text elsewhere (issue 25's second shape).

Usage (with a chromadb venv, e.g. 1.5.9 from tests/fixtures/gen/venvs.sh):
  ~/.cache/chroma-wal/venvs/cw-1.5.9/bin/python tests/bench/gen_vectors.py OUT_DIR [COLLECTIONS] [ROWS] [M EF] [wide]
COLLECTIONS (default 4) collections of ROWS (default 51,000) 384-dim float32 vectors, each
with a small metadata and no document; automatic purging is off, so the whole WAL stays, and
the default `hnsw:sync_threshold` persists every index as it grows: nearly all of the WAL is
below its bound and prunable (about 634 MB with the defaults). M and EF set `hnsw:M` and
`hnsw:construction_ef` (issue 40's shape is `OUT 4 51000 8 16`). `wide` gives each record ten
metadata keys instead of two (a title, a path, a page, dates, tags): the kept file is then
about four times larger, as in the dir issue 40 measured (605 MiB, 199 MiB after a prune).
"""
import random
import sys
import time

from gen_many import client_without_purging


def metadata(k, i, wide):
    m = {"chunk": i, "source": f"file-{i // 50}"}
    if wide:
        m.update({
            "title": f"Section {i % 97} of report {i // 50}: quarterly figures and notes",
            "path": f"/srv/data/corpus-{k}/reports/{i // 50:06d}/part-{i % 50:02d}.pdf",
            "page": i % 300,
            "created": 1.7e9 + i * 37.5,
            "author": f"author-{i % 211}",
            "lang": ("en", "de", "fr")[i % 3],
            "reviewed": i % 2 == 0,
            "tags": f"t{i % 7},t{i % 11},t{i % 13}",
        })
    return m


def main(out, collections=4, rows=51000, m=None, ef=None, wide=False):
    c = client_without_purging(out)
    rng = random.Random(25)
    t0 = time.time()
    batch = 1000
    for k in range(collections):
        hnsw = {"hnsw:M": m, "hnsw:construction_ef": ef} if m else None
        col = c.create_collection(f"vectors-{k}", embedding_function=None, metadata=hnsw)
        for start in range(0, rows, batch):
            n = min(batch, rows - start)
            col.add(ids=[f"v{k}-{start + j}" for j in range(n)],
                    embeddings=[[rng.uniform(-1, 1) for _ in range(384)] for _ in range(n)],
                    metadatas=[metadata(k, start + j, wide) for j in range(n)])
        print(f"{k + 1} collections, {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], int(a[1]) if len(a) > 1 else 4, int(a[2]) if len(a) > 2 else 51000,
         int(a[3]) if len(a) > 3 else None, int(a[4]) if len(a) > 4 else None,
         len(a) > 5 and a[5] == "wide")
