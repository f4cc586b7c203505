"""Errors of the client: one class per kind of problem the gateway answers with.

Every error carries the problem document's stable `code` (e.g. `BUDGET_EXCEEDED`), the HTTP
status, the message, the fields it names and, for 429/503, how long to wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class AigenError(Exception):
    """An error answer from the gateway (or no answer at all: status 0)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "ERROR",
        errors: tuple[FieldError, ...] = (),
        retry_after: float | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.errors = errors
        self.retry_after = retry_after
        self.body = dict(body or {})

    def __str__(self) -> str:
        head = f"{self.code}: {self.message}" if self.code else self.message
        if self.errors and not all(e.field in self.message for e in self.errors):
            head += " (" + "; ".join(f"{e.field}: {e.message}" for e in self.errors) + ")"
        return head


class ConnectionFailed(AigenError):
    """The gateway could not be reached."""


class BadRequest(AigenError):
    """400/422: the request is invalid; `errors` names the fields."""


class AuthenticationFailed(AigenError):
    """401: missing, unknown, expired or revoked credentials."""


class BudgetExceeded(AigenError):
    """402: the key's budget does not cover this request."""


class PermissionDenied(AigenError):
    """403."""


class NotFound(AigenError):
    """404 (also for another owner's task)."""


class Conflict(AigenError):
    """409: the resource's state does not allow it (e.g. cancelling a finished task)."""


class RateLimited(AigenError):
    """429: too many requests or tasks at once; wait `retry_after` seconds."""


class ServiceUnavailable(AigenError):
    """5xx: the gateway or a service behind it failed; retrying later may work."""


class WaitTimedOut(AigenError):
    """`wait_for` gave up before the task finished."""


_BY_STATUS: dict[int, type[AigenError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    402: BudgetExceeded,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: BadRequest,
    422: BadRequest,
    429: RateLimited,
}


def from_response(status: int, body: object, headers: Mapping[str, str]) -> AigenError:
    document: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    found = tuple(
        FieldError(str(e.get("field", "")), str(e.get("message", "")))
        for e in document.get("errors") or ()
        if isinstance(e, Mapping)
    )
    retry_after: float | None = None
    raw_retry = headers.get("retry-after") or document.get("retryAfter")
    if raw_retry is not None:
        try:
            retry_after = float(raw_retry)
        except (TypeError, ValueError):
            retry_after = None
    cls = _BY_STATUS.get(status, ServiceUnavailable if status >= 500 else AigenError)
    return cls(
        str(document.get("detail") or document.get("title") or f"HTTP {status}"),
        status=status,
        code=str(document.get("code") or f"HTTP_{status}"),
        errors=found,
        retry_after=retry_after,
        body=document,
    )
