"""Projections: read models built from the event log, each event applied exactly once.

A runner reads the log after its checkpoint and applies a batch inside one transaction that also
moves the checkpoint, so a crash mid-batch leaves no trace and the batch is applied again whole.
The checkpoint row is locked for the batch (`FOR UPDATE`), so replicas running the same
projection take turns instead of applying an event twice.

An event the projection cannot decode (unknown type, malformed payload) stops that projection at
that position: the checkpoint row records the state `stalled`, the position and the reason, and
`aigen projections status` shows it. Nothing is skipped silently; after a fix (a new release that
knows the type, or an upcaster), `resume` or `rebuild` carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message
from psycopg import sql

from aigen import metrics
from aigen.db.pool import Database
from aigen.eventstore.mapper import EVENT_TYPES, MalformedEvent, UnknownEventType, decode
from aigen.eventstore.store import Conn, EventStore, RecordedEvent, Waker

log = logging.getLogger("aigen.projections")

# Events in one catch-up that mean "busy": appends arrive faster than batches are applied one by
# one, so the next batch is left to gather. (A handful: a burst of a few events, as a single
# action causes, is still applied at once.)
BUSY_BATCH = 5


class Projection(ABC):
    """A read model. `tables` are emptied on rebuild; `types` limits what is read (None: all)."""

    name: str
    tables: Sequence[str] = ()
    types: frozenset[str] | None = None

    @abstractmethod
    async def apply(self, conn: Conn, event: RecordedEvent, message: Message) -> None:
        """Apply one event inside the batch transaction."""

    def begin_batch(self) -> None:  # noqa: B027 - optional hook
        """Called before each batch's first event: projections that gather work in memory for
        `end_batch` start afresh here (a batch that failed midway left its gatherings behind)."""

    async def end_batch(self, conn: Conn) -> None:  # noqa: B027 - optional hook
        """Called once per batch, after its events and before the checkpoint moves (same
        transaction): projections that coalesce work per batch write it here."""


class ProjectionStalled(RuntimeError):
    def __init__(self, name: str, position: int, type_name: str, reason: str) -> None:
        super().__init__(f"projection {name} stopped at position {position} ({type_name}): {reason}")
        self.position = position
        self.type_name = type_name


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    state: str
    error: str | None
    error_position: int | None

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)


class ProjectionRunner:
    def __init__(
        self,
        db: Database,
        projection: Projection,
        *,
        batch: int = 500,
        idle_poll_s: float = 1.0,
        coalesce_s: float = 0.05,
    ) -> None:
        self.db = db
        self.store = EventStore(db)
        self.projection = projection
        self.batch = batch
        self.idle_poll_s = idle_poll_s
        self.applied = 0
        self.coalesce_s = coalesce_s
        self._checkpoint_known = False

    @property
    def checkpoint(self) -> str:
        return f"projection:{self.projection.name}"

    async def _ensure_checkpoint(self, conn: Conn) -> None:
        await conn.execute(
            "INSERT INTO checkpoints (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
            (self.checkpoint,),
        )

    async def step(self) -> tuple[int, bool]:
        """Apply the next batch: (events applied, whether more was there than one batch took)."""
        types = sorted(self.projection.types) if self.projection.types is not None else None
        async with self.db.connection() as conn:
            if not self._checkpoint_known:
                await self._ensure_checkpoint(conn)
                self._checkpoint_known = True
            async with conn.transaction():
                # The checkpoint (locked: replicas take turns) and the log's head, in one round trip.
                # The commit does not wait for the disk: what a projection writes is rebuilt from the
                # log, and its rows and checkpoint commit together, so a crash loses at most its
                # last batches, which it applies again (see decisions.md).
                row = await (
                    await conn.execute(
                        "SELECT position, state, (SELECT coalesce(max(global_position), 0) FROM events), "
                        "set_config('synchronous_commit', 'off', true) "
                        "FROM checkpoints WHERE name = %s FOR UPDATE",
                        (self.checkpoint,),
                    )
                ).fetchone()
                assert row is not None
                position, state, head = int(row[0]), row[1], int(row[2])
                if state == "stalled":
                    return 0, False
                if head <= position:
                    metrics.PROJECTION_LAG.labels(self.projection.name).set(0)
                    return 0, False
                events = [
                    e
                    for e in await self.store.read_all(position, self.batch, types=types, conn=conn)
                    if e.global_position <= head
                ]
                self.projection.begin_batch()
                for event in events:
                    await self._apply(conn, event)
                await self.projection.end_batch(conn)
                # With a type filter, positions between matching events hold nothing for us:
                # jump to the head seen in this snapshot (nothing below it can still appear).
                new_position = events[-1].global_position if len(events) == self.batch else head
                await conn.execute(
                    "UPDATE checkpoints SET position = %s, updated_at = now() WHERE name = %s",
                    (new_position, self.checkpoint),
                )
        metrics.PROJECTION_LAG.labels(self.projection.name).set(max(0, head - new_position))
        self.applied += len(events)
        return len(events), new_position < head

    async def _apply(self, conn: Conn, event: RecordedEvent) -> None:
        if self.projection.types is None and event.type not in EVENT_TYPES:
            raise ProjectionStalled(
                self.projection.name, event.global_position, event.type, "unknown event type"
            )
        try:
            message = decode(event)
        except (UnknownEventType, MalformedEvent) as exc:
            raise ProjectionStalled(
                self.projection.name, event.global_position, event.type, str(exc)
            ) from exc
        await self.projection.apply(conn, event, message)

    async def _mark_stalled(self, exc: ProjectionStalled) -> None:
        log.error("%s", exc)
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE checkpoints SET state = 'stalled', error = %s, error_position = %s, "
                "updated_at = now() "
                "WHERE name = %s",
                (str(exc), exc.position, self.checkpoint),
            )

    async def catch_up(self) -> int:
        """Apply everything up to the head as of the last batch; returns events applied. Raises
        when stalled. (A batch that reached the head it saw ends the catch-up: asking again at
        once would mostly find the few events appended meanwhile — the next wake-up takes them.)"""
        total = 0
        while True:
            try:
                applied, more = await self.step()
            except ProjectionStalled as exc:
                await self._mark_stalled(exc)
                raise
            total += applied
            if not more:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        waker = Waker(self.db, self.store.channel)
        await waker.start()
        try:
            while not stop.is_set():
                try:
                    applied = await self.catch_up()
                except ProjectionStalled:
                    # Stay stopped until an operator resumes or rebuilds; keep checking rarely.
                    await _wait(stop, 30.0)
                    continue
                except Exception as exc:
                    log.warning(
                        "projection %s paused after %s: %s", self.projection.name, type(exc).__name__, exc
                    )
                    await _wait(stop, 1.0)
                    continue
                if applied >= BUSY_BATCH:
                    # Under load, let the appends that follow gather into one batch: one
                    # transaction for many events instead of one per event, for a few tens of
                    # milliseconds of lag. A trickle is applied as soon as it is announced.
                    await _wait(stop, self.coalesce_s)
                await waker.wait(self.idle_poll_s)
        finally:
            await waker.stop()

    async def rebuild(self) -> int:
        """Empty the read model and replay the whole log into it."""
        async with self.db.transaction() as conn:
            await self._ensure_checkpoint(conn)
            await conn.execute("SELECT 1 FROM checkpoints WHERE name = %s FOR UPDATE", (self.checkpoint,))
            for table in self.projection.tables:
                await conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
            await conn.execute(
                "UPDATE checkpoints SET position = 0, state = 'running', error = NULL, "
                "error_position = NULL, "
                "updated_at = now() WHERE name = %s",
                (self.checkpoint,),
            )
        return await self.catch_up()

    async def resume(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE checkpoints SET state = 'running', error = NULL, error_position = NULL "
                "WHERE name = %s",
                (self.checkpoint,),
            )

    async def status(self) -> ProjectionStatus:
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT position, state, error, error_position FROM checkpoints WHERE name = %s",
                    (self.checkpoint,),
                )
            ).fetchone()
            head_row = await (
                await conn.execute("SELECT coalesce(max(global_position), 0) FROM events")
            ).fetchone()
        head = int(head_row[0]) if head_row else 0
        if row is None:
            return ProjectionStatus(self.projection.name, 0, head, "new", None, None)
        return ProjectionStatus(self.projection.name, int(row[0]), head, row[1], row[2], row[3])


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
