"""CtxstoreChatMessageHistory: lossless round trips, server-side windows, and real LangChain
and LangGraph runs with a fake chat model."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory
from psycopg import sql

from ctxstore.chat_history import CtxstoreChatMessageHistory
from ctxstore.checkpoint import AsyncCtxstoreSaver, CtxstoreSaver


def conversation() -> list:
    return [
        SystemMessage(content="You are terse.", id="sys-1"),
        HumanMessage(content="What's the weather in Paris?", id="h-1", name="ada"),
        AIMessage(
            content="",
            id="a-1",
            tool_calls=[{"name": "weather", "args": {"city": "Paris", "days": 2}, "id": "call-1", "type": "tool_call"}],
            usage_metadata={"input_tokens": 12, "output_tokens": 7, "total_tokens": 19},
            response_metadata={"model_name": "fake-1", "finish_reason": "tool_calls"},
        ),
        ToolMessage(content='{"temp": 21}', tool_call_id="call-1", id="t-1", name="weather", artifact={"raw": [1, 2]}),
        AIMessage(content=[{"type": "text", "text": "21 °C, sunny."}], id="a-2", additional_kwargs={"refusal": None}),
        ChatMessage(content="(moderator note)", role="critic", id="c-1"),
        HumanMessage(content="Thanks — ünïcödé ✓", id="h-2"),
    ]


def test_round_trip_is_lossless(conn: psycopg.Connection) -> None:
    history = CtxstoreChatMessageHistory(f"chat-{uuid.uuid4()}", conn)
    assert history.messages == []
    messages = conversation()
    history.add_messages(messages[:3])
    history.add_messages(messages[3:])
    assert history.messages == messages
    # the server knows the roles: a window counts and orders them
    roles = conn.execute(
        "SELECT role FROM ctx.messages(ctx.thread_context(%s, create_missing => false))", (history.thread_id,)
    ).fetchall()
    assert [r[0] for r in roles] == ["system", "user", "assistant", "tool", "assistant", "user", "user"]


def test_message_ids_are_the_servers_ids(conn: psycopg.Connection) -> None:
    history = CtxstoreChatMessageHistory(f"chat-{uuid.uuid4()}", conn)
    history.add_messages([HumanMessage(content="first", id="h-1"), AIMessage(content="no id of its own")])
    context = conn.execute("SELECT ctx.thread_context(%s, create_missing => false)", (history.thread_id,)).fetchone()[0]
    ids = [r[0] for r in conn.execute("SELECT message_id FROM ctx.messages(%s)", (context,)).fetchall()]
    assert ids[0] == "h-1" and ids[1] != "h-1"
    # a message without an id reads back without one, as it was added
    assert [m.id for m in history.messages] == ["h-1", None]
    # the same id again is a new revision of that message, not a second message
    history.add_message(HumanMessage(content="first, corrected", id="h-1"))
    assert [m.content for m in history.messages] == ["first, corrected", "no id of its own"]
    revisions = conn.execute(
        "SELECT revision, content FROM ctx.history(%s) WHERE message_id = 'h-1' ORDER BY revision", (context,)
    ).fetchall()
    assert revisions == [(1, "first"), (2, "first, corrected")]


def test_text_is_normalized_unless_processors_say_otherwise(conn: psycopg.Connection) -> None:
    text = "line one\r\nline two"
    default = CtxstoreChatMessageHistory(f"chat-{uuid.uuid4()}", conn)
    default.add_message(HumanMessage(content=text))
    assert default.messages[0].content == "line one\nline two"
    raw = CtxstoreChatMessageHistory(f"chat-{uuid.uuid4()}", conn, processors={"normalize": False})
    raw.add_message(HumanMessage(content=text))
    assert raw.messages[0].content == text


def test_secrets_are_redacted_by_default(conn: psycopg.Connection) -> None:
    history = CtxstoreChatMessageHistory(f"chat-{uuid.uuid4()}", conn)
    history.add_user_message("my key is AKIAIOSFODNN7EXAMPLE")
    assert history.messages[0].content == "my key is [REDACTED:api_key]"


def test_windows_are_computed_by_the_server(conn: psycopg.Connection) -> None:
    thread = f"chat-{uuid.uuid4()}"
    full = CtxstoreChatMessageHistory(thread, conn)
    for n in range(10):
        full.add_user_message(f"question number {n}")
        full.add_ai_message(f"answer number {n}")
    last = CtxstoreChatMessageHistory(thread, conn, last_n=3).messages
    assert [m.content for m in last] == ["answer number 8", "question number 9", "answer number 9"]
    budget = CtxstoreChatMessageHistory(thread, conn, max_tokens=10).messages
    assert 0 < len(budget) < 20
    assert budget == full.messages[-len(budget) :]
    with pytest.raises(ValueError):
        CtxstoreChatMessageHistory(thread, conn, last_n=3, max_tokens=10)


def test_clear_deletes_the_thread(conn: psycopg.Connection) -> None:
    history = CtxstoreChatMessageHistory(f"chat-{uuid.uuid4()}", conn)
    history.add_user_message("hello")
    history.clear()
    assert history.messages == []
    history.add_user_message("again")
    assert [m.content for m in history.messages] == ["again"]


# Text of conversation() that only its contents carry, and text that only its metadata carries
# (tool call id, model name, a ChatMessage's own role, usage keys).
CONTENT_NEEDLES = ["You are terse", "weather in Paris", "21 °C, sunny", "moderator note", "ünïcödé"]
METADATA_NEEDLES = ["call-1", "fake-1", "critic", "input_tokens"]
# what ctx.messages stores a message's text and metadata in: in plaintext, and sealed
PLAINTEXT_COLUMNS = {"content", "content_lz4", "metadata"}
SEALED_COLUMNS = {"content_enc", "metadata_enc"}


def stored_rows(conn: psycopg.Connection, thread_id: str) -> list[dict[str, bytes | None]]:
    """Every column (as the catalog lists them) of the thread's ctx.messages rows, as bytes:
    bytea as stored, anything else as its text form."""
    columns = conn.execute(
        """SELECT column_name, data_type FROM information_schema.columns
            WHERE table_schema = 'ctx' AND table_name = 'messages' ORDER BY ordinal_position"""
    ).fetchall()
    assert {c for c, _ in columns} >= PLAINTEXT_COLUMNS | SEALED_COLUMNS, columns
    as_bytes = [
        sql.SQL("m.{}").format(sql.Identifier(c))
        if t == "bytea"
        else sql.SQL("convert_to(m.{}::text, 'UTF8')").format(sql.Identifier(c))
        for c, t in columns
    ]
    query = sql.SQL(
        """SELECT {} FROM ctx.messages m JOIN ctx.threads t USING (context_id)
            WHERE t.thread_id = %s ORDER BY m.seq"""
    ).format(sql.SQL(", ").join(as_bytes))
    rows = conn.execute(query, (thread_id,)).fetchall()
    return [{c: (bytes(v) if v is not None else None) for (c, _), v in zip(columns, row)} for row in rows]


def plaintext_found(rows: list[dict[str, bytes | None]]) -> dict[str, set[str]]:
    """For each needle, the columns whose stored bytes contain it."""
    found: dict[str, set[str]] = {}
    for needle in CONTENT_NEEDLES + METADATA_NEEDLES:
        for row in rows:
            for column, value in row.items():
                if value is not None and needle.encode() in value:
                    found.setdefault(needle, set()).add(column)
    return found


def test_encrypted_thread_stores_no_plaintext(conn: psycopg.Connection) -> None:
    # the control: the same scan of an unencrypted thread finds every needle where it is stored
    plain = CtxstoreChatMessageHistory(f"chat-{uuid.uuid4()}", conn)
    plain.add_messages(conversation())
    found = plaintext_found(stored_rows(conn, plain.thread_id))
    assert found == {**{n: {"content"} for n in CONTENT_NEEDLES}, **{n: {"metadata"} for n in METADATA_NEEDLES}}

    history = CtxstoreChatMessageHistory(f"chat-{uuid.uuid4()}", conn, encrypted=True)
    history.add_messages(conversation())
    assert history.messages == conversation()
    rows = stored_rows(conn, history.thread_id)
    assert len(rows) == len(conversation())
    # no column holds any of it: not the sealed ones, not any other
    assert plaintext_found(rows) == {}
    for row in rows:
        # the plaintext columns are empty, as the schema says of an encrypted context ...
        assert (row["content"], row["content_lz4"], row["metadata"]) == (None, None, b"{}"), row
        # ... and the sealed ones hold the message
        assert row["content_enc"] and row["metadata_enc"], row


async def test_async_connection(aconn: psycopg.AsyncConnection) -> None:
    history = CtxstoreChatMessageHistory(f"chat-{uuid.uuid4()}", aconn)
    await history.aadd_messages(conversation())
    assert await history.aget_messages() == conversation()
    await history.aclear()
    assert await history.aget_messages() == []
    with pytest.raises(TypeError, match="async"):
        history.messages  # noqa: B018 - a sync read on an async connection


def test_runnable_with_message_history(conn: psycopg.Connection) -> None:
    model = FakeListChatModel(responses=["Hi Ada!", "You are Ada."])
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be brief."), MessagesPlaceholder("history"), ("human", "{input}")]
    )

    def history_for(session_id: str) -> BaseChatMessageHistory:
        return CtxstoreChatMessageHistory(session_id, conn)

    chain = RunnableWithMessageHistory(
        prompt | model, history_for, input_messages_key="input", history_messages_key="history"
    )
    session = {"configurable": {"session_id": f"chat-{uuid.uuid4()}"}}
    assert chain.invoke({"input": "I am Ada"}, config=session).content == "Hi Ada!"
    assert chain.invoke({"input": "Who am I?"}, config=session).content == "You are Ada."
    stored = history_for(session["configurable"]["session_id"]).messages
    assert [(m.type, m.content) for m in stored] == [
        ("human", "I am Ada"),
        ("ai", "Hi Ada!"),
        ("human", "Who am I?"),
        ("ai", "You are Ada."),
    ]


def _graph(checkpointer):  # a one-node LangGraph chat agent with a fake model
    from langgraph.graph import START, MessagesState, StateGraph

    model = GenericFakeChatModel(messages=iter([AIMessage(content="first"), AIMessage(content="second")]))

    def chat(state: MessagesState) -> dict:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("chat", chat)
    builder.add_edge(START, "chat")
    return builder.compile(checkpointer=checkpointer)


def test_langgraph_graph_with_ctxstore_saver(conn: psycopg.Connection) -> None:
    graph = _graph(CtxstoreSaver(conn))
    config = {"configurable": {"thread_id": f"graph-{uuid.uuid4()}"}}
    graph.invoke({"messages": [HumanMessage(content="hello")]}, config)
    state = graph.invoke({"messages": [HumanMessage(content="again")]}, config)
    assert [m.content for m in state["messages"]] == ["hello", "first", "again", "second"]
    history = list(graph.get_state_history(config))
    assert len(history) >= 4 and history[0].values["messages"][-1].content == "second"
    # time travel: resume from the first turn's final checkpoint on a fork of it
    first_turn = next(s for s in history if len(s.values.get("messages", [])) == 2 and not s.next)
    assert [m.content for m in graph.get_state(first_turn.config).values["messages"]] == ["hello", "first"]


async def test_langgraph_graph_with_async_saver(aconn: psycopg.AsyncConnection) -> None:
    graph = _graph(AsyncCtxstoreSaver(aconn))
    config = {"configurable": {"thread_id": f"graph-{uuid.uuid4()}"}}
    await graph.ainvoke({"messages": [HumanMessage(content="hello")]}, config)
    state = await graph.ainvoke({"messages": [HumanMessage(content="again")]}, config)
    assert [m.content for m in state["messages"]] == ["hello", "first", "again", "second"]


def test_checkpoints_of_an_encrypted_thread_are_sealed(conn: psycopg.Connection) -> None:
    thread = f"graph-{uuid.uuid4()}"
    conn.execute("SELECT ctx.thread_context(%s, encrypted => true)", (thread,))
    graph = _graph(CtxstoreSaver(conn))
    config = {"configurable": {"thread_id": thread}}
    state = graph.invoke({"messages": [HumanMessage(content="top secret plan")]}, config)
    assert state["messages"][0].content == "top secret plan"
    plain = conn.execute(
        """SELECT count(*) FROM ctx.checkpoint_blobs b JOIN ctx.threads t USING (context_id)
            WHERE t.thread_id = %s AND position('top secret' IN encode(b.blob, 'escape')) > 0""",
        (thread,),
    ).fetchone()[0]
    assert plain == 0
    # the thread's chat history and its checkpoints share the one context
    assert CtxstoreChatMessageHistory(thread, conn).messages == []
