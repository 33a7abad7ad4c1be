"""A LangChain vector store on ctxstore memories: similarity search with metadata filters
(scores are cosine distances, as langchain-postgres reports them: 0 is the same direction).

    CTXSTORE_DSN="dbname=app user=agent_app" python examples/langchain_vectorstore.py
"""

import os
import uuid

import psycopg
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from ctxstore.vectorstores import CtxstoreVectorStore

embeddings = DeterministicFakeEmbedding(size=64)  # use a real model in an application
with psycopg.connect(os.environ["CTXSTORE_DSN"], autocommit=True) as conn:
    store = CtxstoreVectorStore(conn, embeddings, namespace=["examples", str(uuid.uuid4())])
    ids = store.add_documents(
        [
            Document("Keys expire after 90 days.", metadata={"topic": "keys", "year": 2025}),
            Document("Invoices are sent on the 1st.", metadata={"topic": "billing", "year": 2024}),
            Document("Rotate keys under Settings.", metadata={"topic": "keys", "year": 2024}),
        ],
        ids=["kb-1", "kb-2", "kb-3"],
    )
    for doc, score in store.similarity_search_with_score(
        "Keys expire after 90 days.", k=2, filter={"topic": "keys", "year": {"$gte": 2024}}
    ):
        print(f"{score:.3f} {doc.id} {doc.page_content}")
    store.delete(["kb-2"])
    print("left:", [d.id for d in store.get_by_ids(ids)])
