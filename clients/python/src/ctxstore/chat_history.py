"""LangChain's ``BaseChatMessageHistory`` on a ctxstore thread (a context's message log).

Each LangChain message becomes one ctxstore message: its id as the message id (a message added
again with the same id is saved as a new revision of it: ``ctx.save_messages``), its role (user,
assistant, system, tool), its text as content (token-counted by the server; list content is
stored as its JSON), and everything else LangChain knows about it (type, name, tool calls,
tool_call_id, usage, additional and response metadata) in the message metadata, so it reads
back equal.
Reads can be windowed server-side: the newest ``last_n`` messages, or the newest that fit in
``max_tokens`` (ctx.token_window), instead of loading the whole thread to trim it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from psycopg.types.json import Jsonb

from ctxstore._db import Connection, Database

_ROLES = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
    "HumanMessageChunk": "user",
    "AIMessageChunk": "assistant",
    "SystemMessageChunk": "system",
    "ToolMessageChunk": "tool",
    "FunctionMessageChunk": "tool",
}
_SERVER_ROLES = {"user", "assistant", "system", "tool"}
META_KEY = "langchain"

_THREAD = "SELECT ctx.thread_context(%s, create_missing => false) AS id"
_APPEND = """SELECT seq FROM ctx.save_messages(ctx.thread_context(%s, encrypted => %s, processors => %s), %s)"""
_ALL = "SELECT role, content, metadata, message_id FROM ctx.messages(%s)"
_LAST_N = "SELECT role, content, metadata, message_id FROM ctx.window(%s, %s)"
_TOKENS = "SELECT role, content, metadata, message_id FROM ctx.token_window(%s, %s)"
_CLEAR = "SELECT ctx.delete_context(%s)"


def _role(message: BaseMessage) -> str:
    if message.type in ("chat", "ChatMessageChunk"):
        role = getattr(message, "role", "user")
        return role if role in _SERVER_ROLES else "user"
    return _ROLES.get(message.type, "user")


def encode(message: BaseMessage) -> dict[str, Any]:
    """The ``ctx.save_messages`` element of a LangChain message."""
    as_dict = message_to_dict(message)
    data = dict(as_dict["data"])
    content = data.pop("content")
    message_id = data.pop("id", None)
    is_text = isinstance(content, str)
    element = {
        "role": _role(message),
        "content": content if is_text else json.dumps(content, ensure_ascii=False),
        "metadata": {
            META_KEY: {
                "type": as_dict["type"],
                "data": data,
                "content_is_json": not is_text,
                # without an id of its own the message gets a generated one, which LangChain
                # never saw: it reads back without an id, as it was added
                "has_id": message_id is not None,
            }
        },
    }
    if message_id is not None:
        element["message_id"] = str(message_id)
    return element


def decode(row: dict[str, Any]) -> BaseMessage:
    """A LangChain message from a ctxstore message row (any row: summaries and messages
    appended by other clients become plain messages of their role)."""
    stored = (row.get("metadata") or {}).get(META_KEY)
    content = row["content"]
    if stored is not None:
        if stored.get("content_is_json"):
            content = json.loads(content)
        data = {**stored["data"], "content": content}
        if stored.get("has_id") and row.get("message_id") is not None:
            data["id"] = row["message_id"]
        return messages_from_dict([{"type": stored["type"], "data": data}])[0]
    role = row["role"]
    if role == "assistant":
        return AIMessage(content=content)
    if role == "system":
        return SystemMessage(content=content)
    if role == "tool":
        return ToolMessage(content=content, tool_call_id=(row.get("metadata") or {}).get("tool_call_id", ""))
    return HumanMessage(content=content)


class CtxstoreChatMessageHistory(BaseChatMessageHistory):
    """The messages of thread ``thread_id`` (the same thread id as LangGraph's checkpointer).

    ``last_n`` or ``max_tokens`` make reads return only the newest messages (counted by the
    thread's tokenizer on the server). ``encrypted`` and ``processors`` apply when the thread
    is created (see ``ctx.create_context``); by default ctxstore normalizes text and redacts
    secrets on write. ``clear()`` deletes the thread's context: its messages, working memory
    and checkpoints (SQLSTATE 2BP01 while forks of it exist).
    """

    def __init__(
        self,
        thread_id: str,
        conn: Connection,
        *,
        last_n: int | None = None,
        max_tokens: int | None = None,
        encrypted: bool | None = None,
        processors: dict[str, Any] | None = None,
    ) -> None:
        if last_n is not None and max_tokens is not None:
            raise ValueError("pass last_n or max_tokens, not both")
        self.thread_id = str(thread_id)
        self._db = Database(conn)
        self.last_n = last_n
        self.max_tokens = max_tokens
        self.encrypted = encrypted
        self.processors = processors

    def _read_step(self, context_id: Any) -> tuple[str, Any]:
        if self.max_tokens is not None:
            return _TOKENS, (context_id, self.max_tokens)
        if self.last_n is not None:
            return _LAST_N, (context_id, self.last_n)
        return _ALL, (context_id,)

    def _append_step(self, messages: Sequence[BaseMessage]) -> tuple[str, Any]:
        processors = Jsonb(self.processors) if self.processors is not None else None
        batch = Jsonb([encode(m) for m in messages])
        return _APPEND, (self.thread_id, self.encrypted, processors, batch)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        return self.get_messages()

    def get_messages(self) -> list[BaseMessage]:
        with self._db.cursor() as cur:
            cur.execute(_THREAD, (self.thread_id,))
            context_id = cur.fetchone()["id"]  # type: ignore[index]
            if context_id is None:
                return []
            sql, params = self._read_step(context_id)
            cur.execute(sql, params)
            return [decode(row) for row in cur.fetchall()]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        if messages:
            self._db.run(self._append_step(messages))

    def clear(self) -> None:
        with self._db.cursor() as cur:
            cur.execute(_THREAD, (self.thread_id,))
            context_id = cur.fetchone()["id"]  # type: ignore[index]
            if context_id is not None:
                cur.execute(_CLEAR, (context_id,))

    async def aget_messages(self) -> list[BaseMessage]:
        if not self._db.is_async:
            return await self._db.in_thread(self.get_messages)
        async with self._db.acursor() as cur:
            await cur.execute(_THREAD, (self.thread_id,))
            context_id = (await cur.fetchone())["id"]  # type: ignore[index]
            if context_id is None:
                return []
            sql, params = self._read_step(context_id)
            await cur.execute(sql, params)
            return [decode(row) for row in await cur.fetchall()]

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        if not self._db.is_async:
            return await self._db.in_thread(self.add_messages, messages)
        if messages:
            await self._db.arun(self._append_step(messages))

    async def aclear(self) -> None:
        if not self._db.is_async:
            return await self._db.in_thread(self.clear)
        async with self._db.acursor() as cur:
            await cur.execute(_THREAD, (self.thread_id,))
            context_id = (await cur.fetchone())["id"]  # type: ignore[index]
            if context_id is not None:
                await cur.execute(_CLEAR, (context_id,))
