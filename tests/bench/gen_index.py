"""Build a persist dir with one large vector index, written by the real hnswlib and pickled
with Chroma's own PersistentData class, for the index-truth and rebuild benchmarks.

Run with the Python of the chromadb 0.4.22 venv (tests/fixtures/gen/venvs.sh): it imports
chroma_hnswlib (the binding Chroma 0.4 - 0.6 ships) and chromadb's PersistentData.

The base is tests/fixtures/v0_4_22 (a real dir). The vector segment of its default-database
"big" collection gets a new index of N elements (labels 1..N, ids "v{label}", DIM-dim random
float32 vectors, M 16, ef_construction 100, built with hnswlib on every core and persisted as
Chroma persists it), GHOSTS of them marked deleted and dropped from the maps as Chroma drops a
deleted id. Its metadata segment gets the N - GHOSTS live ids as records; the pickle's
max_seq_id is the WAL's top, so nothing is replayed on load.

Each record also gets a document of about 100 characters and two metadata values (an int and
a string), as `add(documents=..., metadatas=...)` stores them: the records export reads them.

Usage: gen_index.py OUT_DIR N [DIM] [GHOST_FRACTION] [uniform|clustered]
       (clustered: 1,000 centres, each vector a centre plus noise of a third of its spread, the
       shape of embedded text where near neighbours are meaningful; uniform random vectors in
       384 dims are all about as far from each other, and recall on them says little)
       gen_index.py docs OUT_DIR   (only add the documents and metadata to such a dir)
"""

import os
import pickle
import shutil
import sqlite3
import struct
import sys
import time

import hnswlib
import numpy as np
from chromadb.segment.impl.vector.local_persistent_hnsw import PersistentData

here = os.path.dirname(os.path.abspath(__file__))
base = os.path.join(here, "..", "fixtures", "v0_4_22")


def add_docs(out):
    db = sqlite3.connect(os.path.join(out, "chroma.sqlite3"))
    (cid,) = db.execute(
        "SELECT c.id FROM collections c JOIN databases d ON d.id = c.database_id "
        "WHERE c.name = 'big' AND d.name = 'default_database'").fetchone()
    seg = dict(db.execute("SELECT scope, id FROM segments WHERE collection = ?", (cid,)).fetchall())
    rows = db.execute("SELECT id, embedding_id FROM embeddings WHERE segment_id = ?",
                      (seg["METADATA"],)).fetchall()
    db.execute("DELETE FROM embedding_metadata WHERE id IN "
               "(SELECT id FROM embeddings WHERE segment_id = ?)", (seg["METADATA"],))
    meta = []
    for rowid, eid in rows:
        n = int(eid[1:])
        meta.append((rowid, "chroma:document", f"document {eid}: the quick brown fox jumps over "
                     f"the lazy dog, then rests by the river bank {n % 97}", None, None))
        meta.append((rowid, "n", None, n, None))
        meta.append((rowid, "kind", "synthetic" if n % 3 else "original", None, None))
    db.executemany("INSERT INTO embedding_metadata (id, key, string_value, int_value, float_value) "
                   "VALUES (?, ?, ?, ?, ?)", meta)
    db.commit()
    db.close()


def main():
    if sys.argv[1] == "docs":
        add_docs(sys.argv[2])
        return
    out = sys.argv[1]
    n = int(sys.argv[2])
    dim = int(sys.argv[3]) if len(sys.argv) > 3 else 384
    ghost_frac = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    shape = sys.argv[5] if len(sys.argv) > 5 else "uniform"
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(base, out)
    db = sqlite3.connect(os.path.join(out, "chroma.sqlite3"))
    (cid,) = db.execute(
        "SELECT c.id FROM collections c JOIN databases d ON d.id = c.database_id "
        "WHERE c.name = 'big' AND d.name = 'default_database'").fetchone()
    seg = dict(db.execute("SELECT scope, id FROM segments WHERE collection = ?", (cid,)).fetchall())
    vdir = os.path.join(out, seg["VECTOR"])
    shutil.rmtree(vdir, ignore_errors=True)
    os.makedirs(vdir)
    (top,) = db.execute("SELECT MAX(seq_id) FROM embeddings_queue").fetchone()

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(1000, dim)).astype(np.float32)
    index = hnswlib.Index(space="l2", dim=dim)
    index.init_index(max_elements=n, ef_construction=100, M=16, is_persistent_index=True,
                     persistence_location=vdir)
    index.set_num_threads(os.cpu_count() or 1)
    t0 = time.time()
    batch = 20_000
    for lo in range(0, n, batch):
        k = min(batch, n - lo)
        if shape == "clustered":
            which = rng.integers(0, len(centres), size=k)
            vecs = (centres[which] + rng.normal(scale=0.35, size=(k, dim))).astype(np.float32)
        else:
            vecs = rng.uniform(-1, 1, size=(k, dim)).astype(np.float32)
        index.add_items(vecs, np.arange(lo + 1, lo + 1 + k))
        print(f"\r{lo + k}/{n} added ({time.time() - t0:.0f} s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    ghosts = int(n * ghost_frac)
    # Every fifth label from the start: ghosts spread through the file, as deletes are.
    step = max(1, n // ghosts) if ghosts else 0
    dead = set(range(1, n + 1, step)[:ghosts]) if ghosts else set()
    for label in dead:
        index.mark_deleted(label)
    index.persist_dirty()
    live = [label for label in range(1, n + 1) if label not in dead]
    id_to_label = {f"v{label}": label for label in live}
    label_to_id = {label: f"v{label}" for label in live}
    id_to_seq_id = {f"v{label}": top for label in live}
    pd = PersistentData(dim, n, top, id_to_label, label_to_id, id_to_seq_id)
    with open(os.path.join(vdir, "index_metadata.pickle"), "wb") as f:
        pickle.dump(pd, f, pickle.HIGHEST_PROTOCOL)
    blob = struct.pack(">Q", top)
    db.execute("DELETE FROM embeddings WHERE segment_id = ?", (seg["METADATA"],))
    db.executemany(
        "INSERT INTO embeddings (segment_id, embedding_id, seq_id) VALUES (?, ?, ?)",
        ((seg["METADATA"], f"v{label}", blob) for label in live))
    db.execute("UPDATE collections SET dimension = ? WHERE id = ?", (dim, cid))
    db.commit()
    db.close()
    add_docs(out)
    print(f"{out}: {n} elements of {dim} dims, {ghosts} ghosts, {len(live)} records, "
          f"built in {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
