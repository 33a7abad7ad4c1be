"""langchain-postgres tests/utils.py: the connections its chat-history tests open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import psycopg

from backends.common import dsn, new_tenant, options


@asynccontextmanager
async def asyncpg_client() -> AsyncIterator[psycopg.AsyncConnection]:
    conn = await psycopg.AsyncConnection.connect(dsn(), options=options(new_tenant()))
    try:
        yield conn
    finally:
        await conn.close()


@contextmanager
def syncpg_client() -> Iterator[psycopg.Connection]:
    conn = psycopg.connect(dsn(), options=options(new_tenant()))
    try:
        yield conn
    finally:
        conn.close()
