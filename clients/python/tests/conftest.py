"""The database under test: CTXSTORE_TEST_DSN names a database with ctxstore (and pgvector)
installed; scripts/test_clients.sh starts one. Every fixture connects as a tenant of its own,
so tests never see each other's data (ctxstore's row-level security does the isolation)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest


def dsn() -> str:
    value = os.environ.get("CTXSTORE_TEST_DSN")
    if not value:
        pytest.exit("CTXSTORE_TEST_DSN is not set: run scripts/test_clients.sh", returncode=2)
    return value


def tenant_options() -> str:
    return f"-c ctxstore.tenant=test-{uuid.uuid4()}"


def connect() -> psycopg.Connection:
    return psycopg.connect(dsn(), autocommit=True, options=tenant_options())


async def aconnect() -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(dsn(), autocommit=True, options=tenant_options())


@pytest.fixture
def conn() -> Iterator[psycopg.Connection]:
    with connect() as c:
        yield c


@pytest.fixture
async def aconn() -> AsyncIterator[psycopg.AsyncConnection]:
    c = await aconnect()
    try:
        yield c
    finally:
        await c.close()
