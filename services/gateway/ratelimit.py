"""Per-key request rate limits: token buckets in this process's memory.

A bucket holds `burst` tokens and refills at `rate_per_minute / 60` per second; a request takes
one. Each gateway replica keeps its own buckets, so with N replicas behind a balancer a key gets
up to N times its rate: acceptable for protecting the system, and it keeps a database round trip
off every request. Idle buckets are dropped so memory stays bounded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float
    rate_per_minute: int
    burst: int


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int = 0  # whole seconds, as Retry-After wants them
    remaining: int = 0


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic, max_buckets: int = 100_000) -> None:
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key_id: str, rate_per_minute: int, burst: int | None = None) -> Verdict:
        capacity = max(1, burst or rate_per_minute)
        now = self.clock()
        bucket = self._buckets.get(key_id)
        if bucket is None or bucket.rate_per_minute != rate_per_minute or bucket.burst != capacity:
            if len(self._buckets) >= self.max_buckets:
                self._forget_idle(now)
            bucket = _Bucket(float(capacity), now, rate_per_minute, capacity)
            self._buckets[key_id] = bucket
        per_second = rate_per_minute / 60.0
        bucket.tokens = min(float(capacity), bucket.tokens + (now - bucket.updated) * per_second)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Verdict(True, remaining=int(bucket.tokens))
        wait = (1.0 - bucket.tokens) / per_second
        return Verdict(False, retry_after_s=max(1, math.ceil(wait)))

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled completely: forgetting them changes nothing."""
        for key_id, bucket in list(self._buckets.items()):
            full_after = bucket.burst / (bucket.rate_per_minute / 60.0)
            if now - bucket.updated >= full_after:
                del self._buckets[key_id]
