"""An OpenAI Agents SDK session on ctxstore: the conversation of Runner.run(..., session=...)
lives in a ctxstore thread, readable from SQL and the other adapters.

    CTXSTORE_DSN="dbname=app user=agent_app" python examples/openai_agents_session.py

With a model: Runner.run(agent, "hi", session=CtxstoreSession("user-42", pool)); this script
drives the session directly, as the Runner does.
"""

import asyncio
import os
import uuid

from psycopg_pool import AsyncConnectionPool

from ctxstore.agents_session import CtxstoreSession


async def main() -> None:
    async with AsyncConnectionPool(os.environ["CTXSTORE_DSN"], open=False, kwargs={"autocommit": True}) as pool:
        session = CtxstoreSession(f"user-{uuid.uuid4()}", pool)
        await session.add_items([
            {"role": "user", "content": "What is the capital of France?"},
            {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "Paris.", "annotations": []}]},
            {"role": "user", "content": "And of Italy?"},
        ])
        print("items:", len(await session.get_items()))
        print("newest:", [i.get("content") for i in await session.get_items(limit=1)])
        print("popped:", (await session.pop_item())["content"])  # e.g. to edit and resend it
        print("left:", [i["role"] for i in await session.get_items()])
        async with pool.connection() as conn:  # the same conversation, from SQL
            rows = await (await conn.execute(
                "SELECT role, content, deleted FROM ctx.history(ctx.thread_context(%s)) ORDER BY seq, revision",
                (session.session_id,))).fetchall()
        for role, content, deleted in rows:
            print(f"  {role:9} {content!r}{'  (popped: a tombstone)' if deleted else ''}")
        await session.clear_session()
        print("after clear:", await session.get_items())


asyncio.run(main())
