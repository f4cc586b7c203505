"""Errors as `application/problem+json` (RFC 9457) with a stable machine-readable `code`.

Handlers raise `Problem`, or let an `aigen.errors.DomainError` from a service call through: both
become the same document. Anything else is a bug: logged with its traceback, answered as a 500
that says nothing about the inside.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aigen import errors
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

log = logging.getLogger("aigen.gateway")

MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass
class Problem(Exception):
    status: int
    code: str
    detail: str
    errors: Sequence[FieldError] = ()
    retry_after_s: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"

    def document(self, instance: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": _title(self.status),
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        if self.retry_after_s is not None:
            body["retryAfter"] = self.retry_after_s
        return body

    def response(self, instance: str = "") -> JSONResponse:
        headers = dict(self.headers)
        if self.retry_after_s is not None:
            headers["Retry-After"] = str(self.retry_after_s)
        return JSONResponse(
            self.document(instance), status_code=self.status, headers=headers, media_type=MEDIA_TYPE
        )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def bad_field(name: str, message: str, status: int = 422, code: str = "INVALID_ARGUMENT") -> Problem:
    return Problem(status, code, f"{name}: {message}", [FieldError(name, message)])


def _whole_seconds(value: float | None, default: int) -> int:
    if value is None:
        return default
    return max(1, int(value + 0.999))


# Fields of the gRPC requests as the REST API names them.
REST_FIELDS = {"model": "model_slug", "request_id": "Idempotency-Key", "deadline": "Cancel-After"}


def rest_field(name: str, renames: Mapping[str, str] = REST_FIELDS) -> str:
    head, sep, rest = name.partition(".")
    return renames.get(head, head) + sep + rest if name else name


def from_domain(exc: errors.DomainError) -> Problem:
    """The problem a service's domain error means for an HTTP client."""
    violations = getattr(exc, "violations", ())
    fields = [FieldError(rest_field(v.field), v.description) for v in violations]
    if isinstance(exc, errors.InvalidArgument):
        return Problem(422, _code(exc, "INVALID_ARGUMENT"), exc.message, fields)
    if isinstance(exc, errors.NotFound):
        resource = (exc.resource_type or "resource").upper().replace(" ", "_")
        return Problem(404, f"{resource}_NOT_FOUND", exc.message)
    if isinstance(exc, errors.FailedPrecondition):
        if exc.reason == "IDEMPOTENCY_KEY_REUSED":
            return Problem(
                422, exc.reason, "this Idempotency-Key was already used with a different request body", fields
            )
        return Problem(409, _code(exc, "FAILED_PRECONDITION"), exc.message, fields)
    if isinstance(exc, errors.AlreadyExists):
        return Problem(409, "ALREADY_EXISTS", exc.message)
    if isinstance(exc, errors.Conflict):
        return Problem(409, "CONFLICT", f"{exc.message}; retrying the request is safe")
    if isinstance(exc, errors.Unauthenticated):
        return Problem(401, _code(exc, "UNAUTHENTICATED"), exc.message)
    if isinstance(exc, errors.PermissionDenied):
        return Problem(403, _code(exc, "PERMISSION_DENIED"), exc.message)
    if isinstance(exc, errors.ResourceExhausted):
        return Problem(
            429,
            _code(exc, "RESOURCE_EXHAUSTED"),
            exc.message,
            retry_after_s=_whole_seconds(exc.retry_after, 1),
        )
    if isinstance(exc, errors.Unavailable):
        return Problem(
            503, "SERVICE_UNAVAILABLE", exc.message, retry_after_s=_whole_seconds(exc.retry_after, 2)
        )
    return Problem(500, "INTERNAL", "the request failed inside the gateway")


def _code(exc: errors.DomainError, generic: str) -> str:
    reason = exc.reason or generic
    return generic if reason in ("ERROR", "") else reason


def validation_problem(exc: RequestValidationError) -> Problem:
    """FastAPI's request validation, worded for people, each error naming its field."""
    found: list[FieldError] = []
    malformed = False
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        where = location[0] if location else "body"
        name = ".".join(location[1:]) or where
        if error.get("type") == "json_invalid":
            malformed = True
            found.append(FieldError("body", "is not valid JSON"))
            continue
        if where == "header":
            name = name.replace("_", "-").title()
        found.append(FieldError(name, _message(error)))
    if malformed:
        return Problem(400, "MALFORMED_JSON", "the request body is not valid JSON", found)
    summary = "; ".join(f"{e.field}: {e.message}" for e in found[:5])
    return Problem(422, "INVALID_ARGUMENT", summary or "the request is invalid", found)


def _message(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    message = str(error.get("msg", "is invalid"))
    return message[0].lower() + message[1:] if message else "is invalid"


async def problem_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return exc.response(request.url.path)


async def domain_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    problem = from_domain(exc)
    if problem.status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    return problem.response(request.url.path)


async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(exc).response(request.url.path)


async def http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        413: "PAYLOAD_TOO_LARGE",
        415: "UNSUPPORTED_MEDIA_TYPE",
    }
    problem = Problem(exc.status_code, codes.get(exc.status_code, f"HTTP_{exc.status_code}"), str(exc.detail))
    problem.headers = dict(exc.headers or {})
    return problem.response(request.url.path)


async def unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return Problem(500, "INTERNAL", "the request failed inside the gateway; it has been logged").response(
        request.url.path
    )
