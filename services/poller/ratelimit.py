"""Per-provider token buckets: stay under each provider's documented status-check rate.

Limits are per process; with N replicas each takes its share (rate / N) when
AIGEN_POLLER_REPLICAS says how many there are.
"""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    def __init__(self, replicas: int = 1) -> None:
        self.replicas = max(1, replicas)
        self._next: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def acquire(self, key: str, per_second: float) -> None:
        """Wait for a slot; `per_second` 0 means no known limit."""
        if per_second <= 0:
            return
        spacing = self.replicas / per_second
        async with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(key, now))
            self._next[key] = slot + spacing
        if slot > now:
            await asyncio.sleep(slot - now)
