"""What the peers' helpers do to their own table ``store`` (backdate an expiry, check that a
row is physically there, read its expiry, move its updated_at), done to ctxstore's ``ctx.state``
as the cluster owner: the same reach into the backend's storage, for the same assertions."""

from __future__ import annotations

import os
from typing import Any

import psycopg

_ROW = "tenant = %s AND namespace = %s::text[] AND key = %s"


def _admin() -> psycopg.Connection:
    return psycopg.connect(os.environ["CTXSTORE_ADMIN_DSN"], autocommit=True)


def tenant_of(store: Any) -> str:
    return store._tenant  # set by the swapped fixtures


def _where(store: Any, ns: tuple[str, ...], key: str) -> tuple[str, str, list[str], str]:
    return _ROW, tenant_of(store), [store.root, *ns], key


def expire_now(store: Any, ns: tuple[str, ...], key: str) -> None:
    cond, *params = _where(store, ns, key)
    with _admin() as conn:
        conn.execute(f"UPDATE ctx.state SET expires_at = now() - interval '1 minute' WHERE {cond}", params)


def row_exists(store: Any, ns: tuple[str, ...], key: str) -> bool:
    cond, *params = _where(store, ns, key)
    with _admin() as conn:
        return conn.execute(f"SELECT count(*) FROM ctx.state WHERE {cond}", params).fetchone()[0] == 1


def stored_expires_at(store: Any, ns: tuple[str, ...], key: str) -> Any:
    cond, *params = _where(store, ns, key)
    with _admin() as conn:
        return conn.execute(f"SELECT expires_at FROM ctx.state WHERE {cond}", params).fetchone()[0]


def set_updated_at(store: Any, ns: tuple[str, ...], key: str, seconds_ago: int) -> None:
    cond, *params = _where(store, ns, key)
    with _admin() as conn:
        conn.execute(
            f"UPDATE ctx.state SET updated_at = now() - %s * interval '1 second' WHERE {cond}",
            [seconds_ago, *params],
        )
