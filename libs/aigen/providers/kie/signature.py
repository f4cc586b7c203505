"""Kie's webhook signature: base64(HMAC-SHA256(key, taskId + "." + timestamp)).

Enabled by generating a webhookHmacKey in Kie's console; the headers are X-Webhook-Timestamp
(unix seconds) and X-Webhook-Signature. The signed message names the task, so a valid signature
cannot be replayed onto another task's callback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "x-webhook-timestamp"
SIGNATURE_HEADER = "x-webhook-signature"


def signature(key: str, task_id: str, timestamp: str) -> str:
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(
    key: str,
    task_id: str,
    headers: Mapping[str, str],
    *,
    max_age_s: float | None = None,
    now: float | None = None,
) -> str | None:
    """None when the callback is authentic, else why it is not."""
    timestamp = headers.get(TIMESTAMP_HEADER, "").strip()
    given = headers.get(SIGNATURE_HEADER, "").strip()
    if not timestamp or not given:
        return "callback is not signed (X-Webhook-Timestamp / X-Webhook-Signature missing)"
    if not task_id:
        return "callback names no task id, so its signature cannot be checked"
    expected = signature(key, task_id, timestamp)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return "callback signature does not match"
    if max_age_s is not None:
        try:
            sent = float(timestamp)
        except ValueError:
            return "callback timestamp is not a number"
        if abs((time.time() if now is None else now) - sent) > max_age_s:
            return "callback timestamp is too old"
    return None
