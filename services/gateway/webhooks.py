"""Client webhooks: which task events are told, what the body says, and how it is signed.

Signing follows Standard Webhooks (standardwebhooks.com): headers `webhook-id` (stable across
retries: receivers deduplicate on it), `webhook-timestamp` (unix seconds of this attempt) and
`webhook-signature` = `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, where the key is
the base64-decoded part of the `whsec_…` secret. No I/O here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aigen.v1 import events_pb2
from google.protobuf.message import Message

# Default retry delays after each failed attempt, in seconds: about a day and a half in total.
DEFAULT_SCHEDULE: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 43200)


@dataclass(frozen=True)
class Notice:
    type: str  # "task.progress" | "task.succeeded" | "task.failed" | "task.cancelled"
    data: dict[str, object]


def notice_for(message: Message) -> Notice | None:
    """What a client hears about a task event; None for events it does not hear about."""
    if isinstance(message, events_pb2.TaskDispatched):
        return Notice("task.progress", {"taskId": message.task_id, "status": "PROCESSING", "progress": 0.0})
    if isinstance(message, events_pb2.TaskProgressed):
        return Notice(
            "task.progress",
            {"taskId": message.task_id, "status": "PROCESSING", "progress": round(message.progress, 4)},
        )
    if isinstance(message, events_pb2.ResultsStored):
        return Notice(
            "task.succeeded",
            {
                "taskId": message.task_id,
                "status": "SUCCESS",
                "progress": 1.0,
                "results": [_result(r) for r in message.results],
            },
        )
    if isinstance(message, events_pb2.TaskFailed):
        return Notice(
            "task.failed",
            {
                "taskId": message.task_id,
                "status": "FAILED",
                "error": {"code": message.code or "FAILED", "message": message.message},
            },
        )
    if isinstance(message, events_pb2.TaskCancelled):
        return Notice(
            "task.cancelled",
            {
                "taskId": message.task_id,
                "status": "CANCELLED",
                "error": {"code": "CANCELLED", "message": message.reason or "cancelled"},
            },
        )
    return None


def _result(result: events_pb2.StoredResult) -> dict[str, object]:
    item: dict[str, object] = {"type": result.type, "url": result.url}
    if result.original_url:
        item["originalUrl"] = result.original_url
    if result.content_type:
        item["contentType"] = result.content_type
    if result.size:
        item["size"] = result.size
    return item


def body_of(notice: Notice, at: datetime) -> str:
    """The JSON body, serialised once: every attempt sends these exact bytes."""
    document = {"type": notice.type, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": notice.data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _hmac_key(secret: str) -> bytes:
    body = secret.removeprefix("whsec_")
    return base64.b64decode(body)


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_hmac_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def next_delay(schedule: Sequence[float], attempts_made: int) -> float | None:
    """Seconds until the next attempt after `attempts_made` failures; None: give up."""
    if attempts_made - 1 < len(schedule):
        return float(schedule[attempts_made - 1])
    return None


def parse_schedule(text: str) -> tuple[float, ...]:
    """`AIGEN_WEBHOOK_RETRY_SCHEDULE`: comma-separated seconds, e.g. "5,30,120"."""
    values = tuple(float(part) for part in text.split(",") if part.strip())
    if not values or any(v < 0 for v in values):
        raise ValueError("expected comma-separated non-negative seconds")
    return values
