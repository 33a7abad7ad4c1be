"""CtxstoreStore (LangGraph BaseStore): items, namespaces, filters, vector search, TTL."""

from __future__ import annotations

import time

import psycopg
import pytest
from langgraph.store.base import GetOp, PutOp, SearchOp

from ctxstore.store import CtxstoreStore

VOCABULARY = ["pizza", "pasta", "sushi", "cat", "dog", "python", "rust", "tea", "coffee"]


def embed(texts: list[str]) -> list[list[float]]:
    """Bag of words over a fixed vocabulary: similarity is word overlap."""
    vectors = []
    for text in texts:
        words = text.lower().split()
        vector = [float(words.count(w)) for w in VOCABULARY]
        vectors.append(vector if any(vector) else [0.01] * len(VOCABULARY))
    return vectors


INDEX = {"dims": len(VOCABULARY), "embed": embed, "fields": ["text"]}


def test_put_get_update_delete(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn)
    assert store.get(("users", "u1"), "profile") is None
    store.put(("users", "u1"), "profile", {"name": "Ada", "langs": ["rust"]})
    item = store.get(("users", "u1"), "profile")
    assert item.value == {"name": "Ada", "langs": ["rust"]}
    assert item.namespace == ("users", "u1") and item.key == "profile"
    created = item.created_at
    store.put(("users", "u1"), "profile", {"name": "Ada L."})
    item = store.get(("users", "u1"), "profile")
    assert item.value == {"name": "Ada L."} and item.created_at == created and item.updated_at >= created
    store.delete(("users", "u1"), "profile")
    assert store.get(("users", "u1"), "profile") is None


def test_batch_runs_in_one_transaction(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn)
    results = store.batch(
        [
            PutOp(("docs",), "a", {"n": 1}),
            GetOp(("docs",), "a"),
            SearchOp(("docs",), filter={"n": 1}),
        ]
    )
    assert results[0] is None and results[1].value == {"n": 1} and [i.key for i in results[2]] == ["a"]
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        store.batch([PutOp(("docs",), "b", {"n": 2}), PutOp(("docs",), "", {"n": 3})])
    assert store.get(("docs",), "b") is None  # the failed batch left nothing behind


def test_search_with_filters_and_paging(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn)
    for n in range(6):
        store.put(("shop", "items"), f"i{n}", {"price": n * 10, "tag": "even" if n % 2 == 0 else "odd"})
    store.put(("shop", "items", "archived"), "old", {"price": 5, "tag": "even"})
    # the most recently updated first, as PostgresStore lists them
    assert [i.key for i in store.search(("shop",), filter={"tag": "even"}, limit=10)] == ["old", "i4", "i2", "i0"]
    assert [i.key for i in store.search(("shop", "items"), filter={"price": {"$gte": 30}})] == ["i5", "i4", "i3"]
    assert [i.key for i in store.search(("shop",), limit=2, offset=1)] == ["i5", "i4"]
    store.put(("shop", "items"), "i1", {"price": 11, "tag": "odd"})  # updated: now the newest
    assert [i.key for i in store.search(("shop",), limit=2)] == ["i1", "old"]
    assert all(i.score is None for i in store.search(("shop",)))


def test_list_namespaces(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn)
    for ns in [("a", "x", "v1"), ("a", "y", "v1"), ("a", "y", "v2"), ("b", "x", "v1")]:
        store.put(ns, "k", {"ok": True})
    assert store.list_namespaces() == [("a", "x", "v1"), ("a", "y", "v1"), ("a", "y", "v2"), ("b", "x", "v1")]
    assert store.list_namespaces(prefix=("a",)) == [("a", "x", "v1"), ("a", "y", "v1"), ("a", "y", "v2")]
    assert store.list_namespaces(suffix=("v1",)) == [("a", "x", "v1"), ("a", "y", "v1"), ("b", "x", "v1")]
    assert store.list_namespaces(prefix=("*", "x")) == [("a", "x", "v1"), ("b", "x", "v1")]
    assert store.list_namespaces(max_depth=1) == [("a",), ("b",)]
    assert store.list_namespaces(limit=1, offset=1) == [("a", "y", "v1")]


def test_vector_search_ranks_by_meaning_and_filters(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn, index=INDEX)
    store.put(("memories",), "m1", {"text": "I love pizza and pasta", "kind": "food"})
    store.put(("memories",), "m2", {"text": "my cat and my dog", "kind": "pets"})
    store.put(("memories",), "m3", {"text": "sushi with tea", "kind": "food"})
    store.put(("memories",), "m4", {"text": "pizza party secret"}, index=False)
    hits = store.search(("memories",), query="pizza pasta", limit=2)
    assert hits[0].key == "m1"
    assert hits[0].score > 0.9
    assert all(h.key != "m4" for h in store.search(("memories",), query="pizza", limit=10))
    food = store.search(("memories",), query="cat", filter={"kind": "food"}, limit=5)
    assert {h.key for h in food} == {"m1", "m3"}
    # re-indexing on update: m2 is about food now
    store.put(("memories",), "m2", {"text": "pasta pasta pasta", "kind": "food"})
    assert store.search(("memories",), query="pasta", limit=1)[0].key == "m2"
    store.delete(("memories",), "m2")
    assert all(h.key != "m2" for h in store.search(("memories",), query="pasta", limit=10))


