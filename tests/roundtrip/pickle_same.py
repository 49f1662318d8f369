"""Check that every PersistentData pickle in a persist dir is byte for byte what the release's
own `pickle.dump(obj, f, pickle.HIGHEST_PROTOCOL)` writes for the object it holds (run with
the release's Python, whose class the pickle names). Prints how many were checked."""

import os
import pickle
import sys

try:
    from chromadb.segment.impl.vector.local_persistent_hnsw import PersistentData
except ImportError:  # 1.x: no Python index segment, and its pickles are plain dicts
    PersistentData = None

# 0.5.5's __setstate__ puts two counters first: the object it builds is not the one the file
# was dumped from. Without it, BUILD fills __dict__ in the file's own order.
if PersistentData is not None and "__setstate__" in PersistentData.__dict__:
    delattr(PersistentData, "__setstate__")

checked = 0
for entry in sorted(os.listdir(sys.argv[1])):
    p = os.path.join(sys.argv[1], entry, "index_metadata.pickle")
    if not os.path.isfile(p):
        continue
    data = open(p, "rb").read()
    obj = pickle.loads(data)
    if isinstance(obj, dict):  # 1.x writes a plain dict (serde-pickle), not this class
        continue
    again = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    assert again == data, f"{p}: Python writes {len(again)} bytes for this object, the file has {len(data)}"
    checked += 1
print(checked)
