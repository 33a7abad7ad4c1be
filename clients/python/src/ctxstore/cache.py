"""LangChain's LLM cache on ``ctx.cache_lookup`` / ``ctx.cache_store``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from langchain_core._api.beta_decorator import suppress_langchain_beta_warning
from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.load import dumpd, load
from psycopg.types.json import Jsonb

from ctxstore._db import Connection, Database

_LOOKUP = "SELECT ctx.cache_lookup(%s, %s) AS value"
_STORE = "SELECT ctx.cache_store(%s, %s, %s, %s)"
_CLEAR = "SELECT ctx.cache_clear(%s)"


class CtxstoreCache(BaseCache):
    """Model responses by (prompt, model string), per tenant, with an optional time to live.

    ``clear()`` empties the tenant's cache; ``clear(llm_string=...)`` only one model's entries.
    """

    def __init__(self, conn: Connection, *, ttl: timedelta | None = None) -> None:
        self._db = Database(conn)
        self.ttl = ttl

    @staticmethod
    def _decode(value: Any) -> RETURN_VAL_TYPE | None:
        if value is None:
            return None
        # only langchain_core classes (Generation, ChatGeneration and messages) are rebuilt
        with suppress_langchain_beta_warning():
            return [load(item, allowed_objects="core") for item in value]

    @staticmethod
    def _encode(return_val: Sequence[Any]) -> Jsonb:
        return Jsonb([dumpd(generation) for generation in return_val])

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        with self._db.cursor(single=True) as cur:
            cur.execute(_LOOKUP, (prompt, llm_string))
            row = cur.fetchone()
        return self._decode(row["value"] if row else None)

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        with self._db.cursor(single=True) as cur:
            cur.execute(_STORE, (prompt, llm_string, self._encode(return_val), self.ttl))

    def clear(self, **kwargs: Any) -> None:
        with self._db.cursor(single=True) as cur:
            cur.execute(_CLEAR, (kwargs.get("llm_string"),))

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        if not self._db.is_async:
            return await self._db.in_thread(self.lookup, prompt, llm_string)
        async with self._db.acursor(single=True) as cur:
            await cur.execute(_LOOKUP, (prompt, llm_string))
            row = await cur.fetchone()
        return self._decode(row["value"] if row else None)

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        if not self._db.is_async:
            return await self._db.in_thread(self.update, prompt, llm_string, return_val)
        async with self._db.acursor(single=True) as cur:
            await cur.execute(_STORE, (prompt, llm_string, self._encode(return_val), self.ttl))

    async def aclear(self, **kwargs: Any) -> None:
        if not self._db.is_async:
            return await self._db.in_thread(self.clear, **kwargs)
        async with self._db.acursor(single=True) as cur:
            await cur.execute(_CLEAR, (kwargs.get("llm_string"),))
