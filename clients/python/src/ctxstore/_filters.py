"""Framework filters → ctxstore filters."""

from __future__ import annotations

from typing import Any

LOGICAL = ("$and", "$or")


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
