"""What a `canaries` fixture (tests/fixtures/gen/generate.py) still holds of its deleted data.

`scan DIR`: every canary string and canary vector found in any file under DIR (the vectors as
written, and, in index folders, any element pointing the same way, which catches a cosine
index's normalised copy), and any non-zero byte in `length.bin` or `data_level0.bin` past the
elements the header counts. Prints a JSON summary; exit 0 either way (the caller decides).

`same A B` (inside a release's venv): every collection of A and B read through the release's
own API (ids, documents, metadatas, embeddings) must be equal; then B is written on (adds, a
deleted canary id added again, deletes, a query) and must answer as A does after the same.
Standard library and chromadb only.
"""

import json
import math
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures", "gen"))
import generate  # noqa: E402


def f32(v):
    return struct.pack(f"<{len(v)}f", *v)


def header(folder):
    try:
        b = open(os.path.join(folder, "header.bin"), "rb").read()
    except OSError:
        return None
    if len(b) < 100:
        return None
    (version, offset_level0, max_elements, cur, size_per, label_off, data_off, maxlevel,
     ep, max_m, max_m0, m, mult, efc) = struct.unpack("<iQQQQQQiIQQQdQ", b[:100])
    return {"cur": cur, "size": size_per, "data": data_off}


def scan(d):
    strings, vecs = generate.all_canaries()
    raw = [f32(v) for v in vecs]
    units = []
    for v in vecs:
        n = math.sqrt(sum(x * x for x in v))
        units.append([x / n for x in v])
    found = {"strings": {}, "vectors": {}, "elements": {}, "tail_bytes": {}}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            rel = os.path.relpath(p, d)
            data = open(p, "rb").read()
            s = sum(1 for c in strings if c.encode() in data)
            if s:
                found["strings"][rel] = s
            r = sum(1 for c in raw if c in data)
            if r:
                found["vectors"][rel] = r
        h = header(root)
        if h is None:
            continue
        dim = 8
        lvl0 = os.path.join(root, "data_level0.bin")
        data = open(lvl0, "rb").read() if os.path.exists(lvl0) else b""
        hits = 0
        for i in range(len(data) // h["size"]):
            blk = data[i * h["size"] + h["data"]: i * h["size"] + h["data"] + 4 * dim]
            if len(blk) < 4 * dim:
                break
            e = struct.unpack(f"<{dim}f", blk)
            n = math.sqrt(sum(x * x for x in e))
            if n == 0:
                continue
            for u in units:
                if sum(a * b for a, b in zip(e, u)) / n > 0.99999:
                    hits += 1
        if hits:
            found["elements"][os.path.relpath(root, d)] = hits
        tail = data[h["cur"] * h["size"]:]
        ln = os.path.join(root, "length.bin")
        lens = open(ln, "rb").read()[h["cur"] * 4:] if os.path.exists(ln) else b""
        nz = sum(1 for x in tail if x) + sum(1 for x in lens if x)
        if nz:
            found["tail_bytes"][os.path.relpath(root, d)] = nz
    total = {k: sum(v.values()) for k, v in found.items()}
    print(json.dumps({"total": total, "where": found, "canaries": {"strings": len(strings), "vectors": len(vecs)}}, sort_keys=True))


def read_all(c):
    out = {}
    for col in sorted(c.list_collections(), key=lambda x: x if isinstance(x, str) else x.name):
        name = col if isinstance(col, str) else col.name
        col = c.get_collection(name, embedding_function=None)
        got = col.get(include=["documents", "metadatas", "embeddings"])
        embs = got["embeddings"]
        rows = []
        for i, idx in enumerate(got["ids"]):
            e = embs[i] if embs is not None and len(embs) > i else None
            rows.append((idx, got["documents"][i], json.dumps(got["metadatas"][i], sort_keys=True),
                         None if e is None else [float(x) for x in e]))
        out[name] = sorted(rows, key=lambda r: r[0])
        # The full-text index answers as before: the scrub rewrote it.
        for word in ("quick", "document", "secret"):
            hit = col.get(where_document={"$contains": word}, include=[])["ids"]
            out[f"{name} $contains {word}"] = sorted(hit)
    return out


def write_on(c):
    """Adds, a deleted canary id added again, deletes; then what a query returns."""
    answers = {}
    for name, space in generate.CANARY_SPACES:
        col = c.get_collection(name, embedding_function=None)
        dele, _ = generate.canaries_of(space)
        again = dele[0][0]
        ids = [f"after-{space}-{i}" for i in range(30)] + [again]
        col.add(ids=ids, embeddings=[generate.id_vector(x) for x in ids],
                documents=[f"after {x}" for x in ids])
        col.delete(ids=[f"after-{space}-{i}" for i in range(0, 30, 3)])
        q = col.query(query_embeddings=[generate.id_vector(again)], n_results=5, include=["distances"])
        answers[name] = (col.count(), q["ids"][0][:1], sorted(col.get(include=[])["ids"]))
    return answers


def same(a, b):
    ca, cb = generate.client(chromadb, a), generate.client(chromadb, b)
    ra, rb = read_all(ca), read_all(cb)
    if ra != rb:
        for k in sorted(set(ra) | set(rb)):
            if ra.get(k) != rb.get(k):
                print(f"collection {k} differs: {len(ra.get(k) or [])} against {len(rb.get(k) or [])} records")
        sys.exit(1)
    wa, wb = write_on(ca), write_on(cb)
    if wa != wb:
        print(f"writing on differs: {wa} against {wb}")
        sys.exit(1)
    cols = [k for k in ra if "$contains" not in k]
    print(json.dumps({"collections": len(cols), "records": sum(len(ra[k]) for k in cols),
                      "full_text_queries": len(ra) - len(cols)}))


if __name__ == "__main__":
    if sys.argv[1] == "scan":
        scan(sys.argv[2])
    elif sys.argv[1] == "same":
        import chromadb  # noqa: E402

        same(sys.argv[2], sys.argv[3])
