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

# setup(): ctxstore's schema is the extension's, so there is nothing to migrate; this calls a
# function the role must be granted (ctx.grant_access), and fails with 3F000 / 42883 / 42501
# when the extension is missing or the role may not use it
_CHECK = "SELECT ctx.current_tenant() AS tenant"


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

    @staticmethod
    def _needs_transaction(conn: Any, single: bool) -> bool:
        # one statement on an idle autocommit connection is atomic by itself: no BEGIN / COMMIT
        # round trips; inside the caller's transaction it still gets a savepoint, so that a
        # failure the caller catches does not abort the caller's transaction
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        return not (single and conn.autocommit and idle)

    @contextmanager
    def cursor(self, single: bool = False) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """A cursor in a transaction (or the caller's); ``single``: for one statement only."""
        if self.is_async:
            raise TypeError(
                "this adapter was given an async connection: use its async (a-prefixed) methods"
            )
        if isinstance(self.conn, psycopg.Connection):
            with self._lock:
                yield from self._sync_cursor(self.conn, single)
        else:
            with self.conn.connection() as c:  # type: ignore[union-attr]
                yield from self._sync_cursor(c, single)

    def _sync_cursor(self, conn: Any, single: bool) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        if self._needs_transaction(conn, single):
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                yield cur
        else:
            with conn.cursor(row_factory=dict_row) as cur:
                yield cur

    @asynccontextmanager
    async def acursor(self, single: bool = False) -> AsyncIterator[psycopg.AsyncCursor[dict[str, Any]]]:
        """:meth:`cursor` on an async connection."""
        if isinstance(self.conn, psycopg.AsyncConnection):
            if self._alock is None:
                self._alock = asyncio.Lock()
            async with self._alock, self._async_cursor(self.conn, single) as cur:
                yield cur
        else:
            async with self.conn.connection() as c, self._async_cursor(c, single) as cur:  # type: ignore[union-attr]
                yield cur

    @asynccontextmanager
    async def _async_cursor(self, conn: Any, single: bool) -> AsyncIterator[psycopg.AsyncCursor[dict[str, Any]]]:
        if self._needs_transaction(conn, single):
            async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                yield cur
        else:
            async with conn.cursor(row_factory=dict_row) as cur:
                yield cur

    def check(self) -> None:
        """Fails clearly when the database lacks ctxstore or this role may not use it."""
        self.run((_CHECK, None))

    async def acheck(self) -> None:
        """:meth:`check` on an async connection."""
        await self.arun((_CHECK, None))

    async def in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs a sync method from async code (an adapter given a sync connection)."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    # Every statement the adapters send is a SELECT, so its rows are always fetched: on a
    # pipelined connection ``cursor.description`` stays None until the results are fetched, and
    # testing it first would silently read nothing.
    def run(self, *steps: tuple[str, Any]) -> list[dict[str, Any]]:
        """Runs statements in one transaction; returns the rows of the last."""
        rows: list[dict[str, Any]] = []
        with self.cursor(single=len(steps) == 1) as cur:
            for sql, params in steps:
                cur.execute(sql, params)
                rows = cur.fetchall()
        return rows

    async def arun(self, *steps: tuple[str, Any]) -> list[dict[str, Any]]:
        """:meth:`run` on an async connection."""
        rows: list[dict[str, Any]] = []
        async with self.acursor(single=len(steps) == 1) as cur:
            for sql, params in steps:
                await cur.execute(sql, params)
                rows = await cur.fetchall()
        return rows
