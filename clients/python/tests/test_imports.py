"""The imports from the peers' own tables (ctx.import_*): each peer's table is written by the
peer's own library, imported, then read back through ctxstore's adapter and compared with what
the peer's library reads from its table. Each test runs in a schema of its own (the peers
create their tables on the search path) and as a tenant of its own."""

from __future__ import annotations

import operator
import os
import uuid
from collections.abc import Iterator
from typing import Annotated, TypedDict

import psycopg
import pytest
from langchain_core.messages import AIMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_postgres import PostgresChatMessageHistory

from ctxstore.chat_history import CtxstoreChatMessageHistory
from conftest import dsn


@pytest.fixture
def peer_schema() -> Iterator[str]:
    """A schema the application role owns, dropped afterwards (created by an administrator:
    the application role may not create schemas)."""
    name = f"peer_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(os.environ["CTXSTORE_ADMIN_DSN"], autocommit=True) as admin:
        role = psycopg.connect(dsn()).info.user
        admin.execute(f'CREATE SCHEMA {name} AUTHORIZATION "{role}"')
        try:
            yield name
        finally:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def connect_in(schema: str, tenant: str) -> psycopg.Connection:
    return psycopg.connect(dsn(), autocommit=True, options=f"-c ctxstore.tenant={tenant} -c search_path={schema},public")


@pytest.fixture
def tenant() -> str:
    return f"test-{uuid.uuid4()}"


@pytest.fixture
def db(peer_schema: str, tenant: str) -> Iterator[psycopg.Connection]:
    with connect_in(peer_schema, tenant) as c:
        yield c


def counts(rows: list[tuple]) -> dict[str, tuple[int, int]]:
    return {kind: (imported, skipped) for kind, imported, skipped, _ in rows}


# ---- langchain-postgres PostgresChatMessageHistory ------------------------------------------


def chat(turn: int) -> list:
    """A conversation with tool calls, list content, names, metadata, and messages with and
    without ids."""
    return [
        SystemMessage(content="You are terse."),
        HumanMessage(content=f"What's the weather in Paris, day {turn}?", id=f"h-{turn}", name="ada"),
        AIMessage(
            content="",
            id=f"a-{turn}",
            tool_calls=[{"name": "weather", "args": {"city": "Paris", "day": turn}, "id": f"call-{turn}", "type": "tool_call"}],
            usage_metadata={"input_tokens": 12, "output_tokens": 7, "total_tokens": 19},
            response_metadata={"model_name": "fake-1", "finish_reason": "tool_calls"},
        ),
        ToolMessage(content='{"temp": 21}', tool_call_id=f"call-{turn}", name="weather", artifact={"raw": [1, 2]}),
        AIMessage(content=[{"type": "text", "text": "21 °C, sunny."}], additional_kwargs={"refusal": None}),
        ChatMessage(content="(moderator note)", role="critic"),
        HumanMessage(content="Thanks — ünïcödé ✓"),
    ]


def import_chat(db: psycopg.Connection, **options: object) -> list[tuple]:
    named = "".join(f", {k} => %({k})s" for k in options)
    return db.execute(f"SELECT * FROM ctx.import_langchain_chat('message_store'{named})", options).fetchall()


def test_langchain_chat_reads_back_as_langchain_postgres_reads_it(db: psycopg.Connection) -> None:
    PostgresChatMessageHistory.create_tables(db, "message_store")
    sessions = [str(uuid.uuid4()) for _ in range(3)]
    for turn in range(2):
        for n, session in enumerate(sessions):
            PostgresChatMessageHistory("message_store", session, sync_connection=db).add_messages(chat(turn * 10 + n))
    peer = {s: PostgresChatMessageHistory("message_store", s, sync_connection=db).messages for s in sessions}

    first = import_chat(db, batch_size=5)  # batches smaller than a session: several per session
    assert counts(first) == {"threads": (3, 0), "messages": (42, 0)}
    applied = first[1][3]
    assert applied["plain_contexts"] == 3 and applied["encrypted_contexts"] == 0 and applied["processors"] == [{}]

    for session in sessions:
        assert CtxstoreChatMessageHistory(session, db).messages == peer[session]
    # each message keeps the time langchain-postgres stored it at
    mismatched = db.execute(
        """SELECT count(*) FROM message_store s
             JOIN ctx.threads t ON t.thread_id = s.session_id::text
             JOIN LATERAL ctx.messages(t.context_id) m ON m.message_id =
                  coalesce(s.message->'data'->>'id', 'langchain-postgres:message_store:' || s.id)
            WHERE m.created_at <> s.created_at"""
    ).fetchone()[0]
    assert mismatched == 0
    total = db.execute("SELECT count(*) FROM message_store s JOIN ctx.threads t ON t.thread_id = s.session_id::text").fetchone()[0]
    assert total == 42


