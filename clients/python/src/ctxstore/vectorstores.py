"""LangChain's ``VectorStore`` over ctxstore long-term memories (``ctx.memories``).

Each document is a memory in the store's namespace; its LangChain id is kept in the memory's
metadata (``_lc_id``), so ids can be any string. Search is ``ctx.recall`` under the store's
distance strategy, with metadata filters in ctxstore's filter language, a superset of
langchain-postgres's (``{"topic": {"$in": ["a", "b"]}, "year": {"$between": [2020, 2024]}}``).
Scores are distances as langchain-postgres returns them: cosine distance (default), euclidean
distance, or the inner product (higher is closer).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from psycopg.types.json import Jsonb

from ctxstore._db import Connection, Database
from ctxstore._filters import metadata_filter
from ctxstore._mmr import maximal_marginal_relevance
from ctxstore._recall import SIMILARITY_ONLY, Embedding, values_steps

ID_KEY = "_lc_id"
TEXT_ONLY = Jsonb({"similarity": 0, "text": 1, "recency": 0, "importance": 0})
UNLIMITED = 2**31 - 1

# one writer per (namespace, id) at a time: replacing a document is forget + remember
_LOCK = """SELECT count(pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
               'ctxstore.lc_doc' || chr(31) || ctx.current_tenant() || chr(31) || array_to_string(%s::text[], chr(31)) || chr(31) || i, 0)))
             FROM (SELECT DISTINCT i FROM unnest(%s::text[]) AS i ORDER BY i) AS ids"""
_FORGET = "SELECT ctx.forget(%s::text[], %s) AS n"
_REMEMBER = """SELECT ctx.remember(%s::text[], d.content, d.embedding::real[], d.metadata)
                 FROM (VALUES {values}) AS d(content, embedding, metadata)"""
_SEARCH = """SELECT content, metadata, similarity, embedding
               FROM ctx.recall(%s::text[], %s::ctx.embedding, k => %s, filter => %s, weights => %s,
                               include_descendants => false, metric => %s, include_embedding => %s)"""
# hybrid search: the vector and the full-text candidates, in one round trip
_HYBRID = """(SELECT 'vector' AS source, content, metadata, similarity AS rank, NULL::real[] AS embedding
                FROM ctx.recall(%s::text[], %s::ctx.embedding, k => %s, filter => %s, weights => %s,
                                include_descendants => false, metric => %s))
             UNION ALL
             (SELECT 'text', content, metadata, text_rank, NULL::real[]
                FROM ctx.recall(%s::text[], query_text => %s, k => %s, filter => %s, weights => %s,
                                include_descendants => false))"""
_LIST = """SELECT content, metadata, embedding
             FROM ctx.recall(%s::text[], k => %s, filter => %s, include_descendants => false,
                             include_embedding => %s)"""

# distance strategies, by the names LangChain's packages give them
_METRICS = {
    "cosine": "cosine", "cosine_distance": "cosine",
    "euclidean": "l2", "euclidean_distance": "l2", "l2": "l2", "l2_distance": "l2",
    "inner_product": "inner_product", "max_inner_product": "inner_product",
    "dot_product": "inner_product", "ip": "inner_product",
}


def _metric(strategy: Any) -> str:
    name = str(getattr(strategy, "name", strategy)).lower()
    try:
        return _METRICS[name]
    except KeyError:
        raise ValueError(
            f"unknown distance strategy {strategy!r}: use cosine, euclidean or inner_product"
        ) from None


def _distance(metric: str, similarity: float) -> float:
    """recall's similarity as the distance langchain-postgres reports."""
    if metric == "cosine":
        return 1.0 - similarity
    if metric == "l2":  # recall scores l2 as 1 / (1 + distance)
        return 1.0 / similarity - 1.0 if similarity > 0 else math.inf
    return similarity


def _document(row: dict[str, Any]) -> Document:
    metadata = dict(row["metadata"])
    doc_id = metadata.pop(ID_KEY, None)
    return Document(id=doc_id, page_content=row["content"], metadata=metadata)


