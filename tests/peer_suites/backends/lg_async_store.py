"""langgraph-checkpoint-postgres tests/test_async_store.py: the store on async connections."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from ctxstore.store import AsyncCtxstoreStore as CtxstoreStore

from backends import storage_access
from backends.common import aconnection, new_tenant

TTL_MINUTES = 6 / 60


def _store(conn: Any, tenant: str, **kwargs: Any) -> CtxstoreStore:
    store = CtxstoreStore(conn, **kwargs)
    store._tenant = tenant
    return store


@pytest.fixture(scope="function", params=["default", "pipe", "pool"])
async def store(request) -> AsyncIterator[CtxstoreStore]:
    ttl = {"default_ttl": TTL_MINUTES, "refresh_on_read": True, "sweep_interval_minutes": TTL_MINUTES / 2}
    tenant = new_tenant()
    async with aconnection(request.param, tenant) as conn:
        s = _store(conn, tenant, ttl=ttl)
        await s.asetup()
        await s.start_ttl_sweeper()
        yield s
        await s.stop_ttl_sweeper()


@asynccontextmanager
async def _create_pool_store() -> AsyncIterator[CtxstoreStore]:
    tenant = new_tenant()
    async with aconnection("pool", tenant) as pool:
        s = _store(pool, tenant)
        await s.asetup()
        yield s


@asynccontextmanager
async def _create_vector_store(
    vector_type: str,
    distance_type: str,
    fake_embeddings: Any,
    text_fields: list[str] | None = None,
) -> AsyncIterator[CtxstoreStore]:
    index = {
        "dims": fake_embeddings.dims,
        "embed": fake_embeddings,
        "ann_index_config": {"vector_type": vector_type},
        "distance_type": distance_type,
        "fields": text_fields,
    }
    tenant = new_tenant()
    async with aconnection("base", tenant) as conn:
        s = _store(conn, tenant, index=index)
        await s.asetup()
        yield s


async def _aexpire_now(store: CtxstoreStore, ns: tuple[str, ...], key: str) -> None:
    storage_access.expire_now(store, ns, key)


async def _arow_exists(store: CtxstoreStore, ns: tuple[str, ...], key: str) -> bool:
    return storage_access.row_exists(store, ns, key)


async def _astored_expires_at(store: CtxstoreStore, ns: tuple[str, ...], key: str) -> Any:
    return storage_access.stored_expires_at(store, ns, key)
