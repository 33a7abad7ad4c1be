"""LangGraph's long-term memory store (``langgraph.store.base.BaseStore``) on ctxstore.

Items are ctxstore state values (``ctx.put`` / ``ctx.search_state``) in namespace
``(root, *namespace)``: versioned, audited, per tenant, encryptable by namespace. With an index
configuration, the text at each indexed field is embedded on the client and stored as a
ctxstore memory in the same namespace (``ctx.remember``), carrying the item's key and a copy of
its value so that filters and vector ranking run together in one ``ctx.recall``. These index
entries have no TTL of their own: a vector search returns only items that are still live, and
forgets the entries of those that expired.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
from collections.abc import Generator, Iterable, Sequence
from datetime import timedelta
from typing import Any

from langgraph.store.base.batch import AsyncBatchedBaseStore
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)
from psycopg.types.json import Jsonb

from ctxstore._db import Connection, Database, Setup
from ctxstore._filters import document_filter
from ctxstore._recall import SIMILARITY_ONLY, Embedding, values_steps

_GET = """SELECT namespace, key, value, created_at, updated_at
            FROM ctx.search_state(%s::text[], %s, 1, 0, include_descendants => false, include_expired => %s)"""
# the most recently updated first, as PostgresStore lists them
_SEARCH = """SELECT namespace, key, value, created_at, updated_at
               FROM ctx.search_state(%s::text[], %s, %s, %s, include_expired => %s, order_by => 'updated_at')"""
# a get that refreshes the item's TTL, in one round trip (the touch changes no column read)
_GET_REFRESHING = """WITH touched AS MATERIALIZED (SELECT ctx.touch(%s::text[], ARRAY[%s]) AS n)
                     SELECT s.namespace, s.key, s.value, s.created_at, s.updated_at
                       FROM touched, ctx.search_state(%s::text[], %s, 1, 0, include_descendants => false,
                                                      include_expired => %s) AS s"""
_TOUCH = "SELECT ctx.touch(%s::text[], %s::text[])"
_PUT = "SELECT ctx.put(%s::text[], %s, %s, ttl => %s)"
_DELETE = "SELECT ctx.delete_key(%s::text[], %s)"
_FORGET = "SELECT ctx.forget(%s::text[], %s)"
# The entries of an item that expired or went. One statement: an item put again concurrently
# is either visible here (nothing is forgotten) or its new entries are not (they stay).
_FORGET_ORPHANS = """SELECT ctx.forget(%s::text[], %s)
                      WHERE NOT EXISTS (SELECT FROM ctx.search_state(%s::text[], %s, 1, 0, include_descendants => false,
                                                                     include_expired => %s))"""
_REMEMBER = """SELECT ctx.remember(%s::text[], d.content, d.embedding::real[], %s)
                 FROM (VALUES {values}) AS d(content, embedding)"""
_RECALL = """SELECT namespace, metadata->>'lg_key' AS key, similarity
               FROM ctx.recall(%s::text[], %s::ctx.embedding, k => %s, filter => %s, weights => %s, metric => %s)"""
_NAMESPACES = """SELECT DISTINCT s.namespace[2:%s] AS ns FROM ctx.state s
                  WHERE s.tenant = ctx.current_tenant() AND s.namespace[1] = %s AND s.version > 0
                    AND (%s OR s.expires_at IS NULL OR s.expires_at > now()) {conditions}
                  ORDER BY 1 LIMIT %s OFFSET %s"""



_LOCK_ITEMS = """SELECT count(pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('ctxstore.lg_item' || chr(31) || ctx.current_tenant() || chr(31) || i, 0)))
                   FROM (SELECT DISTINCT i FROM unnest(%s::text[]) AS i ORDER BY i) AS items"""
_log = logging.getLogger(__name__)

_DISTANCE_TYPES = {"cosine": "cosine", "l2": "l2", "inner_product": "inner_product"}


class CtxstoreStore(Setup, BaseStore):
    """A LangGraph store whose items live in ctxstore.

    ``index`` (``{"dims": ..., "embed": ..., "fields": [...]}``) enables semantic search with a
    client-side embedding function; ``ttl`` (``{"default_ttl": minutes}``) gives items a time
    to live, which reads restart unless ``refresh_on_read`` is False or a read passes
    ``refresh_ttl=False`` (``ctx.touch``). ``root`` is the first label of every ctxstore
    namespace the store uses (LangGraph reserves "langgraph" for itself, so no application
    namespace can collide with it).
    Filters use ctxstore's filter language, which includes LangGraph's operators ($eq, $ne,
    $gt, $gte, $lt, $lte) and adds $in, $nin, $contains, $exists, $or, $and, $not.
    """

    supports_ttl = True

    def __init__(
        self,
        conn: Connection,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        root: str = "langgraph",
    ) -> None:
        self._db = Database(conn)
        self.root = root
        self.ttl_config = ttl
        self._sweeper: tuple[threading.Thread, threading.Event, concurrent.futures.Future[None]] | None = None
        self.index_config = index
        if index is not None:
            distance = index.get("distance_type") or "cosine"
            if distance not in _DISTANCE_TYPES:
                raise ValueError(f"unknown distance_type {distance!r}: use cosine, l2 or inner_product")
            self.embeddings = ensure_embeddings(index["embed"])
            self.index_fields = index.get("fields") or ["$"]

    # The database's background worker sweeps expired items (ctxstore.sweep_interval); these
    # run ctx.sweep from the client as well, for databases without the worker and for the
    # sweep interval the TTL config asks for.
    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> concurrent.futures.Future[None]:
        """Sweeps every ``sweep_interval_minutes`` (default: the TTL config's) in a daemon
        thread until :meth:`stop_ttl_sweeper`; the future completes when it stops. Without an
        interval there is nothing to run and the future is already done."""
        if self._db.is_async:
            raise TypeError("the TTL sweeper of an async connection runs on its loop: use AsyncCtxstoreStore")
        interval = sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes")
        if self._sweeper is not None:
            return self._sweeper[2]
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        if not interval:
            done.set_result(None)
            return done
        stop = threading.Event()

        def sweep_until_stopped() -> None:
            while not stop.wait(interval * 60):
                try:
                    self._db.sweep()
                except Exception:  # a failed sweep is retried at the next interval
                    _log.exception("ctx.sweep failed; retrying in %s minutes", interval)
            done.set_result(None)

        thread = threading.Thread(target=sweep_until_stopped, name="ctxstore-ttl-sweeper", daemon=True)
        self._sweeper = (thread, stop, done)
        thread.start()
        return done

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stops the sweeper; whether it stopped within ``timeout`` seconds."""
        if self._sweeper is None:
            return True
        thread, stop, _ = self._sweeper
        stop.set()
        thread.join(timeout)
        if not thread.is_alive():
            self._sweeper = None
        return not thread.is_alive()

    # -- planning: ops -> statements -----------------------------------------------------

    @property
    def _include_expired(self) -> bool:
        # as LangGraph's stores: an expired item stays readable until the database's retention
        # sweep deletes it, unless the TTL config says {"omit_expired": True}
        return not (self.ttl_config or {}).get("omit_expired", False)

    @property
    def _metric(self) -> str:
        return _DISTANCE_TYPES[(self.index_config or {}).get("distance_type") or "cosine"]

    def _score(self, similarity: float) -> float:
        """recall's similarity as LangGraph's stores score: cosine similarity, the inner
        product, or the negative euclidean distance (recall gives l2 as 1 / (1 + distance))."""
        if self._metric == "l2":
            return -(1.0 / similarity - 1.0) if similarity > 0 else -math.inf
        return similarity

    def _ns(self, namespace: Sequence[str]) -> list[str]:
        return [self.root, *namespace]

    def _index_texts(self, op: PutOp) -> list[str]:
        """The texts to embed for a put; none without an index or with index=False."""
        if self.index_config is None or op.value is None or op.index is False:
            return []
        texts: list[str] = []
        for field in self.index_fields if op.index is None else op.index:
            # ("$" is the whole value as LangGraph's stores embed it: JSON with sorted keys)
            texts += get_text_at_path(op.value, "$" if field == "$" else tokenize_path(field))
        return texts

    @staticmethod
    def _ttl(minutes: float | None) -> timedelta | None:
        return timedelta(minutes=minutes) if minutes is not None else None

    def _get_step(self, op: GetOp) -> tuple[str, Any]:
        ns = self._ns(op.namespace)
        if not op.refresh_ttl:
            return _GET, (ns, Jsonb({"key": op.key}), self._include_expired)
        return _GET_REFRESHING, (ns, op.key, ns, Jsonb({"key": op.key}), self._include_expired)

    def _refresh(self, items: list[Item]) -> Generator[tuple[str, Any], Any, None]:
        """Restarts the TTLs of items a search returned, one statement per namespace."""
        by_namespace: dict[tuple[str, ...], list[str]] = {}
        for item in items:
            by_namespace.setdefault(item.namespace, []).append(item.key)
        for namespace, keys in by_namespace.items():
            yield _TOUCH, (self._ns(namespace), keys)

    def _put_steps(self, op: PutOp, vectors: list[list[float]], texts: list[str]) -> list[tuple[str, Any]]:
        ns = self._ns(op.namespace)
        own = Jsonb({"namespace": ns, "lg_key": op.key})
        steps: list[tuple[str, Any]] = []
        if self.index_config is not None:
            steps.append((_FORGET, (ns, own)))
        if op.value is None:
            steps.append((_DELETE, (ns, op.key)))
            return steps
        ttl = self._ttl(op.ttl)
        steps.append((_PUT, (ns, op.key, Jsonb(op.value), ttl)))
        if texts:
            metadata = Jsonb({"lg_key": op.key, "value": op.value})
            steps += values_steps(_REMEMBER, (ns, metadata), [(t, Embedding(v)) for t, v in zip(texts, vectors)],
                                  ("text", "ctx.embedding"))
        return steps


    def _namespaces_step(self, op: ListNamespacesOp) -> tuple[str, Any]:
        conditions, params = [], []
        for condition in op.match_conditions or ():
            path = list(condition.path)
            if condition.match_type == "prefix":
                conditions.append("cardinality(s.namespace) >= %s")
                params.append(len(path) + 1)
                for i, label in enumerate(path):
                    if label != "*":
                        conditions.append("s.namespace[%s] = %s")
                        params.extend([i + 2, label])
            else:
                conditions.append("cardinality(s.namespace) >= %s")
                params.append(len(path) + 1)
                for i, label in enumerate(path):
                    if label != "*":
                        conditions.append("s.namespace[cardinality(s.namespace) - %s] = %s")
                        params.extend([len(path) - 1 - i, label])
        sql = _NAMESPACES.format(conditions="".join(f" AND {c}" for c in conditions))
        depth = (op.max_depth + 1) if op.max_depth is not None else 33
        return sql, (depth, self.root, self._include_expired, *params, op.limit, op.offset)

    def _item(self, row: dict[str, Any], score: float | None = None, search: bool = False) -> Item:
        namespace = tuple(row["namespace"][1:])
        if search:
            return SearchItem(
                namespace, row["key"], row["value"], row["created_at"], row["updated_at"], score
            )
        return Item(
            value=row["value"],
            key=row["key"],
            namespace=namespace,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    # -- execution: one transaction per batch ------------------------------------------
    # Each op runs as a generator that yields statements and receives their rows, so the
    # same logic drives a sync cursor and an async one.

    def _op(self, op: Op, texts: list[str], vectors: list[list[float]], query: list[float] | None) -> Generator[tuple[str, Any], list[dict[str, Any]], Result]:
        if isinstance(op, GetOp):
            rows = yield self._get_step(op)
            return self._item(rows[0]) if rows else None
        if isinstance(op, PutOp):
            for step in self._put_steps(op, vectors, texts):
                yield step
            return None
        if isinstance(op, ListNamespacesOp):
            rows = yield self._namespaces_step(op)
            return [tuple(r["ns"]) for r in rows]
        if not isinstance(op, SearchOp):
            raise ValueError(f"unknown store operation {type(op).__name__}")
        if query is None:
            rows = yield (_SEARCH, (self._ns(op.namespace_prefix), Jsonb(document_filter(op.filter)), op.limit, op.offset, self._include_expired))
            found = [self._item(r, None, search=True) for r in rows]
        else:
            found = yield from self._vector_search(op, query)
        if op.refresh_ttl:
            yield from self._refresh(found)
        return found

    def _vector_search(self, op: SearchOp, vector: list[float]) -> Generator[tuple[str, Any], list[dict[str, Any]], list[SearchItem]]:
        """Live items ranked by their best-matching indexed field, paged: recall memories until
        offset + limit live items are covered (doubling k while several fields of one item
        match, or hits belong to items that expired or went; their entries are forgotten)."""
        ns = self._ns(op.namespace_prefix)
        wanted = op.offset + op.limit
        k = max(wanted * len(self.index_fields), 10)
        checked: dict[tuple[tuple[str, ...], str], SearchItem | None] = {}
        while True:
            rows = yield (_RECALL, (ns, Embedding(vector), k, Jsonb(document_filter(op.filter, "$.value.")), SIMILARITY_ONLY, self._metric))
            best: dict[tuple[tuple[str, ...], str], float] = {}
            for r in rows:  # best first: the first hit of an item is its score
                best.setdefault((tuple(r["namespace"]), r["key"]), self._score(float(r["similarity"])))
            live: list[SearchItem] = []
            for (item_ns, key), score in best.items():
                if len(live) == wanted:
                    break
                if (item_ns, key) not in checked:
                    found = yield (_GET, (list(item_ns), Jsonb({"key": key}), self._include_expired))
                    checked[(item_ns, key)] = self._item(found[0], score, search=True) if found else None
                    if not found:
                        own = Jsonb({"namespace": list(item_ns), "lg_key": key})
                        yield (_FORGET_ORPHANS, (list(item_ns), own, list(item_ns), Jsonb({"key": key}), self._include_expired))
                if checked[(item_ns, key)] is not None:
                    live.append(checked[(item_ns, key)])  # type: ignore[arg-type]
            if len(rows) < k or len(live) >= wanted:
                return live[op.offset : wanted]
            k *= 2

    def _lock_step(self, ops: list[Op]) -> tuple[str, Any] | None:
        """With an index, a put is forget + put + remember: concurrent puts of one item must
        take turns, or each forgets only the entries committed before it and both sets stay.
        The batch's items are locked up front, in one order, so batches cannot deadlock."""
        if self.index_config is None:
            return None
        items = sorted({chr(31).join([*self._ns(op.namespace), str(op.key)]) for op in ops if isinstance(op, PutOp)})
        return (_LOCK_ITEMS, (items,)) if items else None

    def _ranks(self, op: Op) -> bool:
        """Whether an op is a search ranked by its query (needs an index)."""
        return isinstance(op, SearchOp) and bool(op.query) and self.index_config is not None

    def _prepare(self, ops: Iterable[Op]) -> tuple[list[Op], list[str], list[list[str]]]:
        """The ops, the queries to embed, and each op's texts to embed (in op order)."""
        ops = list(ops)
        for op in ops:
            validate_op_namespace(op)
        # without an index a query is ignored and the search lists items, as LangGraph's stores do
        queries = [op.query for op in ops if self._ranks(op)]
        texts = [self._index_texts(op) if isinstance(op, PutOp) else [] for op in ops]
        return ops, queries, texts

    def _generators(
        self, ops: list[Op], query_vectors: list[list[float]], texts: list[list[str]], vectors: list[list[float]]
    ) -> list[Generator[Any, Any, Result]]:
        queries = iter(query_vectors)
        generators, at = [], 0
        for op, own in zip(ops, texts):
            query = next(queries) if self._ranks(op) else None
            generators.append(self._op(op, own, vectors[at : at + len(own)], query))
            at += len(own)
        return generators

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops, queries, texts = self._prepare(ops)
        all_texts = [t for own in texts for t in own]
        query_vectors = [self.embeddings.embed_query(q) for q in queries]
        vectors = self.embeddings.embed_documents(all_texts) if all_texts else []
        results: list[Result] = []
        with self._db.cursor() as cur:
            if lock := self._lock_step(ops):
                cur.execute(*lock)
            for gen in self._generators(ops, query_vectors, texts, vectors):
                try:
                    statement = next(gen)
                    while True:
                        cur.execute(*statement)
                        statement = gen.send(cur.fetchall())  # (always a SELECT: see Database.run)
                except StopIteration as done:
                    results.append(done.value)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        if not self._db.is_async:
            return await self._db.in_thread(self.batch, ops)
        ops, queries, texts = self._prepare(ops)
        all_texts = [t for own in texts for t in own]
        query_vectors = [await self.embeddings.aembed_query(q) for q in queries]
        vectors = await self.embeddings.aembed_documents(all_texts) if all_texts else []
        results: list[Result] = []
        async with self._db.acursor() as cur:
            if lock := self._lock_step(ops):
                await cur.execute(*lock)
            for gen in self._generators(ops, query_vectors, texts, vectors):
                try:
                    statement = next(gen)
                    while True:
                        await cur.execute(*statement)
                        statement = gen.send(await cur.fetchall())
                except StopIteration as done:
                    results.append(done.value)
        return results


class AsyncCtxstoreStore(AsyncBatchedBaseStore):
    """The store for an async connection or pool (as LangGraph's ``AsyncPostgresStore``): a
    :class:`CtxstoreStore` behind LangGraph's batching queue.

    Concurrent calls are queued and run together, one batch per transaction, so thousands of
    concurrent ``aput`` / ``aget`` calls take one connection of a pool at a time instead of
    waiting for one each. Its sync methods work from threads other than the event loop's: they
    run on the loop the store was created on (from the loop's own thread they raise
    ``asyncio.InvalidStateError``: use the async methods there).
    """

    supports_ttl = True

    def __init__(
        self,
        conn: Connection,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        root: str = "langgraph",
    ) -> None:
        self.store = CtxstoreStore(conn, index=index, ttl=ttl, root=root)
        self._sweep_task: asyncio.Task[None] | None = None
        if not self.store._db.is_async:
            raise TypeError(
                "AsyncCtxstoreStore needs an AsyncConnection or AsyncConnectionPool; "
                "use CtxstoreStore with a sync one"
            )
        super().__init__()

    @property
    def root(self) -> str:
        return self.store.root

    @property
    def index_config(self) -> IndexConfig | None:
        return self.store.index_config

    @property
    def ttl_config(self) -> TTLConfig | None:
        return self.store.ttl_config

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await self.store.abatch(ops)

    async def asetup(self) -> None:
        await self.store.asetup()

    def setup(self) -> None:
        return self.batch_on_loop(self.asetup())

    def batch_on_loop(self, coro: Any) -> Any:
        """Runs a coroutine on the store's loop from another thread."""
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            coro.close()
            raise asyncio.InvalidStateError(
                "synchronous calls to AsyncCtxstoreStore are only allowed from a different thread "
                "than the event loop's: use the async methods (e.g. await store.asetup())"
            )
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> asyncio.Task[None] | None:
        """Runs ctx.sweep every ``sweep_interval_minutes`` (default: the TTL config's) in a
        task on the store's loop until :meth:`stop_ttl_sweeper`; None without an interval."""
        interval = sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes")
        if not interval:
            return None
        if self._sweep_task is None or self._sweep_task.done():

            async def sweep_until_cancelled() -> None:
                while True:
                    await asyncio.sleep(interval * 60)
                    try:
                        await self.store._db.asweep()
                    except Exception:  # retried at the next interval
                        _log.exception("ctx.sweep failed; retrying in %s minutes", interval)

            self._sweep_task = self._loop.create_task(sweep_until_cancelled())
        return self._sweep_task

    async def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stops the sweeper; whether it stopped within ``timeout`` seconds."""
        task, self._sweep_task = self._sweep_task, None
        if task is None or task.done():
            return True
        task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.CancelledError:
            return True
        except asyncio.TimeoutError:
            return False
        return True


__all__ = ["AsyncCtxstoreStore", "CtxstoreStore"]
