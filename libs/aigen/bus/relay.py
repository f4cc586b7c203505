"""The outbox relay: publishes the event log to JetStream, in order, each event once.

The log in PostgreSQL is committed first; the relay then publishes each event with
`Nats-Msg-Id` = event id and advances its checkpoint only after JetStream acknowledged the whole
batch. A crash between publish and checkpoint re-publishes the batch; inside the stream's
duplicate window JetStream drops the copies, outside it consumers drop them by event id (their
tracking table). Either way a consumer sees each event once.

One relay leads at a time (a PostgreSQL session advisory lock); every service process runs one,
so publishing continues when any process dies.

The checkpoint is keyed by the stream's creation time: if the broker loses its data and the
stream is created anew, the relay starts again from position 0 and re-publishes the whole log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import psycopg
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from aigen import metrics
from aigen.bus import topology as topo
from aigen.db.pool import Database
from aigen.eventstore.mapper import short_type
from aigen.eventstore.store import EventStore, RecordedEvent, Waker
from aigen.v1 import common_pb2

log = logging.getLogger("aigen.relay")

_LEADER_LOCK = 0x52454C41  # "RELA"


def envelope_of(event: RecordedEvent) -> common_pb2.EventEnvelope:
    recorded = Timestamp()
    recorded.FromDatetime(event.recorded_at)
    meta = event.metadata
    return common_pb2.EventEnvelope(
        event_id=str(event.event_id),
        stream_id=event.stream_id,
        version=event.version,
        global_position=event.global_position,
        type=event.type,
        time=recorded,
        correlation_id=str(meta.get("correlation_id", "")),
        causation_id=str(meta.get("causation_id", "")),
        trace_context={str(k): str(v) for k, v in (meta.get("trace_context") or {}).items()},
        payload=event.payload,
    )


def aggregate_of(stream_id: str) -> str:
    return stream_id.split("-", 1)[0] or "unknown"


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    last_position: int = 0
    leader: bool = False


class Relay:
    def __init__(
        self,
        db: Database,
        nc: NATS,
        topology: topo.Topology,
        *,
        batch: int = 1000,
        idle_poll_s: float = 1.0,
        stream_check_s: float = 5.0,
        coalesce_s: float = 0.02,
        standby_s: float = 0.0,
    ) -> None:
        self.db = db
        # How long the lead must have been vacant before this process takes it: busy processes
        # stand by so that a lighter one leads whenever there is one (see decisions.md).
        self.standby_s = standby_s
        self.store = EventStore(db)
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(publish_async_max_pending=batch * 2)
        self.topology = topology
        self.batch = batch
        self.idle_poll_s = idle_poll_s
        self.stream_check_s = stream_check_s
        self.coalesce_s = coalesce_s
        self.stats = RelayStats()
        self._checkpoint_name = ""
        self._stream_checked = 0.0
        # The checkpoint as this leader last wrote it: only the leader writes it, so it is read
        # from the table once per leadership (and per stream incarnation), not once per batch.
        self._published: int | None = None

    async def _ensure_stream(self) -> str:
        """Create the stream if missing; the checkpoint name for its current incarnation."""
        spec = self.topology.streams()[0]
        try:
            info = await self.js.stream_info(spec.name)
        except NotFoundError:
            await self.js.add_stream(spec.config())
            info = await self.js.stream_info(spec.name)
        created = info.created.isoformat() if info.created else "unknown"
        return f"relay:{spec.name}:{created}"

    async def _position(self) -> int:
        async with self.db.connection() as conn:
            await conn.execute(
                "INSERT INTO checkpoints (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
                (self._checkpoint_name,),
            )
            row = await (
                await conn.execute(
                    "SELECT position FROM checkpoints WHERE name = %s", (self._checkpoint_name,)
                )
            ).fetchone()
            await conn.commit()
            return int(row[0]) if row else 0

    async def _save(self, position: int) -> None:
        # Committed without waiting for the disk: a checkpoint lost in a crash only makes the next
        # leader publish those events again, which JetStream and the consumers already absorb.
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE checkpoints SET position = %s, updated_at = now() "
                "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS commit_mode WHERE name = %s",
                (position, self._checkpoint_name),
            )
            await conn.commit()

    async def publish_once(self) -> int:
        """Publish the next batch; returns how many events went out (0 when caught up)."""
        now = time.monotonic()
        if not self._checkpoint_name or now - self._stream_checked > self.stream_check_s:
            name = await self._ensure_stream()
            if name != self._checkpoint_name:
                if self._checkpoint_name:
                    log.warning("events stream was recreated; re-publishing the log from the start")
                self._checkpoint_name = name
                self._published = None
            self._stream_checked = now
        if self._published is None:
            self._published = await self._position()
        events = await self.store.read_all(self._published, self.batch)
        if not events:
            return 0
        futures = []
        for event in events:
            subject = self.topology.event_subject(aggregate_of(event.stream_id), short_type(event.type))
            headers = {
                "Nats-Msg-Id": str(event.event_id),
                "Aigen-Type": event.type,
                "Aigen-Stream": event.stream_id,
                **{str(k): str(v) for k, v in (event.metadata.get("trace_context") or {}).items()},
            }
            futures.append(
                await self.js.publish_async(
                    subject,
                    envelope_of(event).SerializeToString(),
                    headers=headers,
                    stream=self.topology.events_stream,
                )
            )
        # Every PubAck must arrive before the checkpoint moves; any failure retries the batch.
        await asyncio.wait_for(asyncio.gather(*futures), timeout=30)
        last = events[-1].global_position
        await self._save(last)
        self._published = last
        self.stats.published += len(events)
        metrics.RELAY_PUBLISHED.inc(len(events))
        self.stats.batches += 1
        self.stats.last_position = last
        return len(events)

    async def run(self, stop: asyncio.Event) -> None:
        """Lead when possible, publish until `stop` is set."""
        vacant_since: float | None = None
        while not stop.is_set():
            try:
                if self.standby_s > 0:
                    if await self._someone_leads():
                        vacant_since = None
                        await _wait(stop, 2.0)
                        continue
                    now = time.monotonic()
                    vacant_since = now if vacant_since is None else vacant_since
                    if now - vacant_since < self.standby_s:
                        await _wait(stop, min(2.0, self.standby_s - (now - vacant_since)))
                        continue
                async with await psycopg.AsyncConnection.connect(self.db.url, autocommit=True) as lock_conn:
                    row = await (
                        await lock_conn.execute(
                            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (_LEADER_LOCK, self.db.schema)
                        )
                    ).fetchone()
                    if not (row and row[0]):
                        await _wait(stop, 2.0)
                        continue
                    self.stats.leader = True
                    self._published = None  # another leader may have moved it meanwhile
                    log.info("relay leads: publishing the event log to %s", self.topology.events_stream)
                    try:
                        await self._lead(stop)
                    finally:
                        self.stats.leader = False
                        self._published = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("relay paused after %s: %s", type(exc).__name__, exc)
                await _wait(stop, 1.0)

    async def _someone_leads(self) -> bool:
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND classid = %s::oid AND objid = hashtext(%s)::oid AND objsubid = 2)",
                    (_LEADER_LOCK, self.db.schema),
                )
            ).fetchone()
            await conn.commit()
        return bool(row and row[0])

    async def _lead(self, stop: asyncio.Event) -> None:
        waker = Waker(self.db, self.store.channel)
        await waker.start()
        try:
            while not stop.is_set():
                sent = await self.publish_once()
                if sent < self.batch:
                    if sent:
                        # Let the appends that follow gather into one batch: under load one read,
                        # one round of PubAcks and one checkpoint write for many events, for a few
                        # milliseconds of delivery lag. After a quiet spell the first event goes out
                        # as soon as it is announced.
                        await _wait(stop, self.coalesce_s)
                    await waker.wait(self.idle_poll_s)
        finally:
            await waker.stop()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