def test_langchain_chat_import_is_idempotent_and_incremental(db: psycopg.Connection) -> None:
    PostgresChatMessageHistory.create_tables(db, "message_store")
    session = str(uuid.uuid4())
    history = PostgresChatMessageHistory("message_store", session, sync_connection=db)
    history.add_messages(chat(1))
    assert counts(import_chat(db)) == {"threads": (1, 0), "messages": (7, 0)}
    assert counts(import_chat(db)) == {"threads": (0, 1), "messages": (0, 7)}
    history.add_messages(chat(2))  # the application kept writing to the old table
    assert counts(import_chat(db)) == {"threads": (0, 1), "messages": (7, 7)}
    assert CtxstoreChatMessageHistory(session, db).messages == history.messages


def test_langchain_chat_repeated_ids_become_revisions(db: psycopg.Connection) -> None:
    """langchain-postgres keeps a message added twice as two rows; ctxstore's adapter saves it
    as a revision of the first, and so does the import."""
    PostgresChatMessageHistory.create_tables(db, "message_store")
    session = str(uuid.uuid4())
    peer = PostgresChatMessageHistory("message_store", session, sync_connection=db)
    peer.add_messages([HumanMessage("draft", id="x"), AIMessage("ok", id="y"), HumanMessage("final", id="x")])
    assert counts(import_chat(db)) == {"threads": (1, 0), "messages": (3, 0)}
    assert counts(import_chat(db)) == {"threads": (0, 1), "messages": (0, 3)}
    peer.add_messages([HumanMessage("final, again", id="x")])  # a third row with that id: a third revision
    assert counts(import_chat(db)) == {"threads": (0, 1), "messages": (1, 3)}
    mine = CtxstoreChatMessageHistory(session, db)
    replayed = CtxstoreChatMessageHistory(f"replay-{session}", db)
    for message in peer.messages:  # (one batch names each message once)
        replayed.add_messages([message])
    assert mine.messages == replayed.messages == [HumanMessage("final, again", id="x"), AIMessage("ok", id="y")]
    revisions = db.execute(
        "SELECT revision, content FROM ctx.history(ctx.thread_context(%s, create_missing => false)) WHERE message_id = 'x'",
        (session,),
    ).fetchall()
    assert [r[1] for r in revisions] == ["draft", "final", "final, again"]  # nothing lost


def test_langchain_chat_applies_the_target_settings(db: psycopg.Connection) -> None:
    PostgresChatMessageHistory.create_tables(db, "message_store")
    plain, sealed = str(uuid.uuid4()), str(uuid.uuid4())
    CtxstoreChatMessageHistory(plain, db).add_messages([HumanMessage("already here", id="old")])
    for session in (plain, sealed):
        PostgresChatMessageHistory("message_store", session, sync_connection=db).add_messages(
            [HumanMessage("my key is sk-live-0123456789abcdefABCDEF", id="k")]
        )
    rows = import_chat(db, encrypted=True)
    assert counts(rows) == {"threads": (1, 1), "messages": (2, 0)}
    assert rows[0][3]["encrypted_contexts"] == 1 and rows[0][3]["plain_contexts"] == 1
    encrypted = dict(
        db.execute(
            "SELECT t.thread_id, c.encrypted FROM ctx.threads t JOIN ctx.contexts c ON c.id = t.context_id"
        ).fetchall()
    )
    assert encrypted == {plain: False, sealed: True}
    # the default processors redact secrets on write, imported messages too
    assert [m.content for m in CtxstoreChatMessageHistory(sealed, db).messages] == [
        CtxstoreChatMessageHistory(plain, db).messages[1].content
    ]
    assert "sk-live" not in CtxstoreChatMessageHistory(sealed, db).messages[0].content


def test_langchain_chat_stays_in_the_callers_tenant(db: psycopg.Connection, peer_schema: str) -> None:
    PostgresChatMessageHistory.create_tables(db, "message_store")
    session = str(uuid.uuid4())
    PostgresChatMessageHistory("message_store", session, sync_connection=db).add_messages(chat(1))
    import_chat(db)
    with connect_in(peer_schema, f"other-{uuid.uuid4()}") as other:
        assert CtxstoreChatMessageHistory(session, other).messages == []
        assert counts(import_chat(other)) == {"threads": (1, 0), "messages": (7, 0)}