def test_ttl_expires_items(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn, index=INDEX, ttl={"omit_expired": True})
    store.put(("tmp",), "short", {"text": "coffee"}, ttl=0.005)  # 0.3 seconds
    store.put(("tmp",), "long", {"text": "coffee tea"})
    assert store.get(("tmp",), "short") is not None
    time.sleep(0.5)
    assert store.get(("tmp",), "short") is None
    assert [h.key for h in store.search(("tmp",), query="coffee", limit=5)] == ["long"]
    assert store.list_namespaces(prefix=("tmp",)) == [("tmp",)]


def test_expired_items_stay_readable_until_swept_unless_omitted(conn: psycopg.Connection) -> None:
    # LangGraph's stores' default: expiry is a deletion schedule; omit_expired hides them at once
    store = CtxstoreStore(conn, ttl={"sweep_interval_minutes": 0.005})
    strict = CtxstoreStore(conn, ttl={"omit_expired": True})
    store.put(("gone",), "k", {"v": 1}, ttl=0.001)  # 60 ms
    time.sleep(0.2)
    assert store.get(("gone",), "k", refresh_ttl=False) is not None
    assert [i.key for i in store.search(("gone",), refresh_ttl=False)] == ["k"]
    assert ("gone",) in store.list_namespaces()
    assert strict.get(("gone",), "k") is None and strict.search(("gone",)) == []
    assert ("gone",) not in strict.list_namespaces()
    # the store's sweeper (ctx.sweep every 0.3 s here) deletes it
    store.start_ttl_sweeper()
    try:
        deadline = time.monotonic() + 10
        while store.get(("gone",), "k", refresh_ttl=False) is not None:
            assert time.monotonic() < deadline, "the sweeper never deleted the expired item"
            time.sleep(0.1)
    finally:
        assert store.stop_ttl_sweeper(timeout=5)


def expiries(conn: psycopg.Connection, namespace: tuple[str, ...]) -> dict:
    """When the items of a namespace expire, by key."""
    rows = conn.execute(
        "SELECT key, expires_at FROM ctx.search_state(%s::text[], '{}', 100, 0)",
        (["langgraph", *namespace],),
    ).fetchall()
    return dict(rows)


def test_reads_restart_ttls(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn, index=INDEX, ttl={"default_ttl": 60})
    store.put(("ttl",), "read", {"text": "tea"})
    store.put(("ttl",), "found", {"text": "coffee"})
    store.put(("ttl",), "forever", {"text": "coffee tea"}, ttl=None)
    before = expiries(conn, ("ttl",))
    assert before["forever"] is None

    store.get(("ttl",), "read", refresh_ttl=False)
    store.search(("ttl",), query="coffee", refresh_ttl=False)
    assert expiries(conn, ("ttl",)) == before

    # each call is its own transaction: now() moves on, and each touched expiry with it
    store.get(("ttl",), "read")
    after_get = expiries(conn, ("ttl",))
    assert after_get["read"] > before["read"]
    assert after_get["found"] == before["found"] and after_get["forever"] is None

    store.search(("ttl",), query="coffee", limit=1)
    after_search = expiries(conn, ("ttl",))
    assert after_search["found"] > after_get["found"]
    assert after_search["read"] == after_get["read"] and after_search["forever"] is None

    store.search(("ttl",), filter={"text": "tea"})
    assert expiries(conn, ("ttl",))["read"] > after_search["read"]

    # a store whose reads do not refresh by default
    quiet = CtxstoreStore(conn, index=INDEX, ttl={"default_ttl": 60, "refresh_on_read": False})
    quiet.get(("ttl",), "found")
    assert expiries(conn, ("ttl",))["found"] == after_search["found"]


def index_entries(conn: psycopg.Connection, namespace: tuple[str, ...]) -> list[str]:
    rows = conn.execute(
        """SELECT metadata->>'lg_key' FROM ctx.memories
            WHERE namespace = %s::text[] AND valid_to IS NULL ORDER BY 1""",
        (["langgraph", *namespace],),
    ).fetchall()
    return [r[0] for r in rows]


def test_expired_items_index_entries_are_forgotten_by_search(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn, index=INDEX, ttl={"omit_expired": True})
    store.put(("orphans",), "short", {"text": "coffee"}, ttl=0.001)  # 60 ms
    store.put(("orphans",), "long", {"text": "coffee tea"})
    assert index_entries(conn, ("orphans",)) == ["long", "short"]
    time.sleep(0.2)
    assert [h.key for h in store.search(("orphans",), query="coffee")] == ["long"]
    assert index_entries(conn, ("orphans",)) == ["long"]


def test_query_without_index_is_ignored(conn: psycopg.Connection) -> None:
    # as LangGraph's stores: without an index a search lists items, whatever the query
    store = CtxstoreStore(conn)
    store.put(("x",), "a", {"text": "tea"})
    hits = store.search(("x",), query="anything")
    assert [(h.key, h.score) for h in hits] == [("a", None)]


async def test_async_connection(aconn: psycopg.AsyncConnection) -> None:
    store = CtxstoreStore(aconn, index=INDEX)
    await store.aput(("a",), "k1", {"text": "rust and python"})
    await store.aput(("a", "b"), "k2", {"text": "tea"})
    assert (await store.aget(("a",), "k1")).value == {"text": "rust and python"}
    assert [h.key for h in await store.asearch(("a",), query="python", limit=1)] == ["k1"]
    assert await store.alist_namespaces(prefix=("a",)) == [("a",), ("a", "b")]
    await store.adelete(("a",), "k1")
    assert await store.aget(("a",), "k1") is None
