"""Print everything Chroma owns in a persist dir except the WAL rows: schema, migrations,
queue config, max_seq_id, segments, collections, pragmas, and a hash of every file of the
live segments' folders.
Standard library only; opens the database read-only."""

import hashlib
import json
import os
import sqlite3
import sys


def main(path):
    conn = sqlite3.connect(f"file:{path}/chroma.sqlite3?mode=ro", uri=True)
    q = lambda sql: [list(map(repr, r)) for r in conn.execute(sql).fetchall()]
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    state = {
        "schema": q("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"),
        "migrations": q("SELECT * FROM migrations ORDER BY dir, version"),
        "max_seq_id": q("SELECT * FROM max_seq_id ORDER BY segment_id"),
        "segments": q("SELECT * FROM segments ORDER BY id"),
        "collections": q("SELECT * FROM collections ORDER BY id"),
        "user_version": q("PRAGMA user_version"),
        "page_size": q("PRAGMA page_size"),
    }
    if "embeddings_queue_config" in names:
        state["config"] = q("SELECT * FROM embeddings_queue_config")
    files = {}
    # Live segments' folders only: orphan folders are what `--orphan-dirs` reclaims.
    live = {r[0] for r in conn.execute("SELECT id FROM segments")}
    for entry in sorted(os.listdir(path)):
        p = os.path.join(path, entry)
        if os.path.isdir(p) and entry in live:
            for f in sorted(os.listdir(p)):
                with open(os.path.join(p, f), "rb") as fh:
                    files[f"{entry}/{f}"] = hashlib.sha256(fh.read()).hexdigest()
    state["segment_files"] = files
    state["wal_rows"] = conn.execute("SELECT COUNT(*) FROM embeddings_queue").fetchone()[0]
    json.dump(state, sys.stdout, sort_keys=True, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
