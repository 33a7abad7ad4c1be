"""Connections for the swapped fixtures: the three kinds the peers test (plain, pipelined,
pool), sync and async, each as a new tenant."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool


def dsn() -> str:
    return os.environ["CTXSTORE_TEST_DSN"]


def new_tenant() -> str:
    return f"peer-{uuid.uuid4()}"


def options(tenant: str) -> str:
    return f"-c ctxstore.tenant={tenant}"


@contextmanager
def connection(kind: str, tenant: str | None = None) -> Iterator[Any]:
    """``kind``: "base" (or "default"), "pipe" or "pool"; the peers' connection settings."""
    opts = options(tenant or new_tenant())
    if kind == "pool":
        with ConnectionPool(
            dsn(), min_size=1, max_size=10, open=True,
            kwargs={"autocommit": True, "prepare_threshold": 0, "options": opts},
        ) as pool:
            yield pool
        return
    with psycopg.connect(dsn(), autocommit=True, prepare_threshold=0, options=opts) as conn:
        if kind == "pipe":
            with conn.pipeline():
                yield conn
        else:
            yield conn


@asynccontextmanager
async def aconnection(kind: str, tenant: str | None = None) -> AsyncIterator[Any]:
    """:func:`connection`, async."""
    opts = options(tenant or new_tenant())
    if kind == "pool":
        async with AsyncConnectionPool(
            dsn(), min_size=1, max_size=10, open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "options": opts},
        ) as pool:
            yield pool
        return
    async with await psycopg.AsyncConnection.connect(
        dsn(), autocommit=True, prepare_threshold=0, options=opts
    ) as conn:
        if kind == "pipe":
            async with conn.pipeline():
                yield conn
        else:
            yield conn
