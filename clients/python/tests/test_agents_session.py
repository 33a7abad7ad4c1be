"""The OpenAI Agents SDK session on ctxstore, judged against the SDK's own SQLiteSession: the
same operations on both must give the same items (order, limits, settings, pops, clears,
separate sessions). The SDK's published session tests build SQLiteSession / SQLAlchemySession
inline and test their SQLite internals, so there is no fixture to swap; this is the
differential replacement. Plus concurrency (pops never return one item twice) and a real
``Runner`` run with a scripted model that must see the history across turns."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from agents import Agent, Runner, SQLiteSession, set_tracing_disabled
from agents.items import ModelResponse
from agents.memory import SessionSettings
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseOutputMessage, ResponseOutputText
from psycopg_pool import AsyncConnectionPool

from conftest import dsn, tenant_options
from ctxstore.agents_session import CtxstoreSession

set_tracing_disabled(True)


def _items(rng: random.Random, start: int, count: int) -> list[dict[str, Any]]:
    """Items of every shape a run stores: messages (string and part content), tool calls and
    their outputs, reasoning; some with ids, some without."""
    out: list[dict[str, Any]] = []
    for n in range(start, start + count):
        kind = rng.choice(["user", "assistant", "call", "output", "reasoning", "developer"])
        if kind == "user":
            out.append({"role": "user", "content": f"question {n} ünïcödé 🙂"})
        elif kind == "developer":
            out.append({"role": "developer", "content": f"rule {n}"})
        elif kind == "assistant":
            # the Chat Completions converter gives every item this one placeholder id
            out.append({"id": rng.choice([f"msg_{n}", "__fake_id__", "msg_reused"]), "type": "message",
                        "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": f"answer {n}", "annotations": []}]})
        elif kind == "call":
            out.append({"id": rng.choice([f"fc_{n}", "__fake_id__"]), "type": "function_call",
                        "call_id": f"call_{n}", "name": "lookup", "arguments": f'{{"n": {n}}}'})
        elif kind == "output":
            out.append({"type": "function_call_output", "call_id": f"call_{n}", "output": f"result {n}"})
        else:
            out.append({"id": f"rs_{n}", "type": "reasoning", "summary": [{"type": "summary_text", "text": f"thought {n}"}]})
    return out


@pytest.fixture
async def pool() -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(dsn(), min_size=1, max_size=4, open=False,
                                   kwargs={"autocommit": True, "options": tenant_options()}) as p:
        yield p


@pytest.mark.parametrize("seed", range(6))
async def test_behaves_like_the_sdks_sqlite_session(pool: AsyncConnectionPool, tmp_path: Any, seed: int) -> None:
    rng = random.Random(seed)
    db = str(tmp_path / "reference.db")
    pairs = [
        (CtxstoreSession(f"s{seed}", pool), SQLiteSession(f"s{seed}", db)),
        (CtxstoreSession(f"t{seed}", pool), SQLiteSession(f"t{seed}", db)),  # a second, separate session
    ]
    made = 0
    for step in range(40):
        ours, theirs = rng.choice(pairs)
        action = rng.choice(["add", "add", "get", "limit", "pop", "pop", "clear"] if step % 13 else ["clear"])
        if action == "add":
            batch = _items(rng, made, rng.randint(0, 4))
            made += len(batch)
            await ours.add_items(batch)
            await theirs.add_items(batch)
        elif action == "pop":
            assert await ours.pop_item() == await theirs.pop_item(), f"step {step}"
        elif action == "clear":
            await ours.clear_session()
            await theirs.clear_session()
        else:
            limit = rng.choice([0, 1, 2, 5, 100]) if action == "limit" else None
            assert await ours.get_items(limit) == await theirs.get_items(limit), f"step {step} limit {limit}"
    for ours, theirs in pairs:
        assert await ours.get_items() == await theirs.get_items()
        for limit in (0, 1, 3):
            assert await ours.get_items(limit) == await theirs.get_items(limit)
        with_settings = CtxstoreSession(ours.session_id, pool, session_settings=SessionSettings(limit=2))
        reference = SQLiteSession(theirs.session_id, db, session_settings=SessionSettings(limit=2))
        assert await with_settings.get_items() == await reference.get_items()
        assert await with_settings.get_items(5) == await reference.get_items(5)  # an explicit limit wins
        while (item := await theirs.pop_item()) is not None:
            assert await ours.pop_item() == item
        assert await ours.pop_item() is None
        assert await ours.get_items() == []


def test_sync_connections_work_too(conn: psycopg.Connection) -> None:
    session = CtxstoreSession("sync", conn, session_settings={"limit": 1})

    async def scenario() -> None:
        await session.add_items([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
        assert await session.get_items() == [{"role": "user", "content": "b"}]
        assert await session.pop_item() == {"role": "user", "content": "b"}
        await session.clear_session()
        assert await session.get_items(10) == []

    asyncio.run(scenario())
    # the protocol's methods are coroutines; code without an event loop has sync twins
    asyncio.run(session.add_items([{"role": "user", "content": "c"}]))
    assert session.get_items_sync(10) == [{"role": "user", "content": "c"}]
    assert session.pop_item_sync() == {"role": "user", "content": "c"}
    assert session.pop_item_sync() is None
    session.clear_session_sync()


async def test_concurrent_pops_never_return_an_item_twice(pool: AsyncConnectionPool) -> None:
    writer = CtxstoreSession("contended", pool)
    await writer.add_items([{"role": "user", "content": f"m{n}"} for n in range(40)])
    poppers = [CtxstoreSession("contended", pool) for _ in range(4)]

    async def drain(session: CtxstoreSession) -> list[str]:
        got = []
        while (item := await session.pop_item()) is not None:
            got.append(item["content"])
        return got

    results = await asyncio.gather(*(drain(s) for s in poppers))
    popped = [c for r in results for c in r]
    assert sorted(popped) == sorted(f"m{n}" for n in range(40))  # each exactly once
    assert await writer.get_items() == []


async def test_items_sharing_an_id_are_all_kept_in_order(pool: AsyncConnectionPool) -> None:
    # one batch with the converter's placeholder id twice, then the same items again (a new
    # turn), then a popped item added back: every one is appended, as SQLiteSession does
    session = CtxstoreSession("same-ids", pool)
    call = {"id": "__fake_id__", "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    reply = {"id": "__fake_id__", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "done", "annotations": []}]}
    await session.add_items([call, reply])
    await session.add_items([call, reply])
    popped = await session.pop_item()
    await session.add_items([{"role": "user", "content": "next"}, popped])
    assert await session.get_items() == [call, reply, call, {"role": "user", "content": "next"}, reply]


class ScriptedModel(Model):
    """Answers with what the user said so far: only a model that gets the history can."""

    def __init__(self) -> None:
        self.inputs: list[list[Any]] = []

    async def get_response(self, system_instructions: Any, input: Any, model_settings: Any, tools: Any,
                           output_schema: Any, handoffs: Any, tracing: Any, *, previous_response_id: Any,
                           conversation_id: Any, prompt: Any) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        self.inputs.append(items)
        heard = [i["content"] for i in items if isinstance(i, dict) and i.get("role") == "user"]
        text = "heard: " + ", ".join(heard)
        message = ResponseOutputMessage(
            id=f"msg_{len(self.inputs)}", type="message", role="assistant", status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("these tests run Runner.run, which does not stream")


async def test_runner_keeps_the_history_across_turns(pool: AsyncConnectionPool) -> None:
    model = ScriptedModel()
    agent = Agent(name="echo", instructions="Repeat what you heard.", model=model)
    session = CtxstoreSession("runner", pool)
    first = await Runner.run(agent, "hello", session=session)
    second = await Runner.run(agent, "how are you", session=session)
    assert first.final_output == "heard: hello"
    assert second.final_output == "heard: hello, how are you"
    stored = await session.get_items()
    assert [i.get("role") for i in stored] == ["user", "assistant", "user", "assistant"]
    # a new session object on the same id (another process) continues the same conversation
    third = await Runner.run(agent, "bye", session=CtxstoreSession("runner", pool))
    assert third.final_output == "heard: hello, how are you, bye"
