"""Per-provider check slots: stay under each provider's documented status-check rate.

Each provider has a timeline of slots `1/rate` apart. A check books the next free slot; when
that slot is near it waits for it, when it is far the job is put back until then (holding a
worker while waiting would starve other providers' checks). Limits are per process; with N
replicas each takes its share when AIGEN_POLLER_REPLICAS says how many there are.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, replicas: int = 1, *, enabled: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.replicas = max(1, replicas)
        self.enabled = enabled
        self.clock = clock
        self._next: dict[str, float] = {}

    def book(self, key: str, per_second: float) -> float:
        """Reserve the next slot for `key`; seconds until it (0: now). `per_second` 0: no limit."""
        if not self.enabled or per_second <= 0:
            return 0.0
        spacing = self.replicas / per_second
        now = self.clock()
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + spacing
        return slot - now
