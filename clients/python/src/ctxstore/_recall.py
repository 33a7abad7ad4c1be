"""Arguments of ctx.remember / ctx.recall shared by the adapters that store memories."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.types.json import Jsonb

# rank by embedding similarity alone (recall's other score terms weighted 0)
SIMILARITY_ONLY = Jsonb({"similarity": 1, "text": 0, "recency": 0, "importance": 0})


def vector_literal(vector: Sequence[float]) -> str:
    """A real[] literal: embeddings travel as text and are cast by the statement."""
    return "{" + ",".join(repr(float(x)) for x in vector) + "}"
