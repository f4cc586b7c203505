"""Kie's response envelope `{code, msg|message, data}` and what its codes mean to us.

Kie answers most errors with HTTP 200 and the real status in the body's `code`, so the body is
the authority; the HTTP status only decides when there is no usable body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aigen.providers.types import AdapterError, ErrorCode

OK = 200

# Words Kie and the models behind it use when a prompt or image is refused for its content.
_POLICY = re.compile(
    r"content[ _-]?polic|policy violation|violat\w* .*polic|flagged|nsfw|inappropriate|sensitive"
    r"|moderation|unsafe|prohibited|banned|safety (?:system|filter|check)",
    re.IGNORECASE,
)
# Kie's way of saying a task id does not exist (or is too old to look up).
_NO_RECORD = re.compile(r"recordinfo is null|not found|does not exist|older than", re.IGNORECASE)


def is_policy_refusal(message: str) -> bool:
    return bool(message) and _POLICY.search(message) is not None


def message_of(body: Mapping[str, Any]) -> str:
    """Kie spells it `msg`, some market examples `message`; either may be missing."""
    for key in ("msg", "message"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def code_of(body: Mapping[str, Any]) -> int | None:
    """The envelope's `code` as an int (some responses send it as a string), else None."""
    value = body.get("code")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def classify(
    code: int,
    message: str,
    *,
    http_status: int | None = None,
    retry_after: float | None = None,
    snippet: str | None = None,
) -> AdapterError:
    """A Kie error code (body `code`, else the HTTP status) as one of our error classes."""
    text = f"Kie.ai {code}: {message}" if message else f"Kie.ai error {code}"

    def error(error_code: ErrorCode, retryable: bool, after: float | None = None) -> AdapterError:
        return AdapterError(
            error_code,
            text,
            retryable,
            retry_after=after,
            http_status=http_status,
            provider_code=str(code),
            snippet=snippet,
        )

    if code in (400, 422) and is_policy_refusal(message):
        return error(ErrorCode.CONTENT_POLICY, False)
    if code == 401 or code == 403:
        return error(ErrorCode.AUTH_FAILED, False)
    if code == 402:
        return error(ErrorCode.INSUFFICIENT_CREDITS, False)
    if code == 404 or (code == 422 and _NO_RECORD.search(message)):
        return error(ErrorCode.NOT_FOUND, False)
    if code in (400, 422):
        return error(ErrorCode.INVALID_REQUEST, False)
    if code == 408:
        return error(ErrorCode.TIMEOUT, True)
    if code == 429:
        return error(ErrorCode.RATE_LIMITED, True, retry_after)
    if code == 433:
        # The sub-key's own usage cap (hourly/daily/total, set in Kie's console): waiting seconds
        # does not help, but another provider might.
        return error(ErrorCode.RATE_LIMITED, False)
    if code == 451:
        return error(ErrorCode.INVALID_INPUT_IMAGE, False)
    if code in (455, 500, 502, 503, 504, 550):
        return error(ErrorCode.PROVIDER_UNAVAILABLE, True, retry_after)
    if code == 501:
        return error(ErrorCode.GENERATION_FAILED, False)
    if code == 505:
        return error(ErrorCode.UNSUPPORTED, False)
    if code >= 500:
        return error(ErrorCode.PROVIDER_UNAVAILABLE, True, retry_after)
    return error(ErrorCode.PROVIDER_BAD_RESPONSE, False)


def task_failure(code: str | int | None, message: str) -> AdapterError:
    """A task that Kie ran and that ended badly (status `fail`, successFlag 2/3, failure callback).

    Never retryable as a status check: asking again returns the same failure.
    """
    provider_code = str(code) if code not in (None, "") else None
    text = message or "the task failed at Kie.ai without a reason"
    if is_policy_refusal(text):
        error_code = ErrorCode.CONTENT_POLICY
    elif provider_code == "451" or re.search(r"(fetch|download)\w* .*image", text, re.IGNORECASE):
        error_code = ErrorCode.INVALID_INPUT_IMAGE
    else:
        error_code = ErrorCode.GENERATION_FAILED
    return AdapterError(error_code, text, retryable=False, provider_code=provider_code)