def test_langchain_chat_refuses_other_tables(db: psycopg.Connection) -> None:
    db.execute("CREATE TABLE not_a_store (id serial, session_id text, message jsonb)")
    with pytest.raises(psycopg.Error) as refused:
        db.execute("SELECT * FROM ctx.import_langchain_chat('not_a_store')")
    assert refused.value.sqlstate == "42P16"
    assert "created_at (missing)" in refused.value.diag.message_detail
    assert "session_id (text)" in refused.value.diag.message_detail
    PostgresChatMessageHistory.create_tables(db, "message_store")
    db.execute(
        "INSERT INTO message_store (session_id, message) VALUES (%s, '{\"type\": \"human\"}')", (str(uuid.uuid4()),)
    )
    with pytest.raises(psycopg.Error) as bad_row:
        import_chat(db)
    assert bad_row.value.sqlstate == "22023"
    assert db.execute("SELECT count(*) FROM ctx.threads").fetchone()[0] == 0  # nothing half-imported


# ---- LangGraph PostgresSaver ----------------------------------------------------------------


def peer_connection(schema: str, tenant: str) -> psycopg.Connection:
    """A connection as LangGraph's Postgres classes require it."""
    from psycopg.rows import dict_row

    return psycopg.connect(
        dsn(),
        autocommit=True,
        prepare_threshold=0,
        row_factory=dict_row,
        options=f"-c ctxstore.tenant={tenant} -c search_path={schema},public",
    )


class State(TypedDict):
    n: int
    note: str
    done: bool
    maybe: object
    items: Annotated[list, operator.add]


def workflow():  # primitives kept inline by the peer, lists as blobs, fan-out, a subgraph, an interrupt
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send, interrupt

    inner = StateGraph(State)
    inner.add_node("inner", lambda s: {"items": ["sub"]})
    inner.add_edge(START, "inner")

    def ask(state: State) -> dict:
        answer = interrupt({"question": "ok?"})
        return {"done": answer == "yes", "items": ["asked"]}

    graph = StateGraph(State)
    graph.add_node("a", lambda s: {"n": s["n"] + 1, "note": "héllo", "maybe": None, "items": ["a"]})
    graph.add_node("b", lambda s: {"items": [f"b{s['n']}"]})
    graph.add_node("sub", inner.compile())
    graph.add_node("ask", ask)
    graph.add_edge(START, "a")
    graph.add_conditional_edges(
        "a", lambda s: [Send("b", {"n": i, "note": "", "done": False, "maybe": None, "items": []}) for i in range(2)]
    )
    graph.add_edge("b", "sub")
    graph.add_edge("sub", "ask")
    graph.add_edge("ask", END)
    return graph


def tuples(saver, config) -> list:
    return [
        (t.config, t.checkpoint, t.metadata, t.parent_config, sorted(t.pending_writes or [], key=repr))
        for t in saver.list(config)
    ]


