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

from ctxstore._recall import register_embedding

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
_SWEEP = "SELECT ctx.sweep(%s)"
SWEEP_BATCH = 10000  # rows a ctx.sweep call deletes at most: sweeps repeat while a call is full


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
        register_embedding(conn)
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
        register_embedding(conn)
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

    def sweep(self) -> int:
        """Runs ctx.sweep until nothing is left, on a connection of its own: a pool's, or for a
        single connection a new one to the same database (the caller's connection may be in
        a transaction or a pipeline of the application's)."""
        total = 0
        with self._own_connection() as conn:
            while True:
                swept = conn.execute(_SWEEP, (SWEEP_BATCH,)).fetchone()[0]
                total += swept
                if swept < SWEEP_BATCH:
                    return total

    @contextmanager
    def _own_connection(self) -> Iterator[Any]:
        if isinstance(self.conn, psycopg.Connection):
            params = self.conn.info.get_parameters()
            with psycopg.connect(**params, password=self.conn.info.password, autocommit=True) as c:
                yield c
        else:
            with self.conn.connection() as c:  # type: ignore[union-attr]
                yield c

    async def asweep(self) -> int:
        """:meth:`sweep` on an async connection or pool."""
        total = 0
        async with self._aown_connection() as conn:
            while True:
                swept = (await (await conn.execute(_SWEEP, (SWEEP_BATCH,))).fetchone())[0]
                total += swept
                if swept < SWEEP_BATCH:
                    return total

    @asynccontextmanager
    async def _aown_connection(self) -> AsyncIterator[Any]:
        if isinstance(self.conn, psycopg.AsyncConnection):
            params = self.conn.info.get_parameters()
            async with await psycopg.AsyncConnection.connect(
                **params, password=self.conn.info.password, autocommit=True
            ) as c:
                yield c
        else:
            async with self.conn.connection() as c:  # type: ignore[union-attr]
                yield c

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


class Setup:
    """The peers' ``setup()`` / ``asetup()`` for an adapter holding ``self._db``: nothing to
    create (the extension owns the tables), so it checks that ctxstore is there and usable."""

    _db: Database

    def setup(self) -> None:
        """Checks that ctxstore is installed and usable by this role."""
        self._db.check()

    async def asetup(self) -> None:
        """:meth:`setup`, async."""
        if not self._db.is_async:
            return await self._db.in_thread(self.setup)
        await self._db.acheck()
