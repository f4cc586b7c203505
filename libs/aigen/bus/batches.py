"""Batched consumers: the events of a moment handled in one transaction.

`Consumer` gives every event a transaction of its own (BEGIN, the tracking row, the effect,
COMMIT) and an acknowledgement of its own. For a handler that only writes to PostgreSQL that
frame costs more than the effect. `BatchConsumer` takes what JetStream has ready (up to `batch`
events), asks the handler which of them it wants, and handles those in one transaction that also
writes all their tracking rows in one statement; after the COMMIT it acknowledges the whole batch
at once, so the acks leave in one write.

The guarantees are `Consumer`'s: an event's effect commits together with its tracking row, a
redelivered event finds its row and changes nothing, and nothing is acknowledged before its commit.
Events of a batch are handled one after the other in the order JetStream delivered them, each
seeing what the ones before it wrote.

A batch is all or nothing. When it fails, each of its events is handled again alone, in a
transaction of its own, so only the event that really fails is retried later (nak with a growing
delay, as `Consumer` does) and the others go on. Handlers do database work only: a slow call
elsewhere would hold every event of the batch (use `Consumer` for those).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from aigen.bus.consumer import Delivery, KeepAlive, PullConsumer
from aigen.bus.topology import ConsumerSpec
from aigen.db.pool import Database
from aigen.eventstore.store import Conn

log = logging.getLogger("aigen.consumer")

# One row per event; a row that exists already (a redelivery) is not returned.
_TRACK = (
    "INSERT INTO consumer_tracking (consumer, event_id) SELECT %s, unnest(%s::uuid[]) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


class BatchHandler(Protocol):
    def wants(self, delivery: Delivery) -> bool:
        """Whether the event has an effect here; one that has none is acknowledged untracked."""
        ...

    async def handle(self, conn: Conn, deliveries: Sequence[Delivery]) -> Callable[[], None] | None:
        """Apply the events, in order, inside `conn`'s transaction; optionally a callable to run
        once it has committed (never if it rolls back)."""
        ...


class BatchConsumer(PullConsumer):
    def __init__(
        self,
        db: Database,
        nc: NATS,
        spec: ConsumerSpec,
        handler: BatchHandler,
        *,
        batch: int = 64,
        **timing: float,  # PullConsumer's fetch_timeout, retry_base_s, retry_max_s
    ) -> None:
        super().__init__(db, nc, spec, batch=batch, **timing)
        self.handler = handler
        self.batches = 0

    async def run(self, stop: asyncio.Event) -> None:
        sub = await self.js.pull_subscribe_bind(durable=self.spec.durable, stream=self.spec.stream)
        try:
            while not stop.is_set():
                msgs = await self._fetch(sub, self.batch)
                if not msgs:
                    continue
                try:
                    await self._process(msgs)
                except Exception:
                    # Whatever went wrong, unacknowledged events come again after the ack wait.
                    log.exception("%s: a batch of %d could not be handled", self.spec.durable, len(msgs))
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _process(self, msgs: list[Msg]) -> None:
        deliveries = [d for d in [await self._delivery(m) for m in msgs] if d is not None]
        wanted: list[Delivery] = []
        ignored: list[Delivery] = []
        for delivery in deliveries:
            (wanted if self.handler.wants(delivery) else ignored).append(delivery)
        keepalive = KeepAlive(msgs, max(1.0, self.spec.ack_wait_s / 3))
        try:
            if wanted:
                await self._settle(wanted)
        finally:
            keepalive.cancel()
        if ignored:
            self._count("processed", len(ignored))
            for delivery in ignored:  # no await that yields: the acks leave in one write
                await delivery.ack()

    async def _settle(self, batch: list[Delivery]) -> None:
        """Commit `batch` and acknowledge it; when it fails, each of its events alone."""
        try:
            fresh = await self._commit(batch)
        except Exception as exc:
            if len(batch) == 1:
                with batch[0].traced():
                    await self._failed(batch[0], exc)
                return
            log.info(
                "%s: a batch of %d failed (%s: %s); handling each event alone",
                self.spec.durable,
                len(batch),
                type(exc).__name__,
                exc,
            )
            for delivery in batch:
                await self._settle([delivery])
            return
        self._count("processed", fresh)
        if fresh < len(batch):
            self._count("skipped", len(batch) - fresh)
        for delivery in batch:
            await delivery.ack()

    async def _commit(self, batch: list[Delivery]) -> int:
        fresh = await commit_batch(self.db, self.spec.durable, self.handler, batch)
        self.batches += 1
        return fresh


async def commit_batch(db: Database, consumer: str, handler: BatchHandler, batch: Sequence[Delivery]) -> int:
    """Apply the events of `batch` not applied before, in one transaction with their tracking
    rows; how many were new."""
    async with db.transaction() as conn:
        cursor = await conn.execute(_TRACK, (consumer, [d.event_id for d in batch]))
        new = {row[0] for row in await cursor.fetchall()}
        fresh: list[Delivery] = []
        for delivery in batch:
            if delivery.event_id in new:  # a copy of it later in the batch is a redelivery
                new.discard(delivery.event_id)
                fresh.append(delivery)
        committed = await handler.handle(conn, fresh) if fresh else None
    if committed is not None:
        committed()
    return len(fresh)