def test_langgraph_checkpoints_read_back_as_postgres_saver_reads_them(peer_schema: str, tenant: str) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.types import Command

    from ctxstore.checkpoint import CtxstoreSaver

    with peer_connection(peer_schema, tenant) as db:
        peer = PostgresSaver(db)
        peer.setup()
        threads = [f"lg-{uuid.uuid4()}" for _ in range(3)]
        start = {"n": 1, "note": "", "done": False, "maybe": 3, "items": []}
        for i, thread in enumerate(threads):
            graph = workflow().compile(checkpointer=peer)
            config = {"configurable": {"thread_id": thread}}
            graph.invoke(start, config)
            if i != 1:  # the second thread stays interrupted: its pending writes wait
                graph.invoke(Command(resume="yes"), config)
        namespaces = [r["checkpoint_ns"] for r in db.execute("SELECT DISTINCT checkpoint_ns FROM checkpoints")]
        assert "" in namespaces and any(ns.startswith("sub:") for ns in namespaces)
        # inline primitives, as the peer keeps them
        assert db.execute("SELECT count(*) AS n FROM checkpoints WHERE checkpoint->'channel_values' ? 'note'").fetchone()["n"] > 0

        rows = db.execute("SELECT * FROM ctx.import_langgraph_checkpoints(%s)", (peer_schema,)).fetchall()
        got = {r["kind"]: (r["imported"], r["skipped"]) for r in rows}
        stored = db.execute("SELECT (SELECT count(*) FROM checkpoints) AS c, (SELECT count(*) FROM checkpoint_writes) AS w").fetchone()
        assert got == {"threads": (3, 0), "checkpoints": (stored["c"], 0), "writes": (stored["w"], 0)}
        again = db.execute("SELECT * FROM ctx.import_langgraph_checkpoints(%s)", (peer_schema,)).fetchall()
        assert {r["kind"]: (r["imported"], r["skipped"]) for r in again} == {
            "threads": (0, 3), "checkpoints": (0, stored["c"]), "writes": (0, stored["w"])
        }

        mine = CtxstoreSaver(db)
        for thread in threads:
            for ns in namespaces:
                config = {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}
                assert tuples(mine, config) == tuples(peer, config)
            assert mine.get_tuple({"configurable": {"thread_id": thread}}) == peer.get_tuple(
                {"configurable": {"thread_id": thread}}
            )
        # the interrupted run resumes on ctxstore as it would have on the peer
        config = {"configurable": {"thread_id": threads[1]}}
        resumed = workflow().compile(checkpointer=mine).invoke(Command(resume="yes"), config)
        assert resumed == workflow().compile(checkpointer=peer).invoke(Command(resume="yes"), config)
        assert resumed["done"] is True


def test_langgraph_checkpoints_refuse_other_versions(peer_schema: str, tenant: str) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver

    with peer_connection(peer_schema, tenant) as db:
        with pytest.raises(psycopg.Error) as missing:
            db.execute("SELECT * FROM ctx.import_langgraph_checkpoints(%s)", (peer_schema,))
        assert missing.value.sqlstate == "42P01"
        PostgresSaver(db).setup()
        db.execute("DELETE FROM checkpoint_migrations WHERE v > 5")
        with pytest.raises(psycopg.Error) as old:
            db.execute("SELECT * FROM ctx.import_langgraph_checkpoints(%s)", (peer_schema,))
        assert old.value.sqlstate == "55000" and "PostgresSaver.setup()" in old.value.diag.message_hint


# ---- LangGraph PostgresStore ----------------------------------------------------------------


def test_langgraph_store_reads_back_as_postgres_store_reads_it(peer_schema: str, tenant: str) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langgraph.store.postgres import PostgresStore

    from ctxstore.store import CtxstoreStore

    ttl = {"default_ttl": 60, "refresh_on_read": False}
    with peer_connection(peer_schema, tenant) as db:
        # PostgresStore's index needs pgvector (PG 15 here has none: the items alone there)
        vectors = db.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None
        index = {"dims": 8, "embed": DeterministicFakeEmbedding(size=8), "fields": ["text", "tags"]} if vectors else None
        peer = PostgresStore(db, index=index, ttl=ttl)
        peer.setup()
        peer.put(("users", "u1"), "prefs", {"text": "likes tea", "tags": ["a", "b"], "n": 1})
        peer.put(("users", "u1"), "bio", {"text": "from Lyon"}, ttl=5)
        peer.put(("users", "u2"), "prefs", {"text": "likes coffee"}, index=False)
        peer.put(("docs",), "d1", {"text": "hello world", "nested": {"x": [1, 2]}}, ttl=None)
        peer.put(("users", "u1"), "prefs", {"text": "likes green tea", "tags": ["a"], "n": 2})  # updated

        rows = db.execute("SELECT * FROM ctx.import_langgraph_store(%s)", (peer_schema,)).fetchall()
        embedded = 4 if vectors else 0
        assert {r["kind"]: (r["imported"], r["skipped"]) for r in rows} == {"items": (4, 0), "embeddings": (embedded, 0)}
        again = db.execute("SELECT * FROM ctx.import_langgraph_store(%s)", (peer_schema,)).fetchall()
        assert {r["kind"]: (r["imported"], r["skipped"]) for r in again} == {"items": (0, 4), "embeddings": (0, embedded)}

        mine = CtxstoreStore(db, index=index, ttl=ttl)
        for namespace, key in [(("users", "u1"), "prefs"), (("users", "u1"), "bio"), (("users", "u2"), "prefs"), (("docs",), "d1")]:
            assert mine.get(namespace, key) == peer.get(namespace, key)
        for prefix in [("users",), ("docs",), ("users", "u1")]:
            assert mine.search(prefix, limit=10) == peer.search(prefix, limit=10)
            if not vectors:
                continue
            ours = [(i.namespace, i.key, round(i.score, 5)) for i in mine.search(prefix, query="tea", limit=10)]
            theirs = [(i.namespace, i.key, round(i.score, 5)) for i in peer.search(prefix, query="tea", limit=10)]
            assert ours == theirs
        assert mine.list_namespaces() == peer.list_namespaces()
        # TTLs: the same expiry, and the same refresh period
        expiries = db.execute(
            """SELECT p.key, p.expires_at = s.expires_at AS same, s.ttl = make_interval(mins => p.ttl_minutes) AS same_ttl
                 FROM store p JOIN ctx.state s ON s.key = p.key AND s.namespace = ARRAY['langgraph'] || string_to_array(p.prefix, '.')
                WHERE p.expires_at IS NOT NULL"""
        ).fetchall()
        assert len(expiries) == 3 and all(r["same"] and r["same_ttl"] for r in expiries)


