"""Connections: every adapter takes a psycopg connection or pool, sync or async.

A call runs in a transaction of its own, or in a savepoint of the caller's when the caller's
connection is already inside one: ctxstore's writes join the application's transaction.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar, Union

import psycopg
from psycopg.rows import dict_row

try:  # psycopg-pool is optional
    from psycopg_pool import AsyncConnectionPool, ConnectionPool
except ImportError:  # pragma: no cover - exercised only without the pool extra
    ConnectionPool = AsyncConnectionPool = None  # type: ignore[assignment,misc]

Connection = Union[
    psycopg.Connection[Any],
    psycopg.AsyncConnection[Any],
    "ConnectionPool[Any]",
    "AsyncConnectionPool[Any]",
]
T = TypeVar("T")


class Database:
    """The connection (or pool) an adapter was given."""

    def __init__(self, conn: Connection) -> None:
        sync_types: tuple[type, ...] = (psycopg.Connection,)
        async_types: tuple[type, ...] = (psycopg.AsyncConnection,)
        if ConnectionPool is not None:
            sync_types += (ConnectionPool,)
            async_types += (AsyncConnectionPool,)
        if not isinstance(conn, sync_types + async_types):
            raise TypeError(
                "conn must be a psycopg Connection, AsyncConnection, ConnectionPool or "
                f"AsyncConnectionPool, not {type(conn).__name__}"
            )
        self.conn = conn
        self.is_async = isinstance(conn, async_types)
        # one connection serves one statement at a time: callers in several threads (LangGraph
        # writes from a thread pool) or tasks take turns; a pool hands each its own connection
        self._lock = threading.RLock()
        self._alock: asyncio.Lock | None = None

    @contextmanager
    def cursor(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        if self.is_async:
            raise TypeError(
                "this adapter was given an async connection: use its async (a-prefixed) methods"
            )
        if isinstance(self.conn, psycopg.Connection):
            with self._lock, self.conn.transaction(), self.conn.cursor(row_factory=dict_row) as cur:
                yield cur
        else:
            with self.conn.connection() as c, c.transaction(), c.cursor(row_factory=dict_row) as cur:  # type: ignore[union-attr]
                yield cur

    @asynccontextmanager
    async def acursor(self) -> AsyncIterator[psycopg.AsyncCursor[dict[str, Any]]]:
        if isinstance(self.conn, psycopg.AsyncConnection):
            if self._alock is None:
                self._alock = asyncio.Lock()
            async with self._alock, self.conn.transaction(), self.conn.cursor(row_factory=dict_row) as cur:
                yield cur
        else:
            async with self.conn.connection() as c, c.transaction(), c.cursor(row_factory=dict_row) as cur:  # type: ignore[union-attr]
                yield cur

    async def in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs a sync method from async code (an adapter given a sync connection)."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def run(self, *steps: tuple[str, Any]) -> list[dict[str, Any]]:
        """Runs statements in one transaction; returns the rows of the last."""
        rows: list[dict[str, Any]] = []
        with self.cursor() as cur:
            for sql, params in steps:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description else []
        return rows

    async def arun(self, *steps: tuple[str, Any]) -> list[dict[str, Any]]:
        """:meth:`run` on an async connection."""
        rows: list[dict[str, Any]] = []
        async with self.acursor() as cur:
            for sql, params in steps:
                await cur.execute(sql, params)
                rows = await cur.fetchall() if cur.description else []
        return rows
