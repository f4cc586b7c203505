"""OpenAPI helpers: the problem responses each route can give, declared once."""

from __future__ import annotations

from typing import Any

from services.gateway.schemas import ProblemOut

_DESCRIPTIONS = {
    400: "Malformed request (e.g. a body that is not JSON).",
    401: "Missing, unknown, expired or revoked credentials.",
    402: "The request would exceed the API key's budget.",
    403: "The credentials may not do this (e.g. a model the key is not allowed).",
    404: "Not found (or owned by someone else).",
    409: "The resource's state does not allow this (e.g. cancelling a finished task).",
    413: "The request body is too large.",
    422: "Invalid input; `errors` names each field and why.",
    429: "Rate or concurrency limit reached; see Retry-After.",
    503: "A service behind the gateway did not answer; see Retry-After.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these statuses (plus 503, which any route can answer)."""
    return {
        status: {"model": ProblemOut, "description": _DESCRIPTIONS.get(status, "Error.")}
        for status in sorted({*statuses, 503})
    }
