"""A LangChain byte store on ctxstore state, e.g. for CacheBackedEmbeddings.

    CTXSTORE_DSN="dbname=app user=agent_app" python examples/langchain_bytestore.py
"""

import os
import uuid

import psycopg

from ctxstore.storage import CtxstoreByteStore

with psycopg.connect(os.environ["CTXSTORE_DSN"], autocommit=True) as conn:
    store = CtxstoreByteStore(conn, namespace=["examples", "bytes", str(uuid.uuid4())])
    store.mset([("embedding:hello", b"\x00\x01\x02"), ("embedding:world", b"\xff\xfe")])
    print(store.mget(["embedding:hello", "embedding:missing"]))
    print(sorted(store.yield_keys(prefix="embedding:")))
    store.mdelete(["embedding:hello"])
    print(list(store.yield_keys()))
