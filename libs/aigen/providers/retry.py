"""Retry with exponential backoff and full jitter, honouring a provider's Retry-After."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aigen.providers.types import AdapterResult, Outcome


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A provider asking us to wait longer than this is treated as "not now": we stop retrying.
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (1-based): full jitter over an exponential cap."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return (rng or random).uniform(cap / 2, cap)


Sleep = Callable[[float], Awaitable[None]]


async def with_retries(
    call: Callable[[], Awaitable[AdapterResult]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    on_retry: Callable[[int, AdapterResult, float], None] | None = None,
) -> AdapterResult:
    """Call until it succeeds, fails for good, or attempts run out; returns the last result."""
    attempt = 0
    while True:
        attempt += 1
        result = await call()
        error = result.error
        if result.outcome is not Outcome.ERROR or error is None or not error.retryable:
            return result
        if attempt >= policy.max_attempts:
            return result
        if error.retry_after is not None:
            if error.retry_after > policy.max_retry_after:
                return result
            delay = error.retry_after
        else:
            delay = policy.backoff(attempt)
        if on_retry is not None:
            on_retry(attempt, result, delay)
        await sleep(delay)
