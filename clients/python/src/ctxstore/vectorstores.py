"""LangChain's ``VectorStore`` over ctxstore long-term memories (``ctx.memories``).

Each document is a memory in the store's namespace; its LangChain id is kept in the memory's
metadata (``_lc_id``), so ids can be any string. Search is ``ctx.recall`` ranked by embedding
similarity alone, with metadata filters in ctxstore's filter language
(``{"topic": {"$in": ["a", "b"]}, "year": {"$gte": 2020}}``); filter keys always name metadata
fields (``id`` is the document's metadata ``id``, not the memory id).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from psycopg.types.json import Jsonb

from ctxstore._db import Connection, Database
from ctxstore._filters import document_filter
from ctxstore._recall import SIMILARITY_ONLY, vector_literal

ID_KEY = "_lc_id"

# one writer per (namespace, id) at a time: replacing a document is forget + remember
_LOCK = """SELECT count(pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
               'ctxstore.lc_doc' || chr(31) || array_to_string(%s::text[], chr(31)) || chr(31) || i, 0)))
             FROM (SELECT DISTINCT i FROM unnest(%s::text[]) AS i ORDER BY i) AS ids"""
_FORGET = "SELECT ctx.forget(%s::text[], %s) AS n"
_REMEMBER = """SELECT ctx.remember(%s::text[], d.content, d.embedding::real[], d.metadata)
                 FROM unnest(%s::text[], %s::text[], %s::jsonb[]) AS d(content, embedding, metadata)"""
_SEARCH = """SELECT content, metadata, similarity
               FROM ctx.recall(%s::text[], %s::real[], k => %s, filter => %s, weights => %s,
                               include_descendants => false)"""
_BY_IDS = """SELECT content, metadata FROM ctx.recall(%s::text[], k => %s, filter => %s,
                                                      include_descendants => false)"""



def _ids_filter(namespace: list[str], ids: Sequence[str]) -> Jsonb:
    # (ctx.forget also reaches sub-namespaces: the namespace condition keeps it to this store's)
    return Jsonb({"namespace": namespace, "$." + ID_KEY: {"$in": list(ids)}})


def _document(row: dict[str, Any]) -> Document:
    metadata = dict(row["metadata"])
    doc_id = metadata.pop(ID_KEY, None)
    return Document(id=doc_id, page_content=row["content"], metadata=metadata)


class CtxstoreVectorStore(VectorStore):
    """Documents as ctxstore memories in ``namespace`` (default ``["langchain", "documents"]``).

    Scores are cosine similarities (higher is closer). Adding a document with an id that
    exists replaces it. Content and metadata go through the namespace's write processors
    (secrets are redacted by default; see ``ctx.configure_namespace_processors``).
    """

    def __init__(
        self,
        conn: Connection,
        embeddings: Embeddings,
        *,
        namespace: Sequence[str] = ("langchain", "documents"),
    ) -> None:
        self._db = Database(conn)
        self._embeddings = embeddings
        self.namespace = list(namespace)
        if not self.namespace:
            raise ValueError("namespace must have at least one label")

    @property
    def embeddings(self) -> Embeddings:
        return self._embeddings

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
        store = cls(conn, embedding, namespace=namespace)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return lambda similarity: similarity

    # -- statements ----------------------------------------------------------------------

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
        metadata = [
            Jsonb({**(metadatas[n] if metadatas else {}), ID_KEY: final_ids[n]})
            for n in range(len(texts))
        ]
        steps = [
            (_LOCK, (self.namespace, final_ids)),
            (_FORGET, (self.namespace, _ids_filter(self.namespace, final_ids))),
            (_REMEMBER, (self.namespace, texts, [vector_literal(v) for v in vectors], metadata)),
        ]
        return final_ids, steps

    def _search_step(self, vector: list[float], k: int, filter: dict | None) -> tuple[str, Any]:
        return (
            _SEARCH,
            (self.namespace, vector_literal(vector), k, Jsonb(document_filter(filter)), SIMILARITY_ONLY),
        )

    def _by_ids_step(self, ids: Sequence[str]) -> tuple[str, Any]:
        return (_BY_IDS, (self.namespace, len(ids), _ids_filter(self.namespace, ids)))

    @staticmethod
    def _ordered(rows: list[dict[str, Any]], ids: Sequence[str]) -> list[Document]:
        by_id = {d.id: d for d in map(_document, rows)}
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

    # -- sync ----------------------------------------------------------------------------

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
        vectors = self._embeddings.embed_documents(texts)
        final_ids, steps = self._add_steps(texts, vectors, metadatas, ids)
        self._db.run(*steps)
        return final_ids

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        rows = self._db.run(self._search_step(embedding, k, filter))
        return [(_document(r), float(r["similarity"])) for r in rows]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        vector = self._embeddings.embed_query(query)
        return self.similarity_search_with_score_by_vector(vector, k, filter)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter)]

    def similarity_search(
        self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter)]

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        if not ids:
            return []
        return self._ordered(self._db.run(self._by_ids_step(ids)), ids)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if ids is None:
            raise ValueError("delete needs ids (ctx.forget(namespace) empties a whole namespace)")
        if ids:
            self._db.run((_LOCK, (self.namespace, ids)), (_FORGET, (self.namespace, _ids_filter(self.namespace, ids))))
        return True

    # -- async ---------------------------------------------------------------------------

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        if not self._db.is_async:
            return await self._db.in_thread(self.add_texts, texts, metadatas, ids=ids)
        texts = list(texts)
        if not texts:
            return []
        vectors = await self._embeddings.aembed_documents(texts)
        final_ids, steps = self._add_steps(texts, vectors, metadatas, ids)
        await self._db.arun(*steps)
        return final_ids

    async def asimilarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        if not self._db.is_async:
            return await self._db.in_thread(
                self.similarity_search_with_score_by_vector, embedding, k, filter
            )
        rows = await self._db.arun(self._search_step(embedding, k, filter))
        return [(_document(r), float(r["similarity"])) for r in rows]

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        vector = await self._embeddings.aembed_query(query)
        return await self.asimilarity_search_with_score_by_vector(vector, k, filter)

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        pairs = await self.asimilarity_search_with_score_by_vector(embedding, k, filter)
        return [d for d, _ in pairs]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, filter)]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        if not self._db.is_async:
            return await self._db.in_thread(self.get_by_ids, ids)
        if not ids:
            return []
        return self._ordered(await self._db.arun(self._by_ids_step(ids)), ids)

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if not self._db.is_async:
            return await self._db.in_thread(self.delete, ids)
        if ids is None:
            raise ValueError("delete needs ids (ctx.forget(namespace) empties a whole namespace)")
        if ids:
            await self._db.arun((_LOCK, (self.namespace, ids)), (_FORGET, (self.namespace, _ids_filter(self.namespace, ids))))
        return True
