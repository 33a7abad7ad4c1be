"""Arguments of ctx.remember / ctx.recall shared by the adapters that store memories."""

from __future__ import annotations

import math
import struct
import weakref
from collections.abc import Sequence
from typing import Any

from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.json import Jsonb

# rank by embedding similarity alone (recall's other score terms weighted 0)
SIMILARITY_ONLY = Jsonb({"similarity": 1, "text": 0, "recency": 0, "importance": 0})

# ctx.embedding's binary form (pgvector's): dimensions and a reserved word, then big-endian
# float4s; the type holds at most 16,000 dimensions (as pgvector's vector)
_MAX_DIMS = 16000
_MAX_FLOAT4 = 3.4028234663852886e38


# rows of one VALUES list: three parameters each stays well under the protocol's 65,535
VALUES_ROWS = 5000


def values_steps(
    sql: str, head: Sequence[Any], rows: Sequence[Sequence[Any]], casts: Sequence[str]
) -> list[tuple[str, list[Any]]]:
    """``sql`` with ``{values}`` replaced by a VALUES list of ``rows`` (each value cast, so that
    a binary :class:`Embedding` needs no type OID), ``head`` its leading parameters; one statement
    per :data:`VALUES_ROWS` rows. A batch's embeddings travel binary this way: a 384-d vector is
    1.5 KB instead of ~7 KB of text to format here and parse on the server."""
    row = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    steps = []
    for start in range(0, len(rows), VALUES_ROWS):
        chunk = rows[start:start + VALUES_ROWS]
        params = [*head, *(value for r in chunk for value in r)]
        steps.append((sql.format(values=", ".join([row] * len(chunk))), params))
    return steps


class Embedding:
    """One query vector, sent in ctx.embedding's binary form: no text to format on the client
    or to parse on the server (a 384-d vector is ~7 KB as text, 1.5 KB binary). The statement
    casts its placeholder to ``ctx.embedding``, which tells the server the parameter's type."""

    __slots__ = ("values",)

    def __init__(self, vector: Sequence[float]) -> None:
        values = [float(x) for x in vector]
        if len(values) > _MAX_DIMS:
            raise ValueError(f"an embedding has at most {_MAX_DIMS} dimensions, not {len(values)}")
        if not all(math.isfinite(x) and abs(x) <= _MAX_FLOAT4 for x in values):
            raise ValueError("an embedding holds finite float4 numbers only (no NaN, infinity or |x| > 3.4e38)")
        self.values = values


class _EmbeddingDumper(Dumper):
    format = Format.BINARY  # oid 0: the statement's cast gives the type

    def dump(self, obj: Embedding) -> bytes:
        n = len(obj.values)
        return struct.pack(f">HH{n}f", n, 0, *obj.values)


_registered: weakref.WeakSet[Any] = weakref.WeakSet()


def register_embedding(conn: Any) -> None:
    """Lets ``conn`` send :class:`Embedding` parameters (once per connection)."""
    if conn not in _registered:
        conn.adapters.register_dumper(Embedding, _EmbeddingDumper)
        _registered.add(conn)
