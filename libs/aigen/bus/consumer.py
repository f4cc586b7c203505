"""Event consumers: durable JetStream pull consumers with exactly-once effects in PostgreSQL.

A handler receives a `Delivery`. Its effect is committed together with a tracking row
(consumer, event id) through `delivery.transaction()`: a redelivered event — whether
JetStream's duplicate window dropped the re-publish or not — finds the row and is acknowledged
without effect. Events a handler ignores leave no row (ignoring them again is just as harmless).
Handlers with slow external work (downloads, webhooks) do that work first, idempotently, and then
commit through `delivery.transaction()`; the consumer keeps the message alive with in-progress
acks meanwhile.

Failures: a handler exception naks the message with a growing delay; after `max_deliver`
deliveries JetStream gives up and publishes an advisory, which `DeadLetters` records.
Undecodable messages are terminated at once and recorded as dead letters (poison).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import nats.errors
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import trace

from aigen import context, metrics
from aigen.bus.topology import ConsumerSpec
from aigen.db.pool import Database
from aigen.eventstore.mapper import EVENT_TYPES
from aigen.eventstore.store import Conn
from aigen.tracing import context_from, span
from aigen.v1 import common_pb2

log = logging.getLogger("aigen.consumer")


class AlreadyProcessed(Exception):
    """The event was handled before (its tracking row exists)."""


@dataclass
class Delivery:
    consumer: str
    envelope: common_pb2.EventEnvelope
    message: Message | None  # decoded payload; None for event types this process does not know
    num_delivered: int
    db: Database
    _msg: Msg | None = None
    _tracked: bool = field(default=False, init=False)

    @functools.cached_property
    def event_id(self) -> uuid.UUID:
        return uuid.UUID(self.envelope.event_id)

    @property
    def type(self) -> str:
        return self.envelope.type

    async def already_processed(self) -> bool:
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT 1 FROM consumer_tracking WHERE consumer = %s AND event_id = %s",
                    (self.consumer, self.event_id),
                )
            ).fetchone()
            return row is not None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A transaction that also records this event as processed; raises AlreadyProcessed."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO consumer_tracking (consumer, event_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING RETURNING 1",
                (self.consumer, self.event_id),
            )
            if await cursor.fetchone() is None:
                raise AlreadyProcessed
            yield conn
        self._tracked = True

    @contextlib.contextmanager
    def traced(self) -> Iterator[None]:
        """Log lines and spans inside continue the request that caused the event."""
        with (
            context.bound(correlation=self.envelope.correlation_id or None),
            span(
                "aigen.bus",
                f"{self.consumer} {self.type.rsplit('.', 1)[-1]}",
                context=context_from(dict(self.envelope.trace_context)),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.destination.name": self._msg.subject if self._msg is not None else "",
                },
            ),
        ):
            yield

    async def ack(self) -> None:
        """Acknowledge; if the broker cannot be told now, the event comes again after the ack
        wait and finds its tracking row (or is ignored again)."""
        if self._msg is not None:
            try:
                await self._msg.ack()
            except nats.errors.Error as exc:
                log.warning("%s: %s not acknowledged (%s); it will come again", self.consumer, self.type, exc)

    async def nak(self, delay: float) -> None:
        if self._msg is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._msg.nak(delay=delay)

    async def in_progress(self) -> None:
        if self._msg is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._msg.in_progress()


Handler = Callable[[Delivery], Awaitable[None]]


def decode_envelope(data: bytes) -> tuple[common_pb2.EventEnvelope, Message | None]:
    envelope = common_pb2.EventEnvelope()
    envelope.ParseFromString(data)
    if not envelope.event_id or not envelope.type:
        raise DecodeError("envelope without event id or type")
    cls = EVENT_TYPES.get(envelope.type)
    if cls is None:
        return envelope, None
    message = cls()
    message.ParseFromString(envelope.payload)
    return envelope, message


class PullConsumer:
    """What every consumer here shares: the durable pull subscription, decoding, dead letters for
    poison, retries with a growing delay and the counters."""

    def __init__(
        self,
        db: Database,
        nc: NATS,
        spec: ConsumerSpec,
        *,
        batch: int,
        fetch_timeout: float = 1.0,
        retry_base_s: float = 1.0,
        retry_max_s: float = 60.0,
    ) -> None:
        self.db = db
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.spec = spec
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.processed = 0
        self.skipped = 0
        self.failed = 0

    async def _fetch(self, sub: JetStreamContext.PullSubscription, n: int) -> list[Msg]:
        """Up to `n` messages; none when nothing came in time or the broker is away for now."""
        try:
            return await sub.fetch(n, timeout=self.fetch_timeout)
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        except nats.errors.Error as exc:
            log.warning("%s: fetch failed (%s); retrying", self.spec.durable, exc)
            await asyncio.sleep(1.0)
            return []

    def _decode(self, msg: Msg) -> Delivery | str:
        """The message as a delivery, or why it cannot be one (poison)."""
        try:
            envelope, message = decode_envelope(msg.data)
        except (DecodeError, ValueError) as exc:
            return f"undecodable message: {exc}"
        return Delivery(
            consumer=self.spec.durable,
            envelope=envelope,
            message=message,
            num_delivered=msg.metadata.num_delivered if msg.metadata else 1,
            db=self.db,
            _msg=msg,
        )

    async def _delivery(self, msg: Msg) -> Delivery | None:
        """The message as a delivery; None for poison, which is terminated and recorded."""
        decoded = self._decode(msg)
        if isinstance(decoded, str):
            await self._poison(msg, decoded)
            return None
        return decoded

    def _count(self, outcome: str, n: int = 1) -> None:
        if outcome == "processed":
            self.processed += n
        elif outcome == "skipped":
            self.skipped += n
        else:
            self.failed += n
        metrics.CONSUMER_EVENTS.labels(self.spec.durable, outcome).inc(n)

    async def _failed(self, delivery: Delivery, exc: Exception) -> None:
        """Retry the event later, each time waiting longer (JetStream gives up at max_deliver)."""
        self._count("failed")
        delay = min(self.retry_max_s, self.retry_base_s * (2 ** (delivery.num_delivered - 1)))
        log.warning(
            "%s: %s at position %d failed (delivery %d): %s: %s; retrying in %.1fs",
            self.spec.durable,
            delivery.type,
            delivery.envelope.global_position,
            delivery.num_delivered,
            type(exc).__name__,
            exc,
            delay,
            exc_info=not isinstance(exc, OSError | TimeoutError),
        )
        await delivery.nak(delay)

    async def _poison(self, msg: Msg, reason: str) -> None:
        seq = msg.metadata.sequence.stream if msg.metadata else None
        deliveries = msg.metadata.num_delivered if msg.metadata else None
        log.error("%s: terminating poison message at stream sequence %s: %s", self.spec.durable, seq, reason)
        await record_dead_letter(self.db, self.spec.durable, msg.subject, seq, deliveries, reason, msg.data)
        with contextlib.suppress(nats.errors.Error):
            await msg.term()


class Consumer(PullConsumer):
    """Runs a handler per event, up to `concurrency` at once; each commits its own effect.

    With `triage`, every event first meets it, synchronously and in delivery order, as soon as it
    is fetched: an event it declines is acknowledged there and then (the acknowledgements of one
    fetch leave in one write), without a task, a slot, a keep-alive timer or a span of its own.
    Consumers that see every task event and act on few of them spend most of their time there."""

    def __init__(
        self,
        db: Database,
        nc: NATS,
        spec: ConsumerSpec,
        handler: Handler,
        *,
        triage: Callable[[Delivery], bool] | None = None,
        batch: int = 32,
        concurrency: int = 8,
        **timing: float,  # PullConsumer's fetch_timeout, retry_base_s, retry_max_s
    ) -> None:
        super().__init__(db, nc, spec, batch=batch, **timing)
        self.handler = handler
        self.triage = triage
        self._slots = asyncio.Semaphore(concurrency)

    async def run(self, stop: asyncio.Event) -> None:
        sub = await self.js.pull_subscribe_bind(durable=self.spec.durable, stream=self.spec.stream)
        running: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                free = self.batch - len(running)
                if free <= 0:
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    continue
                for msg in await self._fetch(sub, free):
                    work = await self._work_for(msg)
                    if work is None:
                        continue
                    task = asyncio.create_task(work)
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _work_for(self, msg: Msg) -> Coroutine[Any, Any, None] | None:
        """What a fetched message needs done; None when the triage declined it (acknowledged
        here, without yielding: the acknowledgements of one fetch leave in one write)."""
        decoded = self._decode(msg)
        if not isinstance(decoded, Delivery) or self.triage is None:
            return self._process(msg, decoded)
        try:
            wanted = self.triage(decoded)
        except Exception as exc:
            return self._failed(decoded, exc)
        if wanted:
            return self._process(msg, decoded)
        self._count("processed")
        await decoded.ack()
        return None

    async def _process(self, msg: Msg, delivery: Delivery | str) -> None:
        if isinstance(delivery, str):
            await self._poison(msg, delivery)
            return
        async with self._slots:
            with delivery.traced():
                # A timer rather than a task per message: most handlers finish long before it fires.
                keepalive = KeepAlive([msg], max(1.0, self.spec.ack_wait_s / 3))
                try:
                    # A handler with an effect commits it through delivery.transaction(), which
                    # also records the event; one that ignored the event leaves no row behind
                    # (a redelivery is ignored again — no write per uninteresting event).
                    await self.handler(delivery)
                    self._count("processed")
                    await msg.ack()
                except AlreadyProcessed:
                    self._count("skipped")
                    await msg.ack()
                except Exception as exc:
                    await self._failed(delivery, exc)
                finally:
                    keepalive.cancel()


class KeepAlive:
    """Tells JetStream every `interval_s` that messages are still being worked on (a slow
    handler), until cancelled."""

    def __init__(self, msgs: list[Msg], interval_s: float) -> None:
        self.msgs = msgs
        self.interval_s = interval_s
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(interval_s, self._fire)
        self._nudge: asyncio.Task[None] | None = None

    def _fire(self) -> None:
        self._nudge = self._loop.create_task(self._in_progress())
        self._timer = self._loop.call_later(self.interval_s, self._fire)

    async def _in_progress(self) -> None:
        for msg in self.msgs:
            with contextlib.suppress(nats.errors.Error):
                await msg.in_progress()

    def cancel(self) -> None:
        self._timer.cancel()
        if self._nudge is not None:
            self._nudge.cancel()


async def record_dead_letter(
    db: Database,
    source: str,
    subject: str | None,
    stream_sequence: int | None,
    deliveries: int | None,
    reason: str,
    payload: bytes | None,
) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO dead_letters (source, subject, stream_sequence, deliveries, reason, payload) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (source, subject, stream_sequence, deliveries, reason, payload),
        )


class DeadLetters:
    """Records work JetStream gave up on (max deliveries reached) from its advisories."""

    def __init__(self, db: Database, nc: NATS, stream: str, consumers: list[str]) -> None:
        self.db = db
        self.nc = nc
        self.stream = stream
        self.consumers = set(consumers)
        self.recorded = 0

    async def run(self, stop: asyncio.Event) -> None:
        subject = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.stream}.*"
        sub = await self.nc.subscribe(subject)
        js = self.nc.jetstream()
        try:
            while not stop.is_set():
                try:
                    msg = await sub.next_msg(timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                advisory = json.loads(msg.data)
                consumer = advisory.get("consumer", "")
                if consumer not in self.consumers:
                    continue
                seq = advisory.get("stream_seq")
                payload: bytes | None = None
                stored_subject: str | None = None
                with contextlib.suppress(Exception):
                    raw = await js.get_msg(self.stream, seq)
                    payload, stored_subject = raw.data, raw.subject
                await record_dead_letter(
                    self.db,
                    consumer,
                    stored_subject,
                    seq,
                    advisory.get("deliveries"),
                    "max deliveries reached",
                    payload,
                )
                self.recorded += 1
                log.error(
                    "%s: gave up on stream sequence %s after %s deliveries",
                    consumer,
                    seq,
                    advisory.get("deliveries"),
                )
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
