"""langgraph-checkpoint-postgres tests/test_async.py: the async checkpointers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ctxstore.checkpoint import AsyncCtxstoreSaver

from backends.common import aconnection


@asynccontextmanager
async def _saver_on(kind: str, shallow: bool = False) -> AsyncIterator[AsyncCtxstoreSaver]:
    async with aconnection(kind) as conn:
        saver = AsyncCtxstoreSaver(conn, shallow=shallow)
        await saver.asetup()
        yield saver


def _pool_saver():
    return _saver_on("pool")


def _pipe_saver():
    return _saver_on("pipe")


def _base_saver():
    return _saver_on("base")


def _shallow_saver():
    return _saver_on("base", shallow=True)
