"""langgraph-checkpoint-conformance against CtxstoreSaver (sync connection) and
AsyncCtxstoreSaver (async connection), every capability. The suite's own capability report is
printed and written to tests/reports/."""

from __future__ import annotations

import json
import os
import pathlib

import pytest
from conftest import aconnect, connect
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import ProgressCallbacks

from ctxstore.checkpoint import AsyncCtxstoreSaver, CtxstoreSaver

REPORTS = pathlib.Path(os.environ.get("CTXSTORE_REPORTS") or pathlib.Path(__file__).parent / "reports")


@checkpointer_test(name="CtxstoreSaver")
async def sync_saver():
    conn = connect()
    try:
        yield CtxstoreSaver(conn)
    finally:
        conn.close()


@checkpointer_test(name="AsyncCtxstoreSaver")
async def async_saver():
    conn = await aconnect()
    try:
        yield AsyncCtxstoreSaver(conn)
    finally:
        await conn.close()


@pytest.mark.parametrize("registered", [sync_saver, async_saver], ids=lambda r: r.name)
async def test_conformance(registered) -> None:
    report = await validate(registered, progress=ProgressCallbacks.verbose())
    report.print_report()
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / f"{registered.name}.json").write_text(json.dumps(report.to_dict(), indent=2))
    failures = {
        cap: result.failures
        for cap, result in report.results.items()
        if result.passed is False
    }
    assert not failures, failures
    assert report.passed_all(), report.to_dict()
