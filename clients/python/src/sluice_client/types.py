"""The shapes the API takes and returns, as typed dictionaries."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, List, Optional, TypedDict, Union

JSON = Any


class _NewItemRequired(TypedDict):
    task_type: str
    work_unit_key: str
    payload: JSON


class NewItem(_NewItemRequired, total=False):
    """An item to enqueue. ``run_after`` (RFC 3339) or ``delay`` ("90s"), not both."""

    tokens: int
    dedupe_key: str
    run_after: str
    delay: str


class Enqueued(TypedDict):
    id: int
    duplicate: bool


class Item(TypedDict):
    id: int
    task_type: str
    work_unit_key: str
    state: str
    payload: JSON
    tokens: int
    dedupe_key: Optional[str]
    attempts: int
    last_error: Optional[str]
    errors: List[Dict[str, Any]]
    created_at_ms: int
    run_after_ms: Optional[int]
    finished_at_ms: Optional[int]
    output: Optional[JSON]


class _ItemPageRequired(TypedDict):
    items: List[Item]


class ItemPage(_ItemPageRequired, total=False):
    next_cursor: str


When = Union[_dt.datetime, _dt.timedelta, None]


def new_item(
    task_type: str,
    work_unit_key: str,
    payload: JSON,
    *,
    tokens: int = 0,
    dedupe_key: Optional[str] = None,
    run_after: Optional[_dt.datetime] = None,
    delay: Optional[_dt.timedelta] = None,
) -> NewItem:
    """An item as the API takes it, with times written the way it reads them."""
    item: NewItem = {"task_type": task_type, "work_unit_key": work_unit_key, "payload": payload}
    if tokens:
        item["tokens"] = tokens
    if dedupe_key is not None:
        item["dedupe_key"] = dedupe_key
    if run_after is not None:
        item["run_after"] = rfc3339(run_after)
    if delay is not None:
        item["delay"] = f"{int(delay.total_seconds() * 1000)}ms"
    return item


def rfc3339(at: _dt.datetime) -> str:
    """``at`` in UTC, as RFC 3339 with a ``Z`` (naive times are taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=_dt.timezone.utc)
    return at.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
