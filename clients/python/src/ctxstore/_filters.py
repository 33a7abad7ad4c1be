"""Framework filters → ctxstore filters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LOGICAL = ("$and", "$or")
# the field operators of ctxstore's filter language (a superset of langchain-postgres's)
FIELD_OPERATORS = frozenset(
    ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$between",
     "$like", "$ilike", "$exists", "$contains")
)


def document_filter(filter: dict[str, Any] | None, prefix: str = "$.") -> dict[str, Any]:
    """A filter on the stored document: every field name gets ``prefix`` (``"$."`` makes it a
    document path even where ctxstore has a built-in column of that name, e.g. ``id``), inside
    ``$and`` / ``$or`` / ``$not`` too; the conditions themselves are ctxstore's operators."""
    out: dict[str, Any] = {}
    for key, value in (filter or {}).items():
        if key in LOGICAL:
            if not isinstance(value, list):
                raise ValueError(f"{key} takes a list of filters, not {type(value).__name__}")
            out[key] = [document_filter(item, prefix) for item in value]
        elif key == "$not":
            if not isinstance(value, dict):
                raise ValueError(f"$not takes a filter object, not {type(value).__name__}")
            out[key] = document_filter(value, prefix)
        elif key.startswith("$."):  # already a document path
            out[prefix + key[2:]] = value
        elif key.startswith("$"):
            raise ValueError(f"unknown logical operator {key!r} (use $and, $or, $not)")
        else:
            out[prefix + key] = value
    return out


def metadata_filter(filter: Mapping[str, Any] | None, columns: Mapping[str, str]) -> dict[str, Any]:
    """A LangChain vector-store filter as a ctxstore filter on memories, checked first so that
    every malformed filter is a ``ValueError`` (as in langchain-postgres) before any SQL runs.

    Field names are metadata keys, except those in ``columns``, which name what they map to
    (the store's id and content "columns"). ``$not`` takes a filter or a list of filters (none
    of them holding together); a condition is a value (equality) or an object of operators."""
    if filter is None:
        return {}
    if not isinstance(filter, Mapping):
        raise ValueError(f"a filter is an object, not {type(filter).__name__}")
    out: dict[str, Any] = {}
    for key, value in filter.items():
        if key in LOGICAL:
            if not isinstance(value, list) or not value:
                raise ValueError(f"{key} takes a non-empty list of filters, not {value!r}")
            out[key] = [metadata_filter(item, columns) for item in value]
        elif key == "$not":
            if isinstance(value, Mapping):
                out[key] = metadata_filter(value, columns)
            elif isinstance(value, list) and value:
                out[key] = [metadata_filter(item, columns) for item in value]
            else:
                raise ValueError(f"$not takes a filter or a non-empty list of filters, not {value!r}")
        elif key.startswith("$"):
            raise ValueError(f"unknown logical operator {key!r} (use $and, $or, $not)")
        else:
            out[columns.get(key, "$." + key)] = _condition(key, value)
    return out


def _condition(key: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    if not value:
        raise ValueError(f"the condition on {key!r} is empty")
    for op, operand in value.items():
        if op not in FIELD_OPERATORS:
            if op.startswith("$"):
                raise ValueError(f"unknown operator {op!r} on {key!r}")
            raise ValueError(
                f"the condition on {key!r} is an object without operators ({op!r}): "
                "compare with an operator such as {\"$eq\": ...}"
            )
        if op == "$between" and (not isinstance(operand, (list, tuple)) or len(operand) != 2):
            raise ValueError(f"$between on {key!r} takes [low, high], not {operand!r}")
        if op in ("$in", "$nin") and not isinstance(operand, (list, tuple)):
            raise ValueError(f"{op} on {key!r} takes a list, not {operand!r}")
    return {op: list(operand) if isinstance(operand, tuple) else operand for op, operand in value.items()}
