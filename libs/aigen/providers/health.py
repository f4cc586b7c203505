"""What every provider's free health probe shares: without a key it fails with no call; otherwise
one timed GET, and an unreachable host or a refused request fails with the provider's reason.
Each adapter then reads its own answer (a balance, a model list, an account) from the `Probe`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aigen.providers.base import BaseAdapter, HttpReply
from aigen.providers.types import AdapterError, HealthResult


@dataclass(frozen=True)
class Probe:
    reply: HttpReply
    latency_ms: float

    def healthy(
        self, message: str, *, balance: float | None = None, balance_unit: str | None = None
    ) -> HealthResult:
        return HealthResult(
            ok=True, message=message, latency_ms=self.latency_ms, balance=balance, balance_unit=balance_unit
        )

    def unhealthy(self, message: str) -> HealthResult:
        return HealthResult(ok=False, message=message, latency_ms=self.latency_ms)


async def probe(
    adapter: BaseAdapter, path: str, *, refusal: Callable[[HttpReply], str] | None = None
) -> Probe | HealthResult:
    """GET `path`; a HealthResult when the probe has already failed. With `refusal`, any status
    but 200 fails with what it says; without, the adapter reads the status itself (envelopes)."""
    if (missing := adapter.missing_key_error()) is not None:
        return HealthResult(ok=False, message=missing.message, latency_ms=0.0)
    started = time.monotonic()
    reply = await adapter.request("GET", path)
    latency_ms = (time.monotonic() - started) * 1000.0
    if isinstance(reply, AdapterError):
        return HealthResult(ok=False, message=reply.message, latency_ms=latency_ms)
    if refusal is not None and reply.status != 200:
        return HealthResult(ok=False, message=refusal(reply), latency_ms=latency_ms)
    return Probe(reply, latency_ms)
