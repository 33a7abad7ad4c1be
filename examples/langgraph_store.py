"""LangGraph's long-term memory store on ctxstore: items, filters and semantic search.

    CTXSTORE_DSN="dbname=app user=agent_app" python examples/langgraph_store.py
"""

import os
import uuid

import psycopg

from ctxstore.store import CtxstoreStore

WORDS = ["pizza", "pasta", "sushi", "tea", "coffee", "train", "flight"]


def embed(texts: list[str]) -> list[list[float]]:
    """A toy embedding (bag of words); use a real model in an application."""
    return [[float(t.lower().count(w)) + 0.01 for w in WORDS] for t in texts]


with psycopg.connect(os.environ["CTXSTORE_DSN"], autocommit=True) as conn:
    store = CtxstoreStore(conn, index={"dims": len(WORDS), "embed": embed, "fields": ["text"]})
    user = ("users", str(uuid.uuid4()), "memories")
    store.put(user, "m1", {"text": "Loves pizza and pasta", "kind": "food"})
    store.put(user, "m2", {"text": "Takes the train to work", "kind": "travel"})
    store.put(user, "m3", {"text": "Drinks tea, never coffee", "kind": "food"}, ttl=60 * 24)
    for item in store.search(user, query="what pasta do they like?", filter={"kind": "food"}, limit=2):
        print(f"{item.score:.3f} {item.key} {item.value['text']}")
    print(store.list_namespaces(prefix=("users",), max_depth=2)[:1])
