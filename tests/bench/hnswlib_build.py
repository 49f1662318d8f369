"""Time chroma-hnswlib building the live vectors of a persist dir's largest index with that
index's M and ef_construction, on THREADS threads: the baseline `compact` is measured against.

Usage: hnswlib_build.py PERSIST_DIR THREADS   (run with the cw-0.4.22 venv's Python)
Prints: seconds=<build time> recall=<recall@10 at ef 10 on 200 of its own vectors> n=<count>
"""

import os
import struct
import sys
import time

import hnswlib
import numpy as np

d, threads = sys.argv[1], int(sys.argv[2])
segs = [s for s in os.listdir(d) if os.path.isfile(os.path.join(d, s, "header.bin"))]
seg = max(segs, key=lambda s: os.path.getsize(os.path.join(d, s, "data_level0.bin")))
h = open(os.path.join(d, seg, "header.bin"), "rb").read()
n, size, label_at, data_at = struct.unpack_from("<QQQQ", h, 20)
m = struct.unpack_from("<Q", h, 76)[0]
efc = struct.unpack_from("<Q", h, 92)[0]
dim = (label_at - data_at) // 4
raw = np.fromfile(os.path.join(d, seg, "data_level0.bin"), dtype=np.uint8, count=n * size).reshape(n, size)
live = (raw[:, 2] & 1) == 0
x = np.ascontiguousarray(raw[live, data_at:label_at]).view(np.float32).reshape(-1, dim)
del raw
p = hnswlib.Index(space="l2", dim=dim)
p.init_index(max_elements=len(x), ef_construction=int(efc), M=int(m))
t = time.time()
p.add_items(x, np.arange(len(x)), num_threads=threads)
took = time.time() - t
step = max(1, len(x) // 200)
q = x[::step][:200]
d2 = ((q ** 2).sum(1)[:, None] - 2 * q @ x.T + (x ** 2).sum(1)[None, :])
exact = np.argsort(d2, axis=1)[:, :10]
p.set_ef(10)
got, _ = p.knn_query(q, k=10)
rec = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, exact)])
print(f"seconds={took:.2f} recall={rec:.4f} n={len(x)}")
