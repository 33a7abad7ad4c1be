"""langchain-postgres tests/unit_tests/v1/test_chat_histories.py: its backend class, built the
way the test builds it (table name, session id, connection), as ctxstore's chat history on a
thread named after both. The table helpers have nothing to do: the extension owns its tables,
and each test's connection is a tenant of its own."""

from __future__ import annotations

from typing import Any

from ctxstore.chat_history import CtxstoreChatMessageHistory


class PostgresChatMessageHistory(CtxstoreChatMessageHistory):
    def __init__(
        self, table_name: str, session_id: str, /, *,
        sync_connection: Any = None, async_connection: Any = None,
    ) -> None:
        super().__init__(f"{table_name}/{session_id}", sync_connection or async_connection)

    @staticmethod
    def create_tables(connection: Any, table_name: str, /) -> None:
        return None

    @staticmethod
    def drop_table(connection: Any, table_name: str, /) -> None:
        return None

    @staticmethod
    async def acreate_tables(connection: Any, table_name: str, /) -> None:
        return None

    @staticmethod
    async def adrop_table(connection: Any, table_name: str, /) -> None:
        return None
