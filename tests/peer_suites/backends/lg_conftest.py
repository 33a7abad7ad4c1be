"""langgraph-checkpoint-postgres tests/conftest.py: the admin connection and the per-test
cleanup. Each swapped backend is a new tenant, so there is nothing to clear between tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg.rows import dict_row

from backends.common import dsn, new_tenant, options


@pytest.fixture(scope="function")
async def conn() -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(
        dsn(), autocommit=True, prepare_threshold=0, row_factory=dict_row, options=options(new_tenant())
    ) as c:
        yield c


@pytest.fixture(scope="function", autouse=True)
async def clear_test_db() -> None:
    return None
