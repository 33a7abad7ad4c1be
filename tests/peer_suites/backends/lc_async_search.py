"""langchain-postgres v2 async search tests (AsyncPGVectorStore: async methods only): the
stores as in lc_search, on an async pool of a new tenant per class."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from psycopg_pool import AsyncConnectionPool

from ctxstore.vectorstores import CtxstoreVectorStore

from backends.lc_search import FILTER_KEYS, _apool, _store, _test_module

# -- test_async_pg_vectorstore_search.py: AsyncPGVectorStore (async methods) -----------------

@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearch_engine(self: Any) -> AsyncIterator[AsyncConnectionPool]:
    pool = await _apool()
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearch_vs(self: Any, request: Any, engine: Any) -> AsyncIterator[CtxstoreVectorStore]:
    m = _test_module(request)
    vs = _store(engine, m.DEFAULT_TABLE, metadata_keys=[])
    await vs.aadd_documents(m.docs, ids=m.ids)
    yield vs


@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearch_vs_custom(self: Any, request: Any, engine: Any) -> AsyncIterator[CtxstoreVectorStore]:
    m = _test_module(request)
    vs = _store(engine, m.CUSTOM_TABLE, metadata_keys=[], id_column="myid", content_column="mycontent")
    await vs.aadd_documents(m.docs, ids=m.ids)
    yield vs


@pytest_asyncio.fixture(scope="class")
async def TestVectorStoreSearch_vs_hybrid_search_with_tsv_column(self: Any, request: Any, engine: Any) -> AsyncIterator[CtxstoreVectorStore]:
    m = _test_module(request)
    config = m.HybridSearchConfig(
        tsv_column="mycontent_tsv",
        tsv_lang="pg_catalog.english",
        fts_query="my_fts_query",
        fusion_function=m.reciprocal_rank_fusion,
        fusion_function_parameters={"rrf_k": 60, "fetch_top_k": 10},
    )
    vs = _store(engine, m.HYBRID_SEARCH_TABLE1, metadata_keys=["doc_id_key"], id_column="myid",
                content_column="mycontent", hybrid_search_config=config)
    await vs.aadd_documents(m.hybrid_docs)
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
