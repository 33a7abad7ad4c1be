"""What the official Postgres backends' own tests showed the adapters lacked (issue 20), each
tested here on its own: pipelined connections, sync calls on async stores, queries without an
index, concurrent batches on a pool, legacy pending sends, the vector store's reads, filters,
distances, MMR and hybrid search, and namespace labels with line breaks."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import psycopg
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.outputs import Generation
from langgraph.checkpoint.base import create_checkpoint, empty_checkpoint
from langgraph.checkpoint.serde.types import TASKS
from langgraph.store.base import PutOp
from psycopg_pool import AsyncConnectionPool

from conftest import dsn, tenant_options
from ctxstore._mmr import maximal_marginal_relevance
from ctxstore.cache import CtxstoreCache
from ctxstore.checkpoint import CtxstoreSaver
from ctxstore.storage import CtxstoreByteStore
from ctxstore.store import AsyncCtxstoreStore, CtxstoreStore
from ctxstore.vectorstores import CtxstoreVectorStore
from test_store import INDEX

EMBED = DeterministicFakeEmbedding(size=16)


def test_every_read_returns_rows_on_a_pipelined_connection(conn: psycopg.Connection) -> None:
    # in pipeline mode cursor.description is None until results are fetched: reads that
    # tested it first returned nothing while the writes landed
    with conn.pipeline():
        store = CtxstoreStore(conn, index=INDEX)
        store.put(("p",), "k", {"text": "tea"})
        assert store.get(("p",), "k").value == {"text": "tea"}
        assert [h.key for h in store.search(("p",), query="tea")] == ["k"]
        assert store.list_namespaces() == [("p",)]
        vectors = CtxstoreVectorStore(conn, EMBED)
        vectors.add_texts(["alpha"], ids=["a"])
        assert [d.id for d in vectors.similarity_search("alpha", k=1)] == ["a"]
        assert [d.id for d in vectors.get_by_ids(["a"])] == ["a"]
        assert vectors.get()["ids"] == ["a"]
        blobs = CtxstoreByteStore(conn)
        blobs.mset([("b", b"\x00\x01")])
        assert blobs.mget(["b"]) == [b"\x00\x01"]
        assert list(blobs.yield_keys()) == ["b"]
        cache = CtxstoreCache(conn)
        cache.update("prompt", "llm", [Generation(text="hi")])
        assert cache.lookup("prompt", "llm") == [Generation(text="hi")]
        saver = CtxstoreSaver(conn)
        config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        saved = saver.put(config, empty_checkpoint(), {"step": 1}, {})
        assert saver.get_tuple(saved).metadata["step"] == 1
        assert len(list(saver.list(config))) == 1


async def test_async_store_serves_sync_calls_from_other_threads(aconn: psycopg.AsyncConnection) -> None:
    store = AsyncCtxstoreStore(aconn)
    with pytest.raises(asyncio.InvalidStateError):
        store.put(("s",), "k", {"v": 1})  # the loop's own thread would deadlock
    result: dict[str, object] = {}

    def from_a_thread() -> None:
        store.put(("s",), "k", {"v": 1})
        result["item"] = store.get(("s",), "k")

    thread = threading.Thread(target=from_a_thread)
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.01)
    assert result["item"].value == {"v": 1}


async def test_concurrent_calls_on_a_small_pool_are_batched() -> None:
    # thousands of concurrent calls share a pool of 2 connections: queued and run in batches,
    # not one checkout (and a pool timeout) each
    async with AsyncConnectionPool(
        dsn(), min_size=1, max_size=2, timeout=5, open=False,
        kwargs={"autocommit": True, "options": tenant_options()},
    ) as pool:
        store = AsyncCtxstoreStore(pool)
        await asyncio.gather(*(store.aput(("many", str(i % 3)), f"k{i}", {"i": i}) for i in range(3000)))
        got = await asyncio.gather(*(store.aget(("many", str(i % 3)), f"k{i}") for i in range(3000)))
        assert [g.value["i"] for g in got] == list(range(3000))


def test_checkpoints_before_format_4_take_their_parents_pending_sends(conn: psycopg.Connection) -> None:
    saver = CtxstoreSaver(conn)
    config = {"configurable": {"thread_id": "legacy", "checkpoint_ns": ""}}
    first = empty_checkpoint()
    first["v"] = 3
    config = saver.put(config, first, {}, {})
    saver.put_writes(config, [(TASKS, "send-1"), (TASKS, "send-2")], task_id="task-1")
    saver.put_writes(config, [(TASKS, "send-3")], task_id="task-2")
    assert saver.get_tuple(config).checkpoint["channel_values"] == {}
    second = create_checkpoint(first, {}, 1)
    second["v"] = 3
    config = saver.put(config, second, {}, {})
    child = saver.get_tuple(config)
    assert child.checkpoint["channel_values"] == {TASKS: ["send-1", "send-2", "send-3"]}
    assert TASKS in child.checkpoint["channel_versions"]
    newest, oldest = list(saver.list({"configurable": {"thread_id": "legacy"}}))
    assert newest.checkpoint["channel_values"][TASKS] == ["send-1", "send-2", "send-3"]
    assert oldest.checkpoint["channel_values"] == {}
    # format 4 and later: sends are the checkpoint's own, nothing is moved
    current = create_checkpoint(second, {}, 2)
    config = saver.put(config, current, {}, {})
    assert saver.get_tuple(config).checkpoint["channel_values"] == {}


def test_shallow_saver_keeps_only_the_latest_checkpoint(conn: psycopg.Connection) -> None:
    saver = CtxstoreSaver(conn, shallow=True)
    config = {"configurable": {"thread_id": "shallow", "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    for step in range(3):
        checkpoint = create_checkpoint(checkpoint, {}, step)
        config = saver.put(config, checkpoint, {"step": step}, {})
    assert [t.metadata["step"] for t in saver.list({"configurable": {"thread_id": "shallow"}})] == [2]


@pytest.fixture
def documents(conn: psycopg.Connection) -> CtxstoreVectorStore:
    store = CtxstoreVectorStore(conn, EMBED, namespace=("contract", "docs"))
    store.add_texts(
        ["red apples are sweet", "green pears", "apple computers", "a quiet cat"],
        metadatas=[{"n": 1, "tags": ["fruit"]}, {"n": 2, "tags": ["fruit"]}, {"n": 3}, {"n": 4}],
        ids=["d1", "d2", "d3", "d4"],
    )
    return store


def test_vector_store_get_by_ids_and_where(documents: CtxstoreVectorStore) -> None:
    assert [d.id for d in documents.get_by_ids(ids=["d3", "d1", "nope"])] == ["d3", "d1"]
    got = documents.get(ids=["d1", "d2", "d3"], where={"n": {"$between": [2, 3]}})
    assert sorted(got["ids"]) == ["d2", "d3"] and set(got) == {"ids", "documents", "metadatas"}
    assert documents.get(where_document={"$in": ["green pears"]})["ids"] == ["d2"]
    everything = documents.get()["ids"]
    assert sorted(everything) == ["d1", "d2", "d3", "d4"]
    pages = documents.get(limit=1)["ids"] + documents.get(limit=2, offset=1)["ids"] + documents.get(offset=3)["ids"]
    assert pages == everything
    with_vectors = documents.get(ids=["d4"], include=["embeddings"])
    assert with_vectors["embeddings"][0] == pytest.approx(EMBED.embed_query("a quiet cat"), rel=1e-6)


def test_vector_filters_are_checked_and_complete(documents: CtxstoreVectorStore) -> None:
    def ids(filter: dict) -> list[str]:
        return sorted(d.id for d in documents.similarity_search("apple", k=10, filter=filter))

    assert ids({"$not": [{"n": 1}, {"n": 1}]}) == ["d2", "d3", "d4"]
    assert ids({"$not": [{"n": {"$gte": 2}}, {"n": {"$lte": 3}}]}) == ["d1", "d4"]
    assert ids({"n": {"$between": [2, 3]}}) == ["d2", "d3"]
    assert ids({"tags": {"$exists": False}}) == ["d3", "d4"]
    for bad in (
        {"$nor": [{"n": 1}]},
        {"$and": {"n": 1}},
        {"$and": []},
        {"n": {"$and": True}},
        {"n": {"weird": 1}},  # an object without operators is not silently a value
        {"n": {"$between": [1]}},
        {"$not": True},
    ):
        with pytest.raises(ValueError):
            documents.similarity_search("apple", filter=bad)


def test_vector_scores_are_distances_of_the_store_strategy(conn: psycopg.Connection) -> None:
    vectors = {"x": [1.0, 0.0], "y": [3.0, 4.0]}

    class Fixed(DeterministicFakeEmbedding):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [vectors[t] for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return vectors[text]

    expected = {  # query "x" against y: cosine distance, euclidean distance, inner product
        "cosine": 1 - 3 / 5,
        "euclidean": math.dist([1, 0], [3, 4]),
        "inner_product": 3.0,
    }
    for strategy, distance in expected.items():
        store = CtxstoreVectorStore(conn, Fixed(size=2), namespace=("dist", strategy), distance_strategy=strategy)
        store.add_texts(["x", "y"], ids=["x", "y"])
        scored = dict((d.id, s) for d, s in store.similarity_search_with_score_by_vector(vectors["x"], k=2))
        assert scored["y"] == pytest.approx(distance, rel=1e-5), strategy
        assert scored["x"] == (1.0 if strategy == "inner_product" else 0.0), strategy


def test_max_marginal_relevance_prefers_diverse_results(documents: CtxstoreVectorStore) -> None:
    query = EMBED.embed_query("apple")
    picked = documents.max_marginal_relevance_search_with_score_by_vector(query, k=2, fetch_k=4, lambda_mult=0.0)
    assert len(picked) == 2
    plain = documents.similarity_search_by_vector(query, k=1)
    assert picked[0][0].id == plain[0].id  # the first pick is the nearest
    assert maximal_marginal_relevance([1.0, 0.0], [[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]], k=2, lambda_mult=0.0) == [0, 2]
    assert maximal_marginal_relevance([1.0, 0.0], [[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]], k=2, lambda_mult=1.0) == [0, 1]


def test_hybrid_search_ranks_by_text_as_well(conn: psycopg.Connection) -> None:
    class Config:  # langchain-postgres's HybridSearchConfig fields, duck-typed
        fts_query = ""
        primary_top_k = 4
        secondary_top_k = 4
        fusion_function_parameters: dict = {}

        @staticmethod
        def fusion_function(primary: list[dict], secondary: list[dict], **kwargs: object) -> list[dict]:
            return secondary  # the text results alone: only real full-text search finds them

    store = CtxstoreVectorStore(conn, EMBED, namespace=("hybrid",))
    store.add_texts(["the zebra grazes", "a lion sleeps", "cars"], ids=["z", "l", "c"])
    found = store.similarity_search("zebra", k=1, hybrid_search_config=Config())
    assert [d.id for d in found] == ["z"]


def test_namespace_labels_with_a_trailing_newline_are_their_own(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn)
    store.batch([PutOp(("users", "alice"), "k", {"v": 1}), PutOp(("users", "alice\n"), "k", {"v": 2})])
    assert store.get(("users", "alice"), "k").value == {"v": 1}
    assert store.get(("users", "alice\n"), "k").value == {"v": 2}
    assert set(store.list_namespaces(suffix=["alice"])) == {("users", "alice")}
    assert [i.value for i in store.search(("users", "alice"))] == [{"v": 1}]


def test_concurrent_shallow_puts_on_one_thread_do_not_deadlock() -> None:
    # parallel subgraphs: several namespaces of one thread checkpointed at once, on a pool
    from concurrent.futures import ThreadPoolExecutor

    from psycopg_pool import ConnectionPool

    with ConnectionPool(dsn(), min_size=4, max_size=4, open=True,
                        kwargs={"autocommit": True, "options": tenant_options()}) as pool:
        saver = CtxstoreSaver(pool, shallow=True)

        def steps(ns: str) -> None:
            config = {"configurable": {"thread_id": "parallel", "checkpoint_ns": ns}}
            checkpoint = empty_checkpoint()
            for step in range(25):
                checkpoint = create_checkpoint(checkpoint, {}, step)
                config = saver.put(config, checkpoint, {"step": step}, {})

        with ThreadPoolExecutor(4) as workers:
            list(workers.map(steps, ["", "a", "b", "c"]))  # re-raises a deadlock
        latest = list(saver.list({"configurable": {"thread_id": "parallel"}}))
        assert sorted((t.config["configurable"]["checkpoint_ns"], t.metadata["step"]) for t in latest) == [
            ("", 24), ("a", 24), ("b", 24), ("c", 24)]


def test_concurrent_puts_of_one_indexed_item_leave_one_set_of_entries() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from psycopg_pool import ConnectionPool

    from test_store import index_entries

    options = tenant_options()
    with ConnectionPool(dsn(), min_size=4, max_size=4, open=True,
                        kwargs={"autocommit": True, "options": options}) as pool:
        store = CtxstoreStore(pool, index=INDEX)
        colours = ["pizza red", "pasta blue", "sushi green", "tea gold"]
        with ThreadPoolExecutor(4) as workers:
            list(workers.map(lambda n: store.put(("race",), "item", {"text": colours[n % 4]}), range(80)))
        with psycopg.connect(dsn(), autocommit=True, options=options) as conn:
            assert index_entries(conn, ("race",)) == ["item"]  # one entry: the last put's
        final = store.get(("race",), "item").value["text"]
        for other in colours:
            hits = store.search(("race",), query=other.split()[0], filter={"text": other})
            assert [h.key for h in hits] == (["item"] if other == final else [])


def test_the_sweeper_never_runs_inside_the_applications_transaction(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn, ttl={"sweep_interval_minutes": 0.002})
    store.put(("swept",), "k", {"v": 1}, ttl=0.001)
    time.sleep(0.1)
    with conn.transaction():  # the application's transaction on the store's connection
        xid_before = conn.execute("SELECT pg_current_xact_id_if_assigned()").fetchone()[0]
        store.start_ttl_sweeper()
        time.sleep(0.5)  # several sweeps
        xid_after = conn.execute("SELECT pg_current_xact_id_if_assigned()").fetchone()[0]
        assert xid_before is None and xid_after is None  # nothing written in our transaction
    assert store.stop_ttl_sweeper(timeout=5)
    assert store.get(("swept",), "k", refresh_ttl=False) is None  # swept, and committed


async def test_a_sync_stores_sweeper_refuses_an_async_connection(aconn: psycopg.AsyncConnection) -> None:
    with pytest.raises(TypeError, match="AsyncCtxstoreStore"):
        CtxstoreStore(aconn, ttl={"sweep_interval_minutes": 1}).start_ttl_sweeper()


async def test_the_async_stores_sweeper_deletes_expired_items(aconn: psycopg.AsyncConnection) -> None:
    store = AsyncCtxstoreStore(aconn, ttl={"sweep_interval_minutes": 0.002})
    await store.aput(("swept",), "k", {"v": 1}, ttl=0.001)
    await asyncio.sleep(0.1)
    assert await store.aget(("swept",), "k", refresh_ttl=False) is not None  # expired, not swept
    await store.start_ttl_sweeper()
    for _ in range(100):
        if await store.aget(("swept",), "k", refresh_ttl=False) is None:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the sweeper never deleted the expired item")
    assert await store.stop_ttl_sweeper(timeout=5)


def test_vector_store_ids_are_checked_and_compared_as_text(conn: psycopg.Connection) -> None:
    store = CtxstoreVectorStore(conn, EMBED, namespace=("ids",))
    with pytest.raises(ValueError, match="unique"):
        store.add_texts(["apple pie", "banana bread"], ids=["x", "x"])
    assert store.get()["ids"] == []  # nothing of the refused call was written
    store.add_texts(["one"], ids=[1])  # type: ignore[list-item]
    assert [d.id for d in store.get_by_ids([1])] == ["1"]  # type: ignore[list-item]
    assert store.get(ids=[1])["ids"] == ["1"]  # type: ignore[list-item]
    store.delete([1])  # type: ignore[list-item]
    assert store.get()["ids"] == []
    for bad in ({"limit": -1}, {"offset": -1}):
        with pytest.raises(ValueError, match="negative"):
            store.get(**bad)


def test_hybrid_search_without_a_fusion_function_keeps_the_inner_product(conn: psycopg.Connection) -> None:
    class Config:
        fts_query = ""
        primary_top_k = 4
        secondary_top_k = 4
        fusion_function = None
        fusion_function_parameters: dict = {}

    store = CtxstoreVectorStore(conn, EMBED, namespace=("hybrid-ip",), distance_strategy="inner_product")
    store.add_texts(["zebra"], ids=["z"])
    plain = store.similarity_search_with_score("zebra", k=1)
    hybrid = store.similarity_search_with_score("zebra", k=1, hybrid_search_config=Config())
    assert hybrid[0][1] == pytest.approx(plain[0][1]) and plain[0][1] > 0


def test_vector_search_pages_count_only_live_items(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn, index=INDEX, ttl={"omit_expired": True})
    for n in range(6):  # the three best matches expire; pages must still be full
        store.put(("paged",), f"gone{n}", {"text": "coffee coffee tea"}, ttl=0.001 if n < 3 else None)
    store.put(("paged",), "a", {"text": "coffee"})
    store.put(("paged",), "b", {"text": "coffee pizza"})
    time.sleep(0.2)
    first = store.search(("paged",), query="coffee", limit=2)
    second = store.search(("paged",), query="coffee", limit=2, offset=2)
    keys = [i.key for i in first + second]
    assert len(first) == 2 and len(second) == 2 and len(set(keys)) == 4
    assert not any(k in keys for k in ("gone0", "gone1", "gone2"))
