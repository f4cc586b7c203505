"""Stream ids of the operations events (see protos/aigen/v1/ops.proto)."""

from __future__ import annotations

import re

_SAFE = re.compile(r"[^a-z0-9_.-]+")


def _part(value: str) -> str:
    return _SAFE.sub("_", value.lower()) or "_"


def provider_stream(provider: str) -> str:
    """Health checks of one provider."""
    return f"provider-{_part(provider)}"


def breaker_stream(provider: str) -> str:
    """Breaker transitions of one provider, alone in their stream so its head is one row."""
    return f"breaker-{_part(provider)}"


def errors_stream(provider: str) -> str:
    return f"errors-{_part(provider or 'unknown')}"


def alert_stream(rule: str, subject: str) -> str:
    return f"alert-{_part(rule)}-{_part(subject)}"
