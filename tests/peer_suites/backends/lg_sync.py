"""langgraph-checkpoint-postgres tests/test_sync.py: the checkpointers, on a plain connection,
a pool, a pipelined connection, and the shallow variant."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ctxstore.checkpoint import CtxstoreSaver

from backends.common import connection


@contextmanager
def _saver_on(kind: str, shallow: bool = False) -> Iterator[CtxstoreSaver]:
    with connection(kind) as conn:
        saver = CtxstoreSaver(conn, shallow=shallow)
        saver.setup()
        yield saver


def _pool_saver():
    return _saver_on("pool")


def _pipe_saver():
    return _saver_on("pipe")


def _base_saver():
    return _saver_on("base")


def _shallow_saver():
    return _saver_on("base", shallow=True)
