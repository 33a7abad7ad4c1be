"""Adapter behaviour beyond the standard suites: filters that name ctxstore's built-in columns,
nested namespaces, key iteration while deleting."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from ctxstore.storage import CtxstoreByteStore
from ctxstore.store import CtxstoreStore
from ctxstore.vectorstores import CtxstoreVectorStore
from test_store import INDEX


def test_vector_filters_name_metadata_except_the_id_and_content_columns(conn: psycopg.Connection) -> None:
    # as langchain-postgres: "content" (content_column) is the document's text, every other
    # name a metadata key, "id" and "importance" included
    store = CtxstoreVectorStore(conn, DeterministicFakeEmbedding(size=8))
    store.add_documents(
        [
            Document("a", metadata={"id": 1, "content": "x", "importance": 9}),
            Document("b", metadata={"id": 2, "content": "y"}),
        ],
        ids=["da", "db"],
    )
    assert [d.id for d in store.similarity_search("a", k=5, filter={"id": 2})] == ["db"]
    assert [d.id for d in store.similarity_search("a", k=5, filter={"content": "b"})] == ["db"]
    assert [d.id for d in store.similarity_search("a", k=5, filter={"langchain_id": "da"})] == ["da"]
    either = store.similarity_search("a", k=5, filter={"$or": [{"importance": {"$gt": 5}}, {"id": 2}]})
    assert sorted(d.id for d in either) == ["da", "db"]


def test_vector_store_leaves_nested_namespaces_alone(conn: psycopg.Connection) -> None:
    embeddings = DeterministicFakeEmbedding(size=8)
    outer = CtxstoreVectorStore(conn, embeddings, namespace=["kb"])
    inner = CtxstoreVectorStore(conn, embeddings, namespace=["kb", "team"])
    outer.add_texts(["outer"], ids=["same-id"])
    inner.add_texts(["inner"], ids=["same-id"])
    outer.add_texts(["outer v2"], ids=["same-id"])  # replaces outer's only
    outer.delete(["same-id"])
    assert [d.page_content for d in inner.get_by_ids(["same-id"])] == ["inner"]
    assert outer.get_by_ids(["same-id"]) == []


def test_store_filters_on_value_fields_named_like_columns(conn: psycopg.Connection) -> None:
    store = CtxstoreStore(conn, index=INDEX)
    store.put(("docs",), "a", {"text": "pizza", "key": "alpha", "version": 7})
    store.put(("docs",), "b", {"text": "pasta", "key": "beta", "version": 1})
    assert [i.key for i in store.search(("docs",), filter={"key": "beta"})] == ["b"]
    assert [i.key for i in store.search(("docs",), filter={"version": {"$gt": 5}})] == ["a"]
    hits = store.search(("docs",), query="pizza", filter={"$or": [{"key": "alpha"}, {"version": 1}]}, limit=5)
    assert sorted(h.key for h in hits) == ["a", "b"]
    hits = store.search(("docs",), query="pizza", filter={"$not": {"key": "alpha"}}, limit=5)
    assert [h.key for h in hits] == ["b"]


def test_byte_store_keys_survive_deletes_while_iterating(conn: psycopg.Connection) -> None:
    store = CtxstoreByteStore(conn, namespace=["bytes", "iter"])
    nested = CtxstoreByteStore(conn, namespace=["bytes", "iter", "nested"])
    keys = [f"k{n:05d}" for n in range(2500)]
    store.mset([(k, b"v") for k in keys])
    nested.mset([("k00000", b"other")])
    seen = []
    for key in store.yield_keys():
        seen.append(key)
        store.mdelete([key])  # deleting as we go must not make the iteration skip any
    assert seen == keys
    assert list(store.yield_keys()) == []
    assert list(nested.yield_keys()) == ["k00000"]


def vector_literal(vector: list[float]) -> str:
    """The real[] text form, the reference the binary form is compared with."""
    return "{" + ",".join(repr(float(x)) for x in vector) + "}"


def test_stored_vectors_travel_binary_in_batches(conn: psycopg.Connection) -> None:
    # add_texts sends its embeddings binary in VALUES lists of at most VALUES_ROWS rows: every
    # row of a batch one longer than that is stored, each vector as the model made it (float4)
    import struct

    from ctxstore._recall import VALUES_ROWS

    model = DeterministicFakeEmbedding(size=8)
    store = CtxstoreVectorStore(conn, model)
    texts = [f"doc {i}" for i in range(VALUES_ROWS + 1)]
    ids = store.add_texts(texts)
    assert len(ids) == len(texts)
    rows = conn.execute(
        "SELECT content, embedding::real[] AS v FROM ctx.memories WHERE namespace = %s::text[] AND valid_to IS NULL",
        [store.namespace],
    ).fetchall()
    stored = {content: v for content, v in rows}
    assert len(stored) == len(texts)
    float4 = lambda xs: [struct.unpack("f", struct.pack("f", x))[0] for x in xs]  # noqa: E731
    for text in (texts[0], texts[VALUES_ROWS - 1], texts[VALUES_ROWS]):
        assert float4(stored[text]) == float4(model.embed_query(text))


def test_query_vectors_travel_binary_and_score_as_the_text_form(conn: psycopg.Connection) -> None:
    # the query vector is sent in ctx.embedding's binary form; what the server receives equals
    # the real[] text form float for float, so both rank and score alike
    from ctxstore._recall import Embedding, register_embedding

    register_embedding(conn)
    vector = [0.1, -2.5, 3.0e-7, 1.0 / 3.0, 65504.0, -0.0]
    sent = conn.execute("SELECT %s::ctx.embedding::real[] AS v", [Embedding(vector)]).fetchone()
    text = conn.execute("SELECT %s::real[] AS v", [vector_literal(vector)]).fetchone()
    assert sent == text
    store = CtxstoreVectorStore(conn, DeterministicFakeEmbedding(size=8))
    store.add_texts(["alpha", "beta", "gamma"], ids=["a", "b", "g"])
    query = DeterministicFakeEmbedding(size=8).embed_query("beta")
    binary = store.similarity_search_with_score_by_vector(query, k=3)
    by_text = conn.execute(
        "SELECT content, similarity FROM ctx.recall(%s::text[], %s::real[], k => 3, weights => %s)",
        [store.namespace, vector_literal(query),
         Jsonb({"similarity": 1, "text": 0, "recency": 0, "importance": 0})],
    ).fetchall()
    assert [d.page_content for d, _ in binary] == [r[0] for r in by_text]
    assert binary[0][0].page_content == "beta"


def test_query_vectors_refuse_what_float4_cannot_hold() -> None:
    import math

    import pytest

    from ctxstore._recall import Embedding

    for bad in ([math.nan], [math.inf], [1e39]):
        with pytest.raises(ValueError, match="finite float4"):
            Embedding(bad)
    with pytest.raises(ValueError, match="at most 16000"):
        Embedding([0.0] * 16001)
