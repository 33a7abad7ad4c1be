"""langgraph-checkpoint-postgres tests/test_store.py: the store on the three connection kinds,
with and without a vector index; the helpers that reach into the backend's table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from ctxstore.store import CtxstoreStore

from backends import storage_access
from backends.common import connection, new_tenant

TTL_MINUTES = 6 / 60


def _store(conn: Any, tenant: str, **kwargs: Any) -> CtxstoreStore:
    store = CtxstoreStore(conn, **kwargs)
    store._tenant = tenant
    return store


@pytest.fixture(scope="function", params=["default", "pipe", "pool"])
def store(request) -> Iterator[CtxstoreStore]:
    ttl = {"default_ttl": TTL_MINUTES, "refresh_on_read": True, "sweep_interval_minutes": TTL_MINUTES / 2}
    tenant = new_tenant()
    with connection(request.param, tenant) as conn:
        s = _store(conn, tenant, ttl=ttl)
        s.setup()
        s.start_ttl_sweeper()
        yield s
        s.stop_ttl_sweeper()


@contextmanager
def _create_vector_store(
    vector_type: str,
    distance_type: str,
    fake_embeddings: Any,
    text_fields: list[str] | None = None,
    enable_ttl: bool = True,
) -> Iterator[CtxstoreStore]:
    index = {
        "dims": fake_embeddings.dims,
        "embed": fake_embeddings,
        "ann_index_config": {"vector_type": vector_type},
        "distance_type": distance_type,
        "fields": text_fields,
    }
    tenant = new_tenant()
    with connection("base", tenant) as conn:
        s = _store(conn, tenant, index=index,
                   ttl={"default_ttl": 2, "refresh_on_read": True} if enable_ttl else None)
        s.setup()
        s.setup()  # idempotent
        yield s


def _expire_now(store: CtxstoreStore, ns: tuple[str, ...], key: str) -> None:
    storage_access.expire_now(store, ns, key)


def _row_exists(store: CtxstoreStore, ns: tuple[str, ...], key: str) -> bool:
    return storage_access.row_exists(store, ns, key)


def _stored_expires_at(store: CtxstoreStore, ns: tuple[str, ...], key: str) -> Any:
    return storage_access.stored_expires_at(store, ns, key)
