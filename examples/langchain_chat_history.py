"""LangChain chat history on ctxstore: a thread's messages, windowed by the server.

    CTXSTORE_DSN="dbname=app user=agent_app" python examples/langchain_chat_history.py
"""

import os
import uuid

import psycopg
from langchain_core.messages import AIMessage, HumanMessage

from ctxstore.chat_history import CtxstoreChatMessageHistory

with psycopg.connect(os.environ["CTXSTORE_DSN"], autocommit=True) as conn:
    thread = f"support-{uuid.uuid4()}"
    history = CtxstoreChatMessageHistory(thread, conn)
    history.add_messages(
        [
            HumanMessage("My API key stopped working this morning."),
            AIMessage(
                "",
                tool_calls=[{"name": "lookup_key", "args": {"user": "u42"}, "id": "call-1", "type": "tool_call"}],
            ),
            AIMessage("Keys expire after 90 days. Did you rotate it recently?"),
            HumanMessage("No. How do I rotate it?"),
        ]
    )
    print(f"{len(history.messages)} messages; tool call kept: {history.messages[1].tool_calls[0]['name']}")

    # what to send to the model: only the newest messages within 25 tokens, trimmed in the database
    window = CtxstoreChatMessageHistory(thread, conn, max_tokens=25).messages
    print("window:", [m.content for m in window])
