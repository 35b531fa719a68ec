"""The HTTP API, sync (``Client``) and async (``AsyncClient``).

Each operation is described once (``_Op``: method, path, query, body, how to
read the answer); the two clients only send it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional, Sequence
from urllib.parse import quote

import httpx

from .errors import check
from .types import Enqueued, Item, ItemPage, NewItem


@dataclass
class _Op:
    method: str
    path: str
    read: Callable[[httpx.Response], Any]
    params: Dict[str, Any] = field(default_factory=dict)
    json: Any = None
    missing_is_none: bool = False


def _unit(task_type: str, work_unit_key: str) -> str:
    return f"/v1/units/{quote(task_type, safe='')}/{quote(work_unit_key, safe='')}"


def _selector(id: Optional[int], task_type: Optional[str], work_unit_key: Optional[str]) -> Dict[str, Any]:
    body: Dict[str, Any] = {}
    if id is not None:
        body["id"] = id
    if task_type is not None:
        body["task_type"] = task_type
    if work_unit_key is not None:
        body["work_unit_key"] = work_unit_key
    return body


class _Ops:
    """Every operation of the API, as data."""

    @staticmethod
    def enqueue(item: NewItem) -> _Op:
        return _Op("POST", "/v1/items", lambda r: r.json(), json=item)

    @staticmethod
    def enqueue_many(items: Sequence[NewItem]) -> _Op:
        return _Op("POST", "/v1/items/batch", lambda r: r.json()["items"], json={"items": list(items)})

    @staticmethod
    def item(id: int) -> _Op:
        return _Op("GET", f"/v1/items/{id}", lambda r: r.json(), missing_is_none=True)

    @staticmethod
    def unit_items(task_type: str, work_unit_key: str, state: Optional[str], limit: int, cursor: Optional[str]) -> _Op:
        params: Dict[str, Any] = {"limit": limit}
        if state is not None:
            params["state"] = state
        if cursor is not None:
            params["cursor"] = cursor
        return _Op("GET", _unit(task_type, work_unit_key) + "/items", lambda r: r.json(), params=params)

    @staticmethod
    def cancel_unit(task_type: str, work_unit_key: str) -> _Op:
        return _Op("POST", _unit(task_type, work_unit_key) + "/cancel", lambda r: r.json()["cancelled"], json={})

    @staticmethod
    def status() -> _Op:
        return _Op("GET", "/v1/status", lambda r: r.json())

    @staticmethod
    def plugins() -> _Op:
        return _Op("GET", "/v1/plugins", lambda r: r.json())

    @staticmethod
    def dead(task_type: Optional[str], work_unit_key: Optional[str], limit: int, cursor: Optional[str]) -> _Op:
        params: Dict[str, Any] = {"limit": limit}
        for name, value in (("task_type", task_type), ("work_unit_key", work_unit_key), ("cursor", cursor)):
            if value is not None:
                params[name] = value
        return _Op("GET", "/v1/dead", lambda r: r.json(), params=params)

    @staticmethod
    def dead_item(id: int) -> _Op:
        return _Op("GET", f"/v1/dead/{id}", lambda r: r.json(), missing_is_none=True)

    @staticmethod
    def retry_dead(id: Optional[int], task_type: Optional[str], work_unit_key: Optional[str]) -> _Op:
        return _Op("POST", "/v1/dead/retry", lambda r: r.json()["count"], json=_selector(id, task_type, work_unit_key))

    @staticmethod
    def purge_dead(id: Optional[int], task_type: Optional[str], work_unit_key: Optional[str]) -> _Op:
        return _Op("POST", "/v1/dead/purge", lambda r: r.json()["count"], json=_selector(id, task_type, work_unit_key))


def _headers(token: Optional[str]) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _answer(op: _Op, response: httpx.Response) -> Any:
    if op.missing_is_none and response.status_code == 404:
        return None
    return op.read(check(response))


class Client:
    """The HTTP API of a Sluice host, e.g. ``Client("http://127.0.0.1:9464", token=...)``."""

    def __init__(self, base_url: str, token: Optional[str] = None, *, timeout: float = 10.0,
                 http: Optional[httpx.Client] = None) -> None:
        self._http = http or httpx.Client(base_url=base_url, headers=_headers(token), timeout=timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, op: _Op) -> Any:
        response = self._http.request(op.method, op.path, params=op.params or None, json=op.json)
        return _answer(op, response)

    def enqueue(self, item: NewItem) -> Enqueued:
        """Enqueues one item; returns its id (or a pending duplicate's)."""
        return self._send(_Ops.enqueue(item))

    def enqueue_many(self, items: Sequence[NewItem]) -> List[Enqueued]:
        """Enqueues up to 10,000 items in one transaction: all or none."""
        return self._send(_Ops.enqueue_many(items))

    def item(self, id: int) -> Optional[Item]:
        """An item in any state, with its output once done; None if there is none."""
        return self._send(_Ops.item(id))

    def unit_items(self, task_type: str, work_unit_key: str, *, state: Optional[str] = None,
                   page_size: int = 100) -> Iterator[Item]:
        """A unit's pending and dead items, in order, every page."""
        cursor: Optional[str] = None
        while True:
            page: ItemPage = self._send(_Ops.unit_items(task_type, work_unit_key, state, page_size, cursor))
            yield from page["items"]
            cursor = page.get("next_cursor")
            if cursor is None:
                return

    def cancel_unit(self, task_type: str, work_unit_key: str) -> int:
        """Deletes the unit's pending items (not those running); returns how many."""
        return self._send(_Ops.cancel_unit(task_type, work_unit_key))

    def status(self) -> Dict[str, Any]:
        return self._send(_Ops.status())

    def plugins(self) -> List[Dict[str, Any]]:
        return self._send(_Ops.plugins())

    def dead(self, task_type: Optional[str] = None, work_unit_key: Optional[str] = None, *,
             page_size: int = 100) -> Iterator[Item]:
        """Dead letters, oldest first, every page."""
        cursor: Optional[str] = None
        while True:
            page: ItemPage = self._send(_Ops.dead(task_type, work_unit_key, page_size, cursor))
            yield from page["items"]
            cursor = page.get("next_cursor")
            if cursor is None:
                return

    def dead_item(self, id: int) -> Optional[Item]:
        return self._send(_Ops.dead_item(id))

    def retry_dead(self, id: Optional[int] = None, *, task_type: Optional[str] = None,
                   work_unit_key: Optional[str] = None) -> int:
        """Puts dead letters back to pending (needs an admin token)."""
        return self._send(_Ops.retry_dead(id, task_type, work_unit_key))

    def purge_dead(self, id: Optional[int] = None, *, task_type: Optional[str] = None,
                   work_unit_key: Optional[str] = None) -> int:
        """Deletes dead letters (needs an admin token)."""
        return self._send(_Ops.purge_dead(id, task_type, work_unit_key))


class AsyncClient:
    """``Client``, for asyncio."""

    def __init__(self, base_url: str, token: Optional[str] = None, *, timeout: float = 10.0,
                 http: Optional[httpx.AsyncClient] = None) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url, headers=_headers(token), timeout=timeout)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, op: _Op) -> Any:
        response = await self._http.request(op.method, op.path, params=op.params or None, json=op.json)
        return _answer(op, response)

    async def enqueue(self, item: NewItem) -> Enqueued:
        return await self._send(_Ops.enqueue(item))

    async def enqueue_many(self, items: Sequence[NewItem]) -> List[Enqueued]:
        return await self._send(_Ops.enqueue_many(items))

    async def item(self, id: int) -> Optional[Item]:
        return await self._send(_Ops.item(id))

    async def unit_items(self, task_type: str, work_unit_key: str, *, state: Optional[str] = None,
                         page_size: int = 100) -> AsyncIterator[Item]:
        cursor: Optional[str] = None
        while True:
            page: ItemPage = await self._send(_Ops.unit_items(task_type, work_unit_key, state, page_size, cursor))
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if cursor is None:
                return

    async def cancel_unit(self, task_type: str, work_unit_key: str) -> int:
        return await self._send(_Ops.cancel_unit(task_type, work_unit_key))

    async def status(self) -> Dict[str, Any]:
        return await self._send(_Ops.status())

    async def plugins(self) -> List[Dict[str, Any]]:
        return await self._send(_Ops.plugins())

    async def dead(self, task_type: Optional[str] = None, work_unit_key: Optional[str] = None, *,
                   page_size: int = 100) -> AsyncIterator[Item]:
        cursor: Optional[str] = None
        while True:
            page: ItemPage = await self._send(_Ops.dead(task_type, work_unit_key, page_size, cursor))
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if cursor is None:
                return

    async def dead_item(self, id: int) -> Optional[Item]:
        return await self._send(_Ops.dead_item(id))

    async def retry_dead(self, id: Optional[int] = None, *, task_type: Optional[str] = None,
                         work_unit_key: Optional[str] = None) -> int:
        return await self._send(_Ops.retry_dead(id, task_type, work_unit_key))

    async def purge_dead(self, id: Optional[int] = None, *, task_type: Optional[str] = None,
                         work_unit_key: Optional[str] = None) -> int:
        return await self._send(_Ops.purge_dead(id, task_type, work_unit_key))

