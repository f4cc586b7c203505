"""Verifying the gateway's webhooks (Standard Webhooks: standardwebhooks.com).

    event = verify_webhook(secret, request.headers, raw_body)

`secret` is the key's `whsec_…` webhook secret, shown once when the key was made. Pass the raw
body bytes exactly as received: re-serialised JSON would not verify. A delivery older (or newer)
than `tolerance_s` is refused even with a valid signature, so a captured request cannot be
replayed later. The same delivery may arrive more than once; `event.id` stays the same, so
deduplicate on it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class WebhookVerificationError(Exception):
    """The request is not a genuine, fresh webhook from the gateway."""


@dataclass(frozen=True)
class WebhookEvent:
    id: str  # the same across retries of one delivery
    type: str  # "task.progress" | "task.succeeded" | "task.failed" | "task.cancelled"
    timestamp: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def task_id(self) -> str:
        value = self.data.get("taskId", "")
        return value if isinstance(value, str) else ""

    @property
    def status(self) -> str:
        value = self.data.get("status", "")
        return value if isinstance(value, str) else ""


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the webhook secret is not a whsec_… secret") from None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for a body (for tests of receivers)."""
    digest = hmac.new(_key(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> WebhookEvent:
    """The delivered event, once its signature and timestamp check out."""
    raw = body.encode() if isinstance(body, str) else body
    found = _lower(headers)
    message_id = found.get("webhook-id", "")
    stamp = found.get("webhook-timestamp", "")
    signatures = found.get("webhook-signature", "")
    if not (message_id and stamp and signatures):
        raise WebhookVerificationError("webhook-id, webhook-timestamp and webhook-signature are all required")
    try:
        sent_at = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a unix time") from None
    if abs((time.time() if now is None else now) - sent_at) > tolerance_s:
        raise WebhookVerificationError(
            "the webhook timestamp is too far from now (a replay, or a wrong clock)"
        )
    expected = sign(secret, message_id, sent_at, raw).partition(",")[2]
    given = [entry.partition(",")[2] for entry in signatures.split() if entry.startswith("v1,")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in given):
        raise WebhookVerificationError("the webhook signature does not match")
    try:
        document = json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("the webhook body is not JSON") from None
    if not isinstance(document, dict):
        raise WebhookVerificationError("the webhook body is not a JSON object")
    data = document.get("data")
    return WebhookEvent(
        id=message_id,
        type=str(document.get("type", "")),
        timestamp=str(document.get("timestamp", "")),
        data=dict(data) if isinstance(data, dict) else {},
    )
