"""Enqueue inside the caller's own Postgres transaction (psycopg 3).

``enqueue(conn, ...)`` calls Sluice's ``sluice_enqueue`` SQL function on the
caller's connection, so the item commits or rolls back with the caller's own
writes; hosts are woken at the commit. The connection's ``search_path`` must
reach Sluice's schema (or pass ``schema``).
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, List, Optional, Sequence

from .types import Enqueued, NewItem


def _function(name: str, schema: Optional[str]) -> str:
    if schema is None:
        return name
    return '"' + schema.replace('"', '""') + '".' + name


def enqueue(
    conn: Any,
    task_type: str,
    work_unit_key: str,
    payload: Any,
    *,
    tokens: int = 0,
    dedupe_key: Optional[str] = None,
    run_after: Optional[_dt.datetime] = None,
    delay: Optional[_dt.timedelta] = None,
    schema: Optional[str] = None,
) -> int:
    """Enqueues one item in ``conn``'s current transaction; returns its id."""
    row = conn.execute(
        f"SELECT {_function('sluice_enqueue', schema)}("
        "%s, %s, %s::jsonb, %s, %s, %s::timestamptz, %s::interval)",
        (task_type, work_unit_key, json.dumps(payload), tokens, dedupe_key, run_after, delay),
    ).fetchone()
    return int(row[0])


def enqueue_many(conn: Any, items: Sequence[NewItem], *, schema: Optional[str] = None) -> List[Enqueued]:
    """Enqueues ``items`` (as for the HTTP API) in ``conn``'s current transaction."""
    rows = conn.execute(
        f"SELECT id, duplicate FROM {_function('sluice_enqueue_many', schema)}(%s::jsonb)",
        (json.dumps(list(items)),),
    ).fetchall()
    return [{"id": int(id), "duplicate": bool(duplicate)} for id, duplicate in rows]