# ---- langchain-postgres PGVectorStore -------------------------------------------------------


def test_langchain_vectors_read_back_as_pgvectorstore_reads_them(peer_schema: str, tenant: str) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_postgres import Column, PGEngine, PGVectorStore

    from ctxstore.vectorstores import CtxstoreVectorStore

    if not psycopg.connect(dsn()).execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        pytest.skip("PGVectorStore needs pgvector")
    info = psycopg.conninfo.conninfo_to_dict(dsn())
    engine = PGEngine.from_connection_string(
        f"postgresql+psycopg://{info['user']}@/{info['dbname']}?host={info['host']}&port={info['port']}"
    )
    embeddings = DeterministicFakeEmbedding(size=8)
    engine.init_vectorstore_table(
        "docs", 8, schema_name=peer_schema, metadata_columns=[Column("topic", "TEXT"), Column("year", "INTEGER")]
    )
    peer = PGVectorStore.create_sync(engine, embeddings, "docs", schema_name=peer_schema, metadata_columns=["topic", "year"])
    texts = ["cats purr", "dogs bark", "birds sing", "fish swim", "cats nap"]
    metadatas = [
        {"topic": "cats", "year": 2020, "x": 1},
        {"topic": "dogs", "year": 2021},
        {"topic": "birds", "year": None, "nested": {"a": [1, 2]}},
        {"topic": "fish", "year": 2022, "tags": ["wet"]},
        {"topic": "cats", "year": 2023},
    ]
    ids = peer.add_texts(texts, metadatas=metadatas)
    with connect_in(peer_schema, tenant) as db:
        first = db.execute("SELECT * FROM ctx.import_langchain_vectors('docs', '{lc,docs}')").fetchall()
        assert counts(first) == {"documents": (5, 0)}
        assert counts(db.execute("SELECT * FROM ctx.import_langchain_vectors('docs', '{lc,docs}')").fetchall()) == {
            "documents": (0, 5)
        }
        mine = CtxstoreVectorStore(db, embeddings, namespace=("lc", "docs"))
        assert mine.get_by_ids(ids) == peer.get_by_ids(ids)
        for query in ["cats", "water", "noise"]:
            vector = embeddings.embed_query(query)
            theirs = peer.similarity_search_with_score_by_vector(vector, k=5)
            ours = mine.similarity_search_with_score_by_vector(vector, k=5)
            assert [d for d, _ in ours] == [d for d, _ in theirs]
            assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], abs=1e-5)
        # into an encrypted namespace: the metadata is sealed, and a second run still skips each id
        db.execute("SELECT ctx.encrypt_namespace('{lc,sealed}')")
        assert counts(db.execute("SELECT * FROM ctx.import_langchain_vectors('docs', '{lc,sealed}')").fetchall()) == {
            "documents": (5, 0)
        }
        assert counts(db.execute("SELECT * FROM ctx.import_langchain_vectors('docs', '{lc,sealed}')").fetchall()) == {
            "documents": (0, 5)
        }
        sealed = CtxstoreVectorStore(db, embeddings, namespace=("lc", "sealed"))
        vector = embeddings.embed_query("cats")
        # (by search: metadata filters, and so get_by_ids, do not see sealed metadata)
        assert [d for d, _ in sealed.similarity_search_with_score_by_vector(vector, k=5)] == [
            d for d, _ in peer.similarity_search_with_score_by_vector(vector, k=5)
        ]
    engine._run_as_sync(engine.close())  # (PGEngine has no synchronous close)