class CtxstoreVectorStore(VectorStore):
    """Documents as ctxstore memories in ``namespace`` (default ``["langchain", "documents"]``).

    ``distance_strategy``: ``"cosine"`` (default), ``"euclidean"`` or ``"inner_product"``
    (langchain-postgres's and langchain-core's ``DistanceStrategy`` members are accepted too).
    ``metadata_keys``: store only these metadata keys (langchain-postgres's metadata columns
    without a JSON column); None keeps all. ``id_column`` / ``content_column``: the names
    filters use for the document's id and text. ``hybrid_search_config``: any object with
    langchain-postgres's ``HybridSearchConfig`` fields; hybrid searches fuse ctxstore's vector
    and full-text recalls with its ``fusion_function``.
    Adding a document with an id that exists replaces it. Content and metadata go through the
    namespace's write processors (secrets are redacted by default).
    """

    def __init__(
        self,
        conn: Connection,
        embeddings: Embeddings,
        *,
        namespace: Sequence[str] = ("langchain", "documents"),
        distance_strategy: Any = "cosine",
        metadata_keys: Sequence[str] | None = None,
        id_column: str = "langchain_id",
        content_column: str = "content",
        hybrid_search_config: Any = None,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
    ) -> None:
        self._db = Database(conn)
        self._embeddings = embeddings
        self.namespace = list(namespace)
        if not self.namespace:
            raise ValueError("namespace must have at least one label")
        self.metric = _metric(distance_strategy)
        self.metadata_keys = list(metadata_keys) if metadata_keys is not None else None
        self.columns = {id_column: "$." + ID_KEY, content_column: "content"}
        self.hybrid_search_config = hybrid_search_config
        self.k, self.fetch_k, self.lambda_mult = k, fetch_k, lambda_mult

    @property
    def embeddings(self) -> Embeddings:
        return self._embeddings

    @property
    def distance_strategy(self) -> str:
        return self.metric

    @distance_strategy.setter
    def distance_strategy(self, strategy: Any) -> None:
        self.metric = _metric(strategy)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        conn: Connection | None = None,
        namespace: Sequence[str] = ("langchain", "documents"),
        **kwargs: Any,
    ) -> CtxstoreVectorStore:
        if conn is None:
            raise ValueError("from_texts needs conn= (a psycopg connection or pool)")
        store = cls(conn, embedding, namespace=namespace, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        if self.metric == "l2":
            return self._euclidean_relevance_score_fn
        if self.metric == "inner_product":
            return self._max_inner_product_relevance_score_fn
        return self._cosine_relevance_score_fn

    # -- statements ----------------------------------------------------------------------

    def _filter(self, filter: dict | None, ids: Sequence[str] | None = None) -> Jsonb:
        parts = [metadata_filter(filter, self.columns)] if filter else []
        if ids is not None:
            parts.append({"$." + ID_KEY: {"$in": [str(i) for i in ids]}})
        # (ctx.forget and recall's filter also see sub-namespaces' memories only through this)
        return Jsonb({"namespace": self.namespace, **({"$and": parts} if parts else {})})

    def _add_steps(
        self,
        texts: list[str],
        vectors: list[list[float]],
        metadatas: list[dict] | None,
        ids: Sequence[str | None] | None,
    ) -> tuple[list[str], list[tuple[str, Any]]]:
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(metadatas)} metadatas")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(ids)} ids")
        final_ids = [
            str(i) if i is not None else str(uuid.uuid4())
            for i in (ids if ids is not None else [None] * len(texts))
        ]
        if len(set(final_ids)) != len(final_ids):
            repeated = sorted({i for i in final_ids if final_ids.count(i) > 1})
            raise ValueError(f"ids must be unique within a call; repeated: {repeated}")
        metadata = []
        for n in range(len(texts)):
            kept = dict(metadatas[n]) if metadatas else {}
            if self.metadata_keys is not None:
                kept = {k: v for k, v in kept.items() if k in self.metadata_keys}
            metadata.append(Jsonb({**kept, ID_KEY: final_ids[n]}))
        steps = [
            (_LOCK, (self.namespace, final_ids)),
            (_FORGET, (self.namespace, self._filter(None, final_ids))),
            *values_steps(
                _REMEMBER, (self.namespace,),
                [(t, Embedding(v), m) for t, v, m in zip(texts, vectors, metadata)],
                ("text", "ctx.embedding", "jsonb"),
            ),
        ]
        return final_ids, steps

    def _search_step(
        self, vector: list[float], k: int, filter: dict | None, with_embedding: bool = False
    ) -> tuple[str, Any]:
        return (
            _SEARCH,
            (self.namespace, Embedding(vector), k, self._filter(filter), SIMILARITY_ONLY,
             self.metric, with_embedding),
        )

    def _scored(self, rows: list[dict[str, Any]]) -> list[tuple[Document, float]]:
        return [(_document(r), _distance(self.metric, float(r["similarity"]))) for r in rows]

    def _hybrid_config(self, kwargs: dict[str, Any]) -> Any:
        return kwargs.get("hybrid_search_config") or self.hybrid_search_config

    def _hybrid_step(self, query: str, vector: list[float], k: int, filter: dict | None, config: Any) -> tuple[str, Any]:
        text = getattr(config, "fts_query", None) or query
        where = self._filter(filter)
        primary_k = getattr(config, "primary_top_k", None) or max(k, 4)
        secondary_k = getattr(config, "secondary_top_k", None) or max(k, 4)
        return (
            _HYBRID,
            (self.namespace, Embedding(vector), primary_k, where, SIMILARITY_ONLY, self.metric,
             self.namespace, text, secondary_k, where, TEXT_ONLY),
        )

    def _fused(self, rows: list[dict[str, Any]], k: int, config: Any) -> list[tuple[Document, float]]:
        """The two candidate lists fused by the config's fusion function (langchain-postgres's
        contract: rows whose first value is the id, with a ``distance``; best first)."""
        docs: dict[str, Document] = {}
        lists: dict[str, list[dict[str, Any]]] = {"vector": [], "text": []}
        for r in rows:
            doc = _document(r)
            docs[str(doc.id)] = doc
            rank = float(r["rank"] or 0.0)
            score = _distance(self.metric, rank) if r["source"] == "vector" else rank
            lists[r["source"]].append({"id": str(doc.id), "distance": score})
        lists["text"].sort(key=lambda row: -row["distance"])
        fusion = getattr(config, "fusion_function", None)
        if fusion is None:
            fused = lists["vector"]
        else:
            parameters = {**(getattr(config, "fusion_function_parameters", None) or {}), "fetch_top_k": k}
            if self.metric == "inner_product":  # fusion functions take distances: lower is closer
                lists["vector"] = [{**row, "distance": -row["distance"]} for row in lists["vector"]]
            fused = fusion(lists["vector"], lists["text"], **parameters)
        out = []
        for row in list(fused)[:k]:
            doc_id = str(next(iter(row.values())))
            out.append((docs[doc_id], float(row.get("distance", 0.0))))
        return out

    def _mmr(self, vector: list[float], rows: list[dict[str, Any]], k: int, lambda_mult: float) -> list[tuple[Document, float]]:
        candidates = [list(r["embedding"]) for r in rows]
        chosen = set(maximal_marginal_relevance(vector, candidates, k, lambda_mult))
        return [pair for i, pair in enumerate(self._scored(rows)) if i in chosen]

    def _list_step(self, ids: Sequence[str] | None, where: dict | None, where_document: dict | None,
                   limit: int | None, offset: int | None, include: Sequence[str]) -> tuple[str, Any]:
        parts = []
        if where:
            parts.append(where)
        if where_document:
            parts.append({self._content_column(): where_document})
        combined = {"$and": parts} if parts else None
        if (limit is not None and limit < 0) or (offset is not None and offset < 0):
            raise ValueError(f"limit and offset must not be negative (limit={limit}, offset={offset})")
        k = UNLIMITED if limit is None else min((offset or 0) + limit, UNLIMITED)
        return (_LIST, (self.namespace, k, self._filter(combined, ids), "embeddings" in include))

    def _content_column(self) -> str:
        return next(name for name, target in self.columns.items() if target == "content")

    @staticmethod
    def _listed(rows: list[dict[str, Any]], offset: int | None, include: Sequence[str]) -> dict[str, Any]:
        rows = rows[offset or 0:]
        out: dict[str, Any] = {"ids": []}
        for field in ("metadatas", "documents", "embeddings"):
            if field in include:
                out[field] = []
        for r in rows:
            doc = _document(r)
            out["ids"].append(doc.id)
            if "metadatas" in out:
                out["metadatas"].append(doc.metadata)
            if "documents" in out:
                out["documents"].append(doc.page_content)
            if "embeddings" in out:
                out["embeddings"].append(list(r["embedding"]))
        return out

    @staticmethod
    def _ordered(rows: list[dict[str, Any]], ids: Sequence[str]) -> list[Document]:
        by_id = {d.id: d for d in map(_document, rows)}
        return [by_id[i] for i in dict.fromkeys(map(str, ids)) if i in by_id]

    # -- sync ----------------------------------------------------------------------------

    def add_embeddings(
        self,
        texts: Iterable[str],
        embeddings: list[list[float]],
        metadatas: list[dict] | None = None,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        if not texts:
            return []
        final_ids, steps = self._add_steps(texts, embeddings, metadatas, ids)
        self._db.run(*steps)
        return final_ids

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        if not texts:
            return []
        return self.add_embeddings(texts, self._embeddings.embed_documents(texts), metadatas, ids)

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int | None = None, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return self._scored(self._db.run(self._search_step(embedding, k or self.k, filter)))

    def similarity_search_with_score(
        self, query: str, k: int | None = None, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        vector = self._embeddings.embed_query(query)
        config = self._hybrid_config(kwargs)
        if config is not None:
            rows = self._db.run(self._hybrid_step(query, vector, k or self.k, filter, config))
            return self._fused(rows, k or self.k, config)
        return self.similarity_search_with_score_by_vector(vector, k, filter)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int | None = None, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter)]

    def similarity_search(
        self, query: str, k: int | None = None, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def max_marginal_relevance_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int | None = None,
        fetch_k: int | None = None,
        lambda_mult: float | None = None,
        filter: dict | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        rows = self._db.run(self._search_step(embedding, fetch_k or self.fetch_k, filter, True))
        return self._mmr(embedding, rows, k or self.k, self.lambda_mult if lambda_mult is None else lambda_mult)

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        pairs = self.max_marginal_relevance_search_with_score_by_vector(embedding, k, fetch_k, lambda_mult, filter)
        return [d for d, _ in pairs]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        vector = self._embeddings.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, filter)

    def get_by_ids(self, ids: Sequence[str]) -> list[Document]:
        if not ids:
            return []
        rows = self._db.run((_LIST, (self.namespace, len(ids), self._filter(None, ids), False)))
        return self._ordered(rows, ids)

    def get(
        self,
        ids: Sequence[str] | None = None,
        where: dict | None = None,
        limit: int | None = None,
        offset: int | None = None,
        where_document: dict | None = None,
        include: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Documents by ids and / or filters, newest first, as ``{"ids", "documents",
        "metadatas"}`` (``include`` can add ``"embeddings"``), like langchain-postgres's."""
        include = include if include is not None else ("metadatas", "documents")
        rows = self._db.run(self._list_step(ids, where, where_document, limit, offset, include))
        return self._listed(rows, offset, include)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if ids is None:
            raise ValueError("delete needs ids (ctx.forget(namespace) empties a whole namespace)")
        if ids:
            ids = [str(i) for i in ids]
            self._db.run((_LOCK, (self.namespace, ids)), (_FORGET, (self.namespace, self._filter(None, ids))))
        return True

    # -- async ---------------------------------------------------------------------------

    async def aadd_embeddings(
        self,
        texts: Iterable[str],
        embeddings: list[list[float]],
        metadatas: list[dict] | None = None,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        if not self._db.is_async:
            return await self._db.in_thread(self.add_embeddings, texts, embeddings, metadatas, ids)
        texts = list(texts)
        if not texts:
            return []
        final_ids, steps = self._add_steps(texts, embeddings, metadatas, ids)
        await self._db.arun(*steps)
        return final_ids

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        if not texts:
            return []
        vectors = await self._embeddings.aembed_documents(texts)
        return await self.aadd_embeddings(texts, vectors, metadatas, ids)

    async def asimilarity_search_with_score_by_vector(
        self, embedding: list[float], k: int | None = None, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        if not self._db.is_async:
            return await self._db.in_thread(
                self.similarity_search_with_score_by_vector, embedding, k, filter
            )
        return self._scored(await self._db.arun(self._search_step(embedding, k or self.k, filter)))

    async def asimilarity_search_with_score(
        self, query: str, k: int | None = None, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        vector = await self._embeddings.aembed_query(query)
        config = self._hybrid_config(kwargs)
        if config is None:
            return await self.asimilarity_search_with_score_by_vector(vector, k, filter)
        step = self._hybrid_step(query, vector, k or self.k, filter, config)
        if self._db.is_async:
            rows = await self._db.arun(step)
        else:
            rows = await self._db.in_thread(self._db.run, step)
        return self._fused(rows, k or self.k, config)

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int | None = None, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        pairs = await self.asimilarity_search_with_score_by_vector(embedding, k, filter)
        return [d for d, _ in pairs]

    async def asimilarity_search(
        self, query: str, k: int | None = None, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, filter, **kwargs)]

    async def amax_marginal_relevance_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int | None = None,
        fetch_k: int | None = None,
        lambda_mult: float | None = None,
        filter: dict | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        if not self._db.is_async:
            return await self._db.in_thread(
                self.max_marginal_relevance_search_with_score_by_vector, embedding, k, fetch_k, lambda_mult, filter
            )
        rows = await self._db.arun(self._search_step(embedding, fetch_k or self.fetch_k, filter, True))
        return self._mmr(embedding, rows, k or self.k, self.lambda_mult if lambda_mult is None else lambda_mult)

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        pairs = await self.amax_marginal_relevance_search_with_score_by_vector(
            embedding, k, fetch_k, lambda_mult, filter
        )
        return [d for d, _ in pairs]

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        vector = await self._embeddings.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, filter)

    async def aget_by_ids(self, ids: Sequence[str]) -> list[Document]:
        if not self._db.is_async:
            return await self._db.in_thread(self.get_by_ids, ids)
        if not ids:
            return []
        rows = await self._db.arun((_LIST, (self.namespace, len(ids), self._filter(None, ids), False)))
        return self._ordered(rows, ids)

    async def aget(
        self,
        ids: Sequence[str] | None = None,
        where: dict | None = None,
        limit: int | None = None,
        offset: int | None = None,
        where_document: dict | None = None,
        include: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """:meth:`get`, async."""
        if not self._db.is_async:
            return await self._db.in_thread(self.get, ids, where, limit, offset, where_document, include)
        include = include if include is not None else ("metadatas", "documents")
        rows = await self._db.arun(self._list_step(ids, where, where_document, limit, offset, include))
        return self._listed(rows, offset, include)

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if not self._db.is_async:
            return await self._db.in_thread(self.delete, ids)
        if ids is None:
            raise ValueError("delete needs ids (ctx.forget(namespace) empties a whole namespace)")
        if ids:
            ids = [str(i) for i in ids]
            await self._db.arun((_LOCK, (self.namespace, ids)), (_FORGET, (self.namespace, self._filter(None, ids))))
        return True
