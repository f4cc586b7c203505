"""The breaker as the dispatcher sees it: is this provider cooled down right now?

The ops service decides (it appends `ProviderCooledDown` / `ProviderRecovered` to the provider's
`breaker-<slug>` stream); every dispatcher reads the head of that stream, cached for a few
seconds per provider. Reading the log rather than asking the ops service over gRPC means a
dispatcher never waits on, or fails with, the ops service: with ops down the breaker simply
stays as it last was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aigen.db.pool import Database
from aigen.eventstore.mapper import type_name
from aigen.ops.streams import breaker_stream
from aigen.v1 import ops_pb2

log = logging.getLogger("aigen.ops.breaker")

_COOLED = type_name(ops_pb2.ProviderCooledDown)


@dataclass(frozen=True)
class Cooling:
    provider: str
    since: datetime
    reason: str

    def message(self) -> str:
        return (
            f"provider {self.provider} is unavailable: cooled down since "
            f"{self.since.strftime('%Y-%m-%d %H:%M:%S UTC')} after repeated failures ({self.reason})"
        )


class BreakerGate:
    def __init__(
        self, db: Database, *, ttl_s: float = 3.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, Cooling | None]] = {}

    async def cooling(self, provider: str) -> Cooling | None:
        """The open breaker of `provider`, or None when dispatches may go through."""
        now = self.clock()
        hit = self._cache.get(provider)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        try:
            found = await self._read(provider)
        except Exception as exc:
            # The gate must never stop dispatching by itself failing: keep the last answer.
            log.warning("breaker state of %s unreadable (%s); keeping the last known", provider, exc)
            return hit[1] if hit is not None else None
        self._cache[provider] = (now, found)
        return found

    async def _read(self, provider: str) -> Cooling | None:
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT type, payload, recorded_at FROM events WHERE stream_id = %s "
                    "ORDER BY version DESC LIMIT 1",
                    (breaker_stream(provider),),
                )
            ).fetchone()
        if row is None or row[0] != _COOLED:
            return None
        event = ops_pb2.ProviderCooledDown()
        event.ParseFromString(bytes(row[1]))
        return Cooling(provider, row[2], event.reason)

    def forget(self) -> None:
        self._cache.clear()
