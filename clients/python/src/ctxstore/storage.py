"""LangChain's key-value store of bytes (``BaseStore[str, bytes]``) on ``ctx.state``.

Values are base64 in pieces of 7 characters: no piece is long enough for the secret and
personal-data detectors of ctxstore's write processors (API keys, card and phone numbers all
need 8 or more characters), so binary values are never redacted, whatever the namespace's
processor settings.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.stores import BaseStore
from psycopg.types.json import Jsonb

from ctxstore._db import Connection, Database

_PIECE = 7

_GET = """SELECT k.key, s.value FROM unnest(%s::text[]) WITH ORDINALITY AS k(key, i)
          LEFT JOIN LATERAL (SELECT ctx.get(%s::text[], k.key) AS value) s ON true ORDER BY k.i"""
_SET = "SELECT ctx.put(%s::text[], k.key, k.value) FROM unnest(%s::text[], %s::jsonb[]) AS k(key, value)"
_DELETE = "SELECT ctx.delete_key(%s::text[], k) FROM unnest(%s::text[]) AS k"
# keys in order, a page at a time after the last one seen (no OFFSET: keys deleted while the
# caller iterates cannot make it skip others)
_KEYS = """SELECT key FROM ctx.search_state(%s::text[], jsonb_build_object('key', jsonb_build_object('$gt', %s::text)),
                                           max_rows => %s, include_descendants => false)"""
_KEYS_PAGE = 1000


def _encode(value: bytes) -> Jsonb:
    text = base64.b64encode(value).decode("ascii")
    return Jsonb({"b64": [text[i : i + _PIECE] for i in range(0, len(text), _PIECE)]})


def _decode(value: Any) -> bytes | None:
    if value is None:
        return None
    return base64.b64decode("".join(value["b64"]))


class CtxstoreByteStore(BaseStore[str, bytes]):
    """Bytes by key in one ctxstore namespace (default ``["langchain", "bytes"]``).

    Keys are ctxstore state keys (1 to 1,024 bytes); ``yield_keys(prefix=...)`` filters by
    key prefix. Writes are versioned and audited like all ctxstore state, and the namespace
    can be encrypted with ``ctx.encrypt_namespace``.
    """

    def __init__(self, conn: Connection, *, namespace: Sequence[str] = ("langchain", "bytes")) -> None:
        self._db = Database(conn)
        self.namespace = list(namespace)
        if not self.namespace:
            raise ValueError("namespace must have at least one label")

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with self._db.cursor(single=True) as cur:
            cur.execute(_GET, (list(keys), self.namespace))
            return [_decode(row["value"]) for row in cur.fetchall()]

    def mset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        if not key_value_pairs:
            return
        keys = [k for k, _ in key_value_pairs]
        values = [_encode(v) for _, v in key_value_pairs]
        with self._db.cursor(single=True) as cur:
            cur.execute(_SET, (self.namespace, keys, values))

    def mdelete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        with self._db.cursor(single=True) as cur:
            cur.execute(_DELETE, (self.namespace, list(keys)))

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        after = ""
        while True:
            with self._db.cursor(single=True) as cur:
                cur.execute(_KEYS, (self.namespace, after, _KEYS_PAGE))
                keys = [row["key"] for row in cur.fetchall()]
            yield from (k for k in keys if prefix is None or k.startswith(prefix))
            if len(keys) < _KEYS_PAGE:
                return
            after = keys[-1]

    async def amget(self, keys: Sequence[str]) -> list[bytes | None]:
        if not self._db.is_async:
            return await self._db.in_thread(self.mget, keys)
        if not keys:
            return []
        async with self._db.acursor(single=True) as cur:
            await cur.execute(_GET, (list(keys), self.namespace))
            return [_decode(row["value"]) for row in await cur.fetchall()]

    async def amset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        if not self._db.is_async:
            return await self._db.in_thread(self.mset, key_value_pairs)
        if not key_value_pairs:
            return
        keys = [k for k, _ in key_value_pairs]
        values = [_encode(v) for _, v in key_value_pairs]
        async with self._db.acursor(single=True) as cur:
            await cur.execute(_SET, (self.namespace, keys, values))

    async def amdelete(self, keys: Sequence[str]) -> None:
        if not self._db.is_async:
            return await self._db.in_thread(self.mdelete, keys)
        if not keys:
            return
        async with self._db.acursor(single=True) as cur:
            await cur.execute(_DELETE, (self.namespace, list(keys)))

    async def ayield_keys(self, *, prefix: str | None = None) -> AsyncIterator[str]:
        if not self._db.is_async:
            for key in await self._db.in_thread(lambda: list(self.yield_keys(prefix=prefix))):
                yield key
            return
        after = ""
        while True:
            async with self._db.acursor(single=True) as cur:
                await cur.execute(_KEYS, (self.namespace, after, _KEYS_PAGE))
                keys = [row["key"] for row in await cur.fetchall()]
            for key in keys:
                if prefix is None or key.startswith(prefix):
                    yield key
            if len(keys) < _KEYS_PAGE:
                return
            after = keys[-1]
