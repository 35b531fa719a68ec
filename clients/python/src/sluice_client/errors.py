"""Errors: the API's RFC 9457 problem documents, as one exception type."""

from __future__ import annotations

from typing import Any, Dict, Optional

import httpx


class SluiceError(Exception):
    """The API refused a request; ``status``, ``title``, ``detail`` and
    ``field`` (the field at fault, when one is) come from its problem
    document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        field: Optional[str] = None,
        kind: Optional[str] = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field
        self.kind = kind

    @classmethod
    def from_response(cls, response: httpx.Response) -> "SluiceError":
        try:
            problem: Dict[str, Any] = response.json()
        except ValueError:
            problem = {}
        return cls(
            status=response.status_code,
            title=str(problem.get("title", response.reason_phrase)),
            detail=str(problem.get("detail", response.text)),
            field=problem.get("field"),
            kind=problem.get("type"),
        )


def check(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise SluiceError.from_response(response)
    return response
