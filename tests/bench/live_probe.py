"""A writer that behaves like a live Chroma: one committed row every 10 ms, rollback journal,
busy timeout 1000 s. It records how long each commit waited and prints the worst.

Usage: python3 live_probe.py CHROMA_SQLITE3 SECONDS OUT_FILE
It stops after SECONDS, or as soon as OUT_FILE.stop exists, and writes "WORST_MS COMMITS".
"""
import os
import sqlite3
import sys
import time

db, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
conn = sqlite3.connect(db, timeout=1000, isolation_level=None)
topic = "persistent://default/default/00000000-0000-4000-8000-0000000000aa"
worst, n, end = 0.0, 0, time.time() + seconds
with open(out + ".ready", "w") as f:
    f.write("ready")
while time.time() < end and not os.path.exists(out + ".stop"):
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO embeddings_queue (operation, topic, id) VALUES (0, ?, 'probe')", (topic,))
    conn.execute("COMMIT")
    worst = max(worst, time.perf_counter() - t0)
    n += 1
    time.sleep(0.01)
with open(out, "w") as f:
    f.write(f"{worst * 1000:.1f} {n}\n")
