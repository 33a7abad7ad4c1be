"""The adapters' read paths on a hot standby (tests/replica.sh): argv = primary DSN, standby DSN.

Writes through each Python adapter on the primary, waits for the standby to replay them, then
runs the adapters' reads on the standby and on the primary in read-only sessions; the answers
must be equal and non-empty. The LangGraph store's reads refresh TTLs (a write), which a
read-only transaction skips instead of failing. Prints the number of reads compared."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, Callable

import psycopg
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import Generation
from langgraph.checkpoint.base import empty_checkpoint

from ctxstore.agents_session import CtxstoreSession
from ctxstore.cache import CtxstoreCache
from ctxstore.chat_history import CtxstoreChatMessageHistory
from ctxstore.checkpoint import CtxstoreSaver
from ctxstore.storage import CtxstoreByteStore
from ctxstore.store import CtxstoreStore
from ctxstore.vectorstores import CtxstoreVectorStore

EMBEDDINGS = DeterministicFakeEmbedding(size=16)
TTL = {"default_ttl": 60.0, "refresh_on_read": True}


def write(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn, ttl=TTL)
    store.put(("adapter", "docs"), "k1", {"text": "first", "n": 1})
    store.put(("adapter", "docs"), "k2", {"text": "second", "n": 2})
    CtxstoreChatMessageHistory("adapter-chat", conn).add_messages(
        [HumanMessage("hello from the primary"), AIMessage("hello back")]
    )
    vectors = CtxstoreVectorStore(conn, EMBEDDINGS, namespace=("adapter", "vectors"))
    vectors.add_texts(["the train to Lyon", "a cup of tea", "the bike lock"], ids=["v1", "v2", "v3"])
    saver = CtxstoreSaver(conn)
    config = {"configurable": {"thread_id": "adapter-graph", "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"answer": 42}
    checkpoint["channel_versions"] = {"answer": saver.get_next_version(None, None)}
    saver.put(config, checkpoint, {"source": "input", "step": -1}, checkpoint["channel_versions"])
    asyncio.run(CtxstoreSession("adapter-session", conn).add_items([{"role": "user", "content": "an item"}]))
    CtxstoreCache(conn).update("a prompt", "llm-a", [Generation(text="an answer")])
    CtxstoreByteStore(conn).mset([("b1", b"bytes one")])


def reads(conn: psycopg.Connection) -> list[tuple[str, Callable[[], Any]]]:
    store = CtxstoreStore(conn, ttl=TTL)
    config = {"configurable": {"thread_id": "adapter-graph", "checkpoint_ns": ""}}
    saver = CtxstoreSaver(conn)
    vectors = CtxstoreVectorStore(conn, EMBEDDINGS, namespace=("adapter", "vectors"))

    def item(i: Any) -> Any:
        return None if i is None else (i.namespace, i.key, i.value)

    return [
        ("store get (refreshes the ttl)", lambda: item(store.get(("adapter", "docs"), "k1"))),
        ("store get without refresh", lambda: item(store.get(("adapter", "docs"), "k2", refresh_ttl=False))),
        ("store search (refreshes)", lambda: [item(i) for i in store.search(("adapter",), filter={"n": 2})]),
        ("store namespaces", lambda: store.list_namespaces(prefix=("adapter",))),
        ("chat history", lambda: [(m.type, m.content) for m in CtxstoreChatMessageHistory("adapter-chat", conn).messages]),
        ("vector search", lambda: [(d.id, d.page_content) for d in vectors.similarity_search("the train", k=2)]),
        ("vectors by id", lambda: [d.page_content for d in vectors.get_by_ids(["v2", "v3"])]),
        ("checkpoint get_tuple", lambda: saver.get_tuple(config).checkpoint["channel_values"]),
        ("checkpoint list", lambda: [t.metadata for t in saver.list(config)]),
        ("session items", lambda: CtxstoreSession("adapter-session", conn).get_items_sync()),
        ("llm cache", lambda: [g.text for g in CtxstoreCache(conn).lookup("a prompt", "llm-a") or []]),
        ("byte store", lambda: CtxstoreByteStore(conn).mget(["b1"])),
    ]


def main() -> None:
    primary_dsn, standby_dsn = sys.argv[1:3]
    with psycopg.connect(primary_dsn, autocommit=True) as conn:
        write(conn)
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with psycopg.connect(standby_dsn, autocommit=True) as standby:
        for _ in range(300):
            if standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                break
            time.sleep(0.1)
        else:
            sys.exit(f"the standby did not replay up to {lsn}")
        with psycopg.connect(primary_dsn, autocommit=True, options="-c default_transaction_read_only=on") as primary:
            compared = 0
            for (name, on_standby), (_, on_primary) in zip(reads(standby), reads(primary)):
                try:
                    got = on_standby()
                except psycopg.Error as e:
                    sys.exit(f"{name}: failed on the standby: {e.sqlstate} {e}")
                want = on_primary()
                if got != want:
                    sys.exit(f"{name}: the standby answered {got!r}, the primary {want!r}")
                if not want:
                    sys.exit(f"{name}: no answer on either server ({want!r})")
                compared += 1
    print(compared)


if __name__ == "__main__":
    main()
