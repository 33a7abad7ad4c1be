"""LangChain's LLM cache on ctxstore: a repeated prompt is answered from the database.

    CTXSTORE_DSN="dbname=app user=agent_app" python examples/langchain_cache.py
"""

import os
from datetime import timedelta

import psycopg
from langchain_core.globals import set_llm_cache
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from ctxstore.cache import CtxstoreCache

with psycopg.connect(os.environ["CTXSTORE_DSN"], autocommit=True) as conn:
    cache = CtxstoreCache(conn, ttl=timedelta(days=7))
    set_llm_cache(cache)
    model = FakeListChatModel(responses=["four", "a different answer"])
    first = model.invoke("What is 2+2?").content
    second = model.invoke("What is 2+2?").content  # from the cache: the model is not called
    print(first, second)
    cache.clear()
    set_llm_cache(None)
