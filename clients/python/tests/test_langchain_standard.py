"""langchain-tests standard suites against the LangChain adapters, each with a sync connection
(async methods run in a worker thread) and with an async connection (native async)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from conftest import aconnect, connect
from langchain_tests.integration_tests import (
    AsyncCacheTestSuite,
    BaseStoreAsyncTests,
    BaseStoreSyncTests,
    SyncCacheTestSuite,
    VectorStoreIntegrationTests,
)

from ctxstore.cache import CtxstoreCache
from ctxstore.storage import CtxstoreByteStore
from ctxstore.vectorstores import CtxstoreVectorStore


class TestVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[CtxstoreVectorStore]:
        with connect() as conn:
            yield CtxstoreVectorStore(conn, self.get_embeddings())


class TestVectorStoreAsyncConnection(VectorStoreIntegrationTests):
    @property
    def has_sync(self) -> bool:
        return False

    @pytest.fixture
    async def vectorstore(self) -> AsyncIterator[CtxstoreVectorStore]:
        conn = await aconnect()
        try:
            yield CtxstoreVectorStore(conn, self.get_embeddings())
        finally:
            await conn.close()


class TestByteStore(BaseStoreSyncTests[bytes]):
    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return b"foo", b"bar", b"\x00\xffbinary AKIAIOSFODNN7EXAMPLE 4111111111111111"

    @pytest.fixture
    def kv_store(self) -> Iterator[CtxstoreByteStore]:
        with connect() as conn:
            yield CtxstoreByteStore(conn)


class TestByteStoreAsync(BaseStoreAsyncTests[bytes]):
    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return b"foo", b"bar", bytes(range(256))

    @pytest.fixture
    async def kv_store(self) -> AsyncIterator[CtxstoreByteStore]:
        conn = await aconnect()
        try:
            yield CtxstoreByteStore(conn)
        finally:
            await conn.close()


class TestCache(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self) -> Iterator[CtxstoreCache]:
        with connect() as conn:
            yield CtxstoreCache(conn)


class TestCacheAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self) -> AsyncIterator[CtxstoreCache]:
        conn = await aconnect()
        try:
            yield CtxstoreCache(conn)
        finally:
            await conn.close()
