"""LangGraph checkpointers on ctxstore's checkpoint store (``ctx.checkpoint_*``).

A LangGraph thread is a ctxstore context (``ctx.thread_context``): its checkpoints live beside
the thread's messages and working memory, follow its tenant, are sealed with its data key when
the context is encrypted, and are audited like every other ctxstore table. Channel values are
stored once per (channel, version), so a step that changes one channel writes one value.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import TASKS
from psycopg.types.json import Jsonb

from ctxstore._db import Connection, Database, Setup

# Values travel in binary (%b, and binary results for reads): a checkpoint's message history
# is often hundreds of kilobytes, and hex-escaped text would double it and cost a parse each way.
_PUT = """SELECT ctx.checkpoint_put(%s, %s, %s, %s, %s, %s::text[], %s::text[], %s::text[], %b::bytea[])"""
_PUT_WRITES = """SELECT ctx.checkpoint_put_writes(%s, %s, %s, %s, %s::int[], %s::text[], %s::text[],
                                                  %b::bytea[], %s, %s)"""
_GET = "SELECT * FROM ctx.checkpoint_get(%s, %s, %s)"
_LIST = "SELECT * FROM ctx.checkpoint_list(%s, %s, %s, %s, %s, %s)"
_DELETE_THREAD = "SELECT ctx.checkpoint_delete_thread(%s)"
_DELETE_RUNS = "SELECT ctx.checkpoint_delete_runs(%s::text[])"
_COPY_THREAD = "SELECT ctx.checkpoint_copy_thread(%s, %s)"
_PRUNE = "SELECT ctx.checkpoint_prune(%s::text[], %s)"
_THREAD = "SELECT ctx.thread_context(%s) IS NOT NULL AS made"

_PRUNE_STRATEGIES = {"keep_latest": 1, "delete": 0}


class CtxstoreSaver(Setup, BaseCheckpointSaver[str]):
    """A LangGraph checkpointer stored in ctxstore.

    ``conn`` is a psycopg connection or pool, sync or async: with a sync one the async methods
    run the sync ones in a worker thread; with an async one only the async methods work (use
    :class:`AsyncCtxstoreSaver`, which also serves sync calls from other threads).
    ``shallow=True`` keeps only the latest checkpoint of each thread and namespace (as
    LangGraph's ``ShallowPostgresSaver``): each put prunes the older ones, and their writes, in
    the same transaction.
    """

    def __init__(
        self, conn: Connection, *, serde: SerializerProtocol | None = None, shallow: bool = False
    ) -> None:
        super().__init__(serde=serde)
        self._db = Database(conn)
        self.shallow = shallow

    def _put_steps(self, params: tuple[Any, ...]) -> list[tuple[str, Any]]:
        if not self.shallow:
            return [(_PUT, params)]
        # A put holds the thread's checkpoint lock shared and a prune takes it exclusive: the
        # exclusive lock comes first (the thread made to exist, then a prune that keeps what is
        # there), or two concurrent puts on one thread would each wait for the other's share.
        thread = [params[0]]
        return [(_THREAD, (params[0],)), (_PRUNE, (thread, 1)), (_PUT, params), (_PRUNE, (thread, 1))]

    # -- rows <-> LangGraph values -------------------------------------------------------

    def _put_params(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[tuple[Any, ...], RunnableConfig]:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns") or ""
        values = checkpoint["channel_values"]
        document = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        channels, versions, types, blobs = [], [], [], []
        for channel, version in new_versions.items():
            type_, blob = (
                self.serde.dumps_typed(values[channel]) if channel in values else ("empty", None)
            )
            channels.append(channel)
            versions.append(str(version))
            types.append(type_)
            blobs.append(blob)
        params = (
            thread_id,
            checkpoint_ns,
            Jsonb(document),
            Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
            configurable.get("checkpoint_id"),
            channels,
            versions,
            types,
            blobs,
        )
        next_config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        return params, next_config

    def _writes_params(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> tuple[Any, ...]:
        configurable = config["configurable"]
        idxs, channels, types, blobs = [], [], [], []
        for idx, (channel, value) in enumerate(writes):
            type_, blob = self.serde.dumps_typed(value)
            idxs.append(WRITES_IDX_MAP.get(channel, idx))
            channels.append(channel)
            types.append(type_)
            blobs.append(blob)
        # special writes (errors, interrupts) replace earlier ones; others are written once
        overwrite = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        return (
            str(configurable["thread_id"]),
            configurable.get("checkpoint_ns") or "",
            configurable["checkpoint_id"],
            task_id,
            idxs,
            channels,
            types,
            blobs,
            task_path,
            overwrite,
        )

    @staticmethod
    def _get_params(config: RunnableConfig) -> tuple[Any, ...]:
        configurable = config["configurable"]
        return (
            str(configurable["thread_id"]),
            configurable.get("checkpoint_ns") or "",
            get_checkpoint_id(config),
        )

    @staticmethod
    def _list_params(
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> tuple[Any, ...]:
        configurable = (config or {}).get("configurable", {})
        thread_id = configurable.get("thread_id")
        return (
            str(thread_id) if thread_id is not None else None,
            configurable.get("checkpoint_ns"),
            Jsonb(filter) if filter else None,
            get_checkpoint_id(before) if before else None,
            limit,
            get_checkpoint_id(config) if config else None,
        )

    @staticmethod
    def _sends_parent(row: dict[str, Any]) -> str | None:
        """The parent whose pending sends a checkpoint saved before format v4 takes over
        (LangGraph moved sends from a parent's writes into the child's TASKS channel)."""
        if row["checkpoint"].get("v", 4) < 4 and row["parent_checkpoint_id"]:
            return str(row["parent_checkpoint_id"])
        return None

    @staticmethod
    def _attach_sends(row: dict[str, Any], parent: dict[str, Any] | None) -> dict[str, Any]:
        sends = []
        if parent is not None:
            sends = [
                (type_, bytes(blob))
                for channel, type_, blob in zip(parent["write_channels"], parent["write_types"], parent["write_blobs"])
                if channel == TASKS
            ]
        return {**row, "pending_sends": sends}

    def _load_checkpoint_tuple(self, value: dict[str, Any]) -> CheckpointTuple:
        """A row of ctx.checkpoint_get / ctx.checkpoint_list as LangGraph's tuple (the name
        and shape of the peer's hook: async in the async saver, as there)."""
        return self._row_to_tuple(value)

    async def _aload(self, row: dict[str, Any]) -> CheckpointTuple:
        loaded = self._load_checkpoint_tuple(row)
        return await loaded if inspect.isawaitable(loaded) else loaded

    def _row_to_tuple(self, row: dict[str, Any]) -> CheckpointTuple:

        def config(checkpoint_id: str) -> RunnableConfig:
            return {
                "configurable": {
                    "thread_id": row["thread_id"],
                    "checkpoint_ns": row["checkpoint_ns"],
                    "checkpoint_id": checkpoint_id,
                }
            }

        checkpoint = dict(row["checkpoint"])
        channel_values = {
            channel: self.serde.loads_typed((type_, bytes(blob)))
            for channel, type_, blob in zip(row["channels"], row["types"], row["blobs"])
            if type_ != "empty"
        }
        sends = row.get("pending_sends")
        if sends:
            channel_values[TASKS] = [self.serde.loads_typed(s) for s in sends]
            versions = dict(checkpoint.get("channel_versions") or {})
            versions[TASKS] = max(versions.values()) if versions else self.get_next_version(None, None)
            checkpoint["channel_versions"] = versions
        pending_writes = [
            (task_id, channel, self.serde.loads_typed((type_, bytes(blob))))
            for task_id, channel, type_, blob in zip(
                row["write_task_ids"], row["write_channels"], row["write_types"], row["write_blobs"]
            )
        ]
        return CheckpointTuple(
            config=config(row["checkpoint_id"]),
            checkpoint={**checkpoint, "channel_values": channel_values},  # type: ignore[typeddict-item]
            metadata=row["metadata"],
            parent_config=config(row["parent_checkpoint_id"]) if row["parent_checkpoint_id"] else None,
            pending_writes=pending_writes,
        )

    @staticmethod
    def _prune_keep(strategy: str) -> int:
        try:
            return _PRUNE_STRATEGIES[strategy]
        except KeyError:
            raise ValueError(
                f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'"
            ) from None

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Zero-padded counter and a random fraction: versions sort as strings."""
        if current is None:
            counter = 0
        elif isinstance(current, int):
            counter = current
        else:
            counter = int(current.split(".")[0])
        return f"{counter + 1:032}.{random.random():016}"

    # -- sync ----------------------------------------------------------------------------

    def _scalar(self, sql: str, params: tuple[Any, ...]) -> Any:
        with self._db.cursor(single=True) as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
        return None if row is None else next(iter(row.values()))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        params, next_config = self._put_params(config, checkpoint, metadata, new_versions)
        self._db.run(*self._put_steps(params))
        return next_config

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if writes:
            self._scalar(_PUT_WRITES, self._writes_params(config, writes, task_id, task_path))

    # (a legacy checkpoint's parent is read by a second statement: the parent's writes are
    # immutable once its child exists, so the two reads need no transaction around them)
    def _with_sends(self, cur: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            parent_id = self._sends_parent(row)
            if parent_id is not None:
                cur.execute(_GET, (row["thread_id"], row["checkpoint_ns"], parent_id), binary=True)
                row = self._attach_sends(row, cur.fetchone())
            out.append(row)
        return out

    async def _awith_sends(self, cur: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            parent_id = self._sends_parent(row)
            if parent_id is not None:
                await cur.execute(_GET, (row["thread_id"], row["checkpoint_ns"], parent_id), binary=True)
                row = self._attach_sends(row, await cur.fetchone())
            out.append(row)
        return out

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        with self._db.cursor(single=True) as cur:
            cur.execute(_GET, self._get_params(config), binary=True)
            rows = self._with_sends(cur, cur.fetchall())
        return self._load_checkpoint_tuple(rows[0]) if rows else None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        with self._db.cursor(single=True) as cur:
            cur.execute(_LIST, self._list_params(config, filter, before, limit), binary=True)
            rows = self._with_sends(cur, cur.fetchall())
        for row in rows:
            yield self._load_checkpoint_tuple(row)

    def delete_thread(self, thread_id: str) -> None:
        self._scalar(_DELETE_THREAD, (str(thread_id),))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._scalar(_DELETE_RUNS, ([str(r) for r in run_ids],))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._scalar(_COPY_THREAD, (str(source_thread_id), str(target_thread_id)))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        keep = self._prune_keep(strategy)
        self._scalar(_PRUNE, ([str(t) for t in thread_ids], keep))

    # -- async ---------------------------------------------------------------------------

    async def _ascalar(self, sql: str, params: tuple[Any, ...]) -> Any:
        async with self._db.acursor(single=True) as cur:
            await cur.execute(sql, params)
            row = await cur.fetchone()
        return None if row is None else next(iter(row.values()))

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if not self._db.is_async:
            return await self._db.in_thread(self.put, config, checkpoint, metadata, new_versions)
        params, next_config = self._put_params(config, checkpoint, metadata, new_versions)
        await self._db.arun(*self._put_steps(params))
        return next_config

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if not self._db.is_async:
            return await self._db.in_thread(self.put_writes, config, writes, task_id, task_path)
        if writes:
            await self._ascalar(_PUT_WRITES, self._writes_params(config, writes, task_id, task_path))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        if not self._db.is_async:
            return await self._db.in_thread(self.get_tuple, config)
        async with self._db.acursor(single=True) as cur:
            await cur.execute(_GET, self._get_params(config), binary=True)
            rows = await self._awith_sends(cur, await cur.fetchall())
        return await self._aload(rows[0]) if rows else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        if not self._db.is_async:
            tuples = await self._db.in_thread(
                lambda: list(self.list(config, filter=filter, before=before, limit=limit))
            )
            for item in tuples:
                yield item
            return
        async with self._db.acursor(single=True) as cur:
            await cur.execute(_LIST, self._list_params(config, filter, before, limit), binary=True)
            rows = await self._awith_sends(cur, await cur.fetchall())
        for row in rows:
            yield await self._aload(row)

    async def adelete_thread(self, thread_id: str) -> None:
        if not self._db.is_async:
            return await self._db.in_thread(self.delete_thread, thread_id)
        await self._ascalar(_DELETE_THREAD, (str(thread_id),))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        if not self._db.is_async:
            return await self._db.in_thread(self.delete_for_runs, run_ids)
        await self._ascalar(_DELETE_RUNS, ([str(r) for r in run_ids],))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        if not self._db.is_async:
            return await self._db.in_thread(self.copy_thread, source_thread_id, target_thread_id)
        await self._ascalar(_COPY_THREAD, (str(source_thread_id), str(target_thread_id)))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if not self._db.is_async:
            return await self._db.in_thread(self.prune, thread_ids, strategy=strategy)
        keep = self._prune_keep(strategy)
        await self._ascalar(_PRUNE, ([str(t) for t in thread_ids], keep))


class AsyncCtxstoreSaver(CtxstoreSaver):
    """The checkpointer for an async connection or pool.

    Its sync methods (``graph.invoke`` / ``graph.stream``) work from threads other than the
    event loop's: they run the async ones on the loop the saver was created on.
    """

    def __init__(
        self, conn: Connection, *, serde: SerializerProtocol | None = None, shallow: bool = False
    ) -> None:
        super().__init__(conn, serde=serde, shallow=shallow)
        if not self._db.is_async:
            raise TypeError(
                "AsyncCtxstoreSaver needs an AsyncConnection or AsyncConnectionPool; "
                "use CtxstoreSaver with a sync one"
            )
        self.loop = asyncio.get_running_loop()

    def _on_loop(self, coro: Any) -> Any:
        try:
            if asyncio.get_running_loop() is self.loop:
                coro.close()
                raise asyncio.InvalidStateError(
                    "synchronous calls to AsyncCtxstoreSaver are only allowed from a different "
                    "thread than the event loop's; from the main thread use the async methods "
                    "(e.g. graph.ainvoke) or CtxstoreSaver"
                )
        except RuntimeError:
            pass
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _load_checkpoint_tuple(self, value: dict[str, Any]) -> CheckpointTuple:  # type: ignore[override]
        return self._row_to_tuple(value)

    def setup(self) -> None:
        return self._on_loop(self.asetup())

    def put(self, config, checkpoint, metadata, new_versions):  # type: ignore[no-untyped-def]
        return self._on_loop(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(self, config, writes, task_id, task_path=""):  # type: ignore[no-untyped-def]
        return self._on_loop(self.aput_writes(config, writes, task_id, task_path))

    def get_tuple(self, config):  # type: ignore[no-untyped-def]
        return self._on_loop(self.aget_tuple(config))

    def list(self, config, *, filter=None, before=None, limit=None):  # type: ignore[no-untyped-def]
        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._on_loop(collect())

    def delete_thread(self, thread_id):  # type: ignore[no-untyped-def]
        return self._on_loop(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids):  # type: ignore[no-untyped-def]
        return self._on_loop(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id, target_thread_id):  # type: ignore[no-untyped-def]
        return self._on_loop(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids, *, strategy="keep_latest"):  # type: ignore[no-untyped-def]
        return self._on_loop(self.aprune(thread_ids, strategy=strategy))
