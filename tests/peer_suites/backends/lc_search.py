"""langchain-postgres v2 search tests: the vector stores each test class builds, as
CtxstoreVectorStore in a namespace per table of the peer, on a pool of a new tenant per class.

How each of the peer's table layouts maps: metadata columns without a JSON column keep only
those keys (``metadata_keys``); ``store_metadata=True`` keeps all; the id and content column
names are the names filters use; a hybrid search config is passed through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from langchain_core.embeddings import DeterministicFakeEmbedding
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from ctxstore.vectorstores import CtxstoreVectorStore

from backends.common import dsn, new_tenant, options

VECTOR_SIZE = 768
embeddings_service = DeterministicFakeEmbedding(size=VECTOR_SIZE)
FILTER_KEYS = ["name", "code", "price", "is_available", "tags", "inventory_location",
               "available_quantity", "specs"]


def _test_module(request: Any) -> Any:
    return request.module  # the peer's module: its documents, ids and table names


def _pool() -> ConnectionPool:
    return ConnectionPool(dsn(), min_size=1, max_size=4, open=True,
                          kwargs={"autocommit": True, "options": options(new_tenant())})


async def _apool() -> AsyncConnectionPool:
    pool = AsyncConnectionPool(dsn(), min_size=1, max_size=4, open=False,
                               kwargs={"autocommit": True, "options": options(new_tenant())})
    await pool.open()
    return pool


def _store(engine: Any, table: str, **kwargs: Any) -> CtxstoreVectorStore:
    return CtxstoreVectorStore(engine, embeddings_service, namespace=("lc", table), **kwargs)


# -- test_pg_vectorstore_search.py: PGVectorStore (sync and async methods) ------------------

@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearch_engine(self: Any) -> AsyncIterator[ConnectionPool]:
    with _pool() as pool:
        yield pool


TestVectorStoreSearch_engine_sync = TestVectorStoreSearch_engine
TestVectorStoreSearchSync_engine_sync = TestVectorStoreSearch_engine


@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearch_vs(self: Any, request: Any, engine: Any) -> AsyncIterator[CtxstoreVectorStore]:
    m = _test_module(request)
    vs = _store(engine, m.DEFAULT_TABLE, metadata_keys=[])
    await vs.aadd_documents(m.docs, ids=m.ids)
    yield vs


@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearch_vs_custom(self: Any, request: Any, engine_sync: Any) -> AsyncIterator[CtxstoreVectorStore]:
    m = _test_module(request)
    vs = _store(engine_sync, m.CUSTOM_TABLE, metadata_keys=[], id_column="myid", content_column="mycontent")
    vs.add_documents(m.docs, ids=m.ids)
    yield vs


@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearch_vs_custom_filter(self: Any, request: Any, engine: Any) -> AsyncIterator[CtxstoreVectorStore]:
    m = _test_module(request)
    vs = _store(engine, m.CUSTOM_FILTER_TABLE, metadata_keys=FILTER_KEYS)
    await vs.aadd_documents(m.filter_docs, ids=m.ids)
    yield vs


@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearch_vs_metadata_json(self: Any, request: Any, engine: Any) -> AsyncIterator[CtxstoreVectorStore]:
    m = _test_module(request)
    vs = _store(engine, m.CUSTOM_METADATA_JSON_TABLE)
    await vs.aadd_documents(m.filter_docs, ids=m.ids)
    yield vs


@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearchSync_vs_custom(self: Any, request: Any, engine_sync: Any) -> AsyncIterator[CtxstoreVectorStore]:
    m = _test_module(request)
    vs = _store(engine_sync, m.DEFAULT_TABLE_SYNC, metadata_keys=[], id_column="myid", content_column="mycontent")
    vs.add_documents(m.docs, ids=m.ids)
    yield vs


@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearchSync_vs_custom_filter_sync(self: Any, request: Any, engine_sync: Any) -> AsyncIterator[CtxstoreVectorStore]:
    m = _test_module(request)
    vs = _store(engine_sync, m.CUSTOM_FILTER_TABLE_SYNC, metadata_keys=FILTER_KEYS)
    vs.add_documents(m.filter_docs, ids=m.ids)
    yield vs


@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearchSync_vs_metadata_json_sync(self: Any, request: Any, engine_sync: Any) -> AsyncIterator[CtxstoreVectorStore]:
    m = _test_module(request)
    vs = _store(engine_sync, m.CUSTOM_METADATA_JSON_TABLE_SYNC)
    vs.add_documents(m.filter_docs, ids=m.ids)
    yield vs
