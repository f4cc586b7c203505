"""Structured JSON logs with correlation and task ids, and secrets scrubbed from every line."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any

from aigen import context

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def register_secret(value: str) -> None:
    """Never print this value: every formatted line replaces it with ***.

    Keys are registered where they are decrypted or read from the environment, so a key that
    slips into an exception message or a provider's error body still never reaches the log.
    """
    if value and len(value) >= 6:
        with _secrets_lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    if not _secrets:
        return text
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (cid := context.correlation_id.get()) is not None:
            entry["correlation_id"] = cid
        if (tid := context.task_id.get()) is not None:
            entry["task_id"] = tid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S")
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tid = context.task_id.get()
        return scrub(f"{line} [task={tid}]" if tid else line)


def setup_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter that would drown our own lines at INFO.
    for noisy in ("httpx", "httpcore", "nats", "uvicorn.access", "botocore", "boto3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
