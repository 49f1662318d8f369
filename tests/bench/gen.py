"""Build large persist dirs for benchmarks from a base written by real chromadb 1.5.9.

The base is tests/fixtures/v1_5_9 (automatically_purge off, real schema with its FTS5
tables). Its WAL is amplified with SQL to ROWS rows spread over its collections' topics,
each row a 384-dim float32 vector (1536 bytes), a ~1 KB document in the metadata JSON, the
way Chroma stores an add. Every segment's max_seq_id is then set to 90% of the last seq_id,
as after a flush: about 90% of the WAL is prunable and 10% held back.

Also writes a Python-shape index_metadata.pickle with PICKLE_IDS ids into the vector segment
of "papers" (module/class chromadb...PersistentData, protocol 4), with its max_seq_id row
removed from sqlite so `info` must read the pickle. The index files beside it are grown to
match (header.bin says PICKLE_IDS elements; data_level0.bin is extended sparsely), so the
segment is as whole as chroma-wal's health checks require: a pickle naming more vectors than
its index holds would make the collection damaged.

Usage: python3 tests/bench/gen.py OUT_DIR ROWS [PICKLE_IDS] [TOPICS] [SHAPE]
TOPICS (default 0: all of the base's topics) puts every new row in that many topics: 1 gives
one topic of ROWS rows (the rows view's benchmark). SHAPE is `docs` (default: a vector and a
~1 KB document per row) or `vectors` (a vector and a small metadata, no document: the shape
of a WAL fed embeddings only).
"""

import os
import pickle
import struct
import random
import shutil
import sqlite3
import sys
import uuid

here = os.path.dirname(os.path.abspath(__file__))
base = os.path.join(here, "..", "fixtures", "v1_5_9")


class PersistentData:
    """Stand-in with the same module and name as Chroma's class, so the pickle has its shape."""


PersistentData.__module__ = "chromadb.segment.impl.vector.local_persistent_hnsw"
# pickle looks the class up by module path when writing: register a stand-in module.
_parts = PersistentData.__module__.split(".")
for _i in range(1, len(_parts) + 1):
    sys.modules.setdefault(".".join(_parts[:_i]), type(sys)(".".join(_parts[:_i])))
sys.modules[PersistentData.__module__].PersistentData = PersistentData


def main(out, rows, pickle_ids=0, ntopics=0, shape="docs"):
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(base, out)
    db = sqlite3.connect(os.path.join(out, "chroma.sqlite3"))
    topics = [t for (t,) in db.execute("SELECT DISTINCT topic FROM embeddings_queue ORDER BY topic")]
    if ntopics:
        topics = topics[:ntopics]
    top = db.execute("SELECT MAX(seq_id) FROM embeddings_queue").fetchone()[0]
    rng = random.Random(1)
    doc = "lorem ipsum dolor sit amet " * 40
    db.execute("BEGIN")
    batch = []
    for i in range(rows):
        if shape == "vectors":
            meta = '{"source": "bench", "n": %d}' % i
        else:
            meta = '{"chroma:document": "%s %d", "source": "bench", "n": %d}' % (doc, i, i)
        batch.append((top + 1 + i, rng.randrange(3), topics[i % len(topics)], f"b{i}",
                      os.urandom(1536), "FLOAT32", meta))
        if len(batch) == 20000:
            db.executemany("INSERT INTO embeddings_queue (seq_id, operation, topic, id, vector, encoding, metadata) VALUES (?,?,?,?,?,?,?)", batch)
            batch = []
    if batch:
        db.executemany("INSERT INTO embeddings_queue (seq_id, operation, topic, id, vector, encoding, metadata) VALUES (?,?,?,?,?,?,?)", batch)
    bound = top + int(rows * 0.9)
    db.execute("UPDATE max_seq_id SET seq_id = ?", (bound,))
    # Segments that never recorded progress (small, empty) stay unknown, as in real life.
    if pickle_ids:
        (seg,) = db.execute(
            "SELECT s.id FROM segments s JOIN collections c ON c.id = s.collection "
            "WHERE c.name = 'papers' AND s.scope = 'VECTOR'").fetchone()
        db.execute("DELETE FROM max_seq_id WHERE segment_id = ?", (seg,))
        ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(pickle_ids)]
        folder = os.path.join(out, seg)
        hdr = struct.Struct("<i6QiI3QdQ")
        with open(os.path.join(folder, "header.bin"), "rb") as f:
            h = list(hdr.unpack(f.read(hdr.size)))
        dim = (h[5] - h[6]) // 4  # label_offset - offset_data: the float vector's bytes
        old_n = h[3]
        h[2] = h[3] = pickle_ids  # max_elements, cur_element_count
        with open(os.path.join(folder, "header.bin"), "wb") as f:
            f.write(hdr.pack(*h))
        # The new elements live on level 0: a zero size each, after the old elements' lists
        # (which hold their upper levels, so the file is longer than 4 bytes an element).
        lists = os.path.getsize(os.path.join(folder, "link_lists.bin")) + (pickle_ids - old_n) * 4
        for name, size in [("data_level0.bin", pickle_ids * h[4]), ("length.bin", pickle_ids * 4),
                           ("link_lists.bin", lists)]:
            with open(os.path.join(folder, name), "r+b") as f:
                f.truncate(max(size, os.path.getsize(os.path.join(folder, name))))
        p = PersistentData()
        p.__dict__ = {
            "dimensionality": dim,
            "total_elements_added": pickle_ids,
            "max_seq_id": bound,
            "id_to_label": {k: i + 1 for i, k in enumerate(ids)},
            "label_to_id": {i + 1: k for i, k in enumerate(ids)},
            "id_to_seq_id": {k: top + i for i, k in enumerate(ids)},
        }
        with open(os.path.join(out, seg, "index_metadata.pickle"), "wb") as f:
            pickle.dump(p, f, protocol=4)
    db.execute("COMMIT")
    db.close()
    print(f"{out}: {rows} extra WAL rows, bound {bound}, "
          f"{os.path.getsize(os.path.join(out, 'chroma.sqlite3')) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0,
         int(sys.argv[4]) if len(sys.argv) > 4 else 0, sys.argv[5] if len(sys.argv) > 5 else "docs")
