"""Open a persist dir with a real chromadb client, use it, and keep it open until killed."""

import sys
import time

import chromadb
from chromadb.config import Settings

c = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
for col in c.list_collections():
    name = col if isinstance(col, str) else col.name
    c.get_collection(name, embedding_function=None).count()
print("READY", flush=True)
time.sleep(600)
