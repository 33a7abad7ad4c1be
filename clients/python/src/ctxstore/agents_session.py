"""The OpenAI Agents SDK's ``Session`` protocol on a ctxstore thread (a context's message log).

Each item (a Responses API input item: a message, a function call or its output, reasoning,
...) is one ctxstore message, appended in order as the SDK's SQLite session appends rows: its
text is the content (token-counted and searchable on the server), its role the nearest of
ctxstore's four, and the item itself is kept whole in the message metadata (with its own
``id``, when it has one), so it reads back exactly as added. Item ids are not message ids:
models behind the Chat Completions converter give every item the same placeholder id, and an
item added again is a new turn, not an edit. ``pop_item`` deletes the newest item as a
tombstone (it stays in ``ctx.history``), atomically: concurrent pops never return one item twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from ctxstore._db import Connection, Database

ITEM_KEY = "openai_item"

_THREAD = "SELECT ctx.thread_context(%s, create_missing => false) AS id"
_APPEND = "SELECT ctx.append_many(ctx.thread_context(%s), %s)"
_ALL = "SELECT metadata FROM ctx.messages(%s)"
_NEWEST = "SELECT metadata FROM ctx.window(%s, %s)"
_NEWEST_ID = "SELECT message_id, metadata FROM ctx.window(%s, 1)"
_DELETE = "SELECT ctx.delete_messages(%s, ARRAY[%s]) AS live"
_CLEAR = "SELECT ctx.delete_context(%s)"

# the Responses API's message roles, as ctxstore's four
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
# items without a role: what the model produced is the assistant's, what a tool returned the tool's
_OUTPUTS = ("function_call_output", "computer_call_output", "local_shell_call_output",
            "custom_tool_call_output", "mcp_approval_response", "shell_call_output",
            "apply_patch_call_output", "tool_search_output")


def _role(item: Mapping[str, Any]) -> str:
    role = item.get("role")
    if isinstance(role, str) and role in _ROLES:
        return _ROLES[role]
    return "tool" if item.get("type") in _OUTPUTS else "assistant"


def _text(item: Mapping[str, Any]) -> str:
    """What the server counts and searches: the item's text, else its JSON."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)]
        if parts:
            return "\n".join(parts)
    for key in ("output", "arguments"):
        if isinstance(item.get(key), str):
            return item[key]
    return json.dumps(item, ensure_ascii=False, sort_keys=True)


def _message(item: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise TypeError(f"a session item is a dict (a Responses API input item), not {type(item).__name__}")
    return {"role": _role(item), "content": _text(item), "metadata": {ITEM_KEY: dict(item)}}


def _item(row: Mapping[str, Any]) -> dict[str, Any]:
    return row["metadata"][ITEM_KEY]


class CtxstoreSession:
    """A conversation of the OpenAI Agents SDK kept in ctxstore (``Runner.run(agent, input,
    session=CtxstoreSession("user-42", pool))``).

    ``session_id`` names a ctxstore thread (``ctx.thread_context``), so the same conversation
    is reachable from SQL and from the other adapters. ``conn`` is a psycopg connection or
    pool, sync or async (with a sync one the calls run in a worker thread).
    ``session_settings``: the SDK's ``SessionSettings`` (or a dict); its ``limit`` caps
    ``get_items()`` without an explicit limit.
    """

    def __init__(self, session_id: str, conn: Connection, *, session_settings: Any = None) -> None:
        self.session_id = str(session_id)
        self.session_settings = session_settings
        self._db = Database(conn)

    def _limit(self, limit: int | None) -> int | None:
        if limit is not None:
            return limit
        settings = self.session_settings
        if isinstance(settings, Mapping):
            return settings.get("limit")
        return getattr(settings, "limit", None)

    # -- the protocol --------------------------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The session's items, oldest first; with ``limit``, the newest ``limit`` of them."""
        limit = self._limit(limit)
        if limit is not None and limit <= 0:
            return []
        if not self._db.is_async:
            return await self._db.in_thread(self.get_items_sync, limit)
        async with self._db.acursor() as cur:
            await cur.execute(_THREAD, (self.session_id,))
            context_id = (await cur.fetchone())["id"]  # type: ignore[index]
            if context_id is None:
                return []
            await cur.execute(*self._read_step(context_id, limit))
            return [_item(r) for r in await cur.fetchall()]

    def get_items_sync(self, limit: int | None = None) -> list[dict[str, Any]]:
        """:meth:`get_items` on a sync connection, without an event loop."""
        limit = self._limit(limit)
        if limit is not None and limit <= 0:
            return []
        with self._db.cursor() as cur:
            cur.execute(_THREAD, (self.session_id,))
            context_id = cur.fetchone()["id"]  # type: ignore[index]
            if context_id is None:
                return []
            cur.execute(*self._read_step(context_id, limit))
            return [_item(r) for r in cur.fetchall()]

    @staticmethod
    def _read_step(context_id: Any, limit: int | None) -> tuple[str, Any]:
        return (_ALL, (context_id,)) if limit is None else (_NEWEST, (context_id, limit))

    async def add_items(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Appends the items in order, in one transaction (all or none)."""
        if not items:
            return
        step = (_APPEND, (self.session_id, Jsonb([_message(i) for i in items])))
        if self._db.is_async:
            await self._db.arun(step)
        else:
            await self._db.in_thread(self._db.run, step)

    async def pop_item(self) -> dict[str, Any] | None:
        """Removes the newest item and returns it; None when the session is empty."""
        if not self._db.is_async:
            return await self._db.in_thread(self.pop_item_sync)
        while True:
            async with self._db.acursor() as cur:
                await cur.execute(_THREAD, (self.session_id,))
                context_id = (await cur.fetchone())["id"]  # type: ignore[index]
                if context_id is None:
                    return None
                await cur.execute(_NEWEST_ID, (context_id,))
                newest = await cur.fetchone()
                if newest is None:
                    return None
                await cur.execute(_DELETE, (context_id, newest["message_id"]))
                if (await cur.fetchone())["live"]:  # type: ignore[index]
                    return _item(newest)
            # another pop took it between the read and the delete: take the next newest

    def pop_item_sync(self) -> dict[str, Any] | None:
        """:meth:`pop_item` on a sync connection, without an event loop."""
        while True:
            with self._db.cursor() as cur:
                cur.execute(_THREAD, (self.session_id,))
                context_id = cur.fetchone()["id"]  # type: ignore[index]
                if context_id is None:
                    return None
                cur.execute(_NEWEST_ID, (context_id,))
                newest = cur.fetchone()
                if newest is None:
                    return None
                cur.execute(_DELETE, (context_id, newest["message_id"]))
                if cur.fetchone()["live"]:  # type: ignore[index]
                    return _item(newest)

    async def clear_session(self) -> None:
        """Deletes the session's thread: its items and their history."""
        if not self._db.is_async:
            return await self._db.in_thread(self.clear_session_sync)
        async with self._db.acursor() as cur:
            await cur.execute(_THREAD, (self.session_id,))
            context_id = (await cur.fetchone())["id"]  # type: ignore[index]
            if context_id is not None:
                await cur.execute(_CLEAR, (context_id,))

    def clear_session_sync(self) -> None:
        """:meth:`clear_session` on a sync connection, without an event loop."""
        with self._db.cursor() as cur:
            cur.execute(_THREAD, (self.session_id,))
            context_id = cur.fetchone()["id"]  # type: ignore[index]
            if context_id is not None:
                cur.execute(_CLEAR, (context_id,))


__all__ = ["CtxstoreSession"]
