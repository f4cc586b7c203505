"""What the TuZi adapters share: the gateway's OpenAI-style errors and the health check."""

from __future__ import annotations

import dataclasses
from typing import Any

from aigen.providers.base import BaseAdapter, HttpReply
from aigen.providers.health import probe
from aigen.providers.types import AdapterError, ErrorCode, HealthResult

QUOTA_WORDS = ("quota", "insufficient", "余额")


class TuziAdapter(BaseAdapter):
    def gateway_error(self, reply: HttpReply, body: Any = None) -> AdapterError:
        """The gateway's own refusal, `{"error": {message, type, code}}` (auth, quota, limits)."""
        error = body.get("error") if isinstance(body, dict) else None
        message = f"HTTP {reply.status}"
        code: str | None = None
        if isinstance(error, dict):
            message = str(error.get("message") or message)
            code = str(error.get("code") or error.get("type") or "") or None
        elif isinstance(body, dict) and body.get("message"):
            message = str(body["message"])
        err = dataclasses.replace(self.http_error(reply, f"tuzi: {message}"), provider_code=code)
        if any(w in f"{code} {message}".lower() for w in QUOTA_WORDS):
            return dataclasses.replace(err, code=ErrorCode.INSUFFICIENT_CREDITS, retryable=False)
        return err

    async def health(self) -> HealthResult:
        """`GET /v1/models` on the OpenAI-compatible side: authenticated, free, no task created."""
        checked = await probe(
            self, "/v1/models", refusal=lambda reply: self.gateway_error(reply, json_or_none(reply)).message
        )
        if isinstance(checked, HealthResult):
            return checked
        body = self.json_of(checked.reply)
        count = len(body["data"]) if isinstance(body, dict) and isinstance(body.get("data"), list) else 0
        return checked.healthy(f"{count} models visible")


def json_or_none(reply: HttpReply) -> Any:
    try:
        return reply.json()
    except (ValueError, UnicodeDecodeError):
        return None
