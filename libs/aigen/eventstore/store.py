"""Append to and read from the event log.

Ordering rule (why a tailing reader never skips a late-committing transaction): every append
takes `LOCK TABLE events IN EXCLUSIVE MODE` before it reads the stream's version and inserts.
The lock is held until commit, so appends are serialised: the next append can only be assigned
a global position after the previous one has committed and become visible. Positions therefore
grow in commit order. A reader that has seen position P can ask for `> P` and will never later
find a smaller position appearing. Rolled-back appends leave gaps; readers do not wait at gaps.
Reads take no lock (EXCLUSIVE does not conflict with SELECT), so readers never slow writers.

Optimistic concurrency: the caller names the version it expects the stream to be at; any other
version raises `ConcurrencyError` and nothing is written. The unique (stream_id, version) key is
the backstop that keeps versions gap-free even against writers that bypass this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from aigen.db.pool import Database
from aigen.errors import Conflict

log = logging.getLogger("aigen.eventstore")

ANY_VERSION = -1
LOCK_TIMEOUT = "10s"

Conn = psycopg.AsyncConnection[TupleRow]


class ConcurrencyError(Conflict):
    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id} is at version {actual}, not the expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class NewEvent:
    type: str
    payload: bytes
    metadata: Mapping[str, Any] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class RecordedEvent:
    global_position: int
    event_id: uuid.UUID
    stream_id: str
    version: int
    type: str
    payload: bytes
    metadata: Mapping[str, Any]
    recorded_at: datetime


@dataclass(frozen=True)
class AppendResult:
    stream_id: str
    first_version: int
    last_version: int
    first_position: int
    last_position: int
    duplicate: bool = False  # the request id had been appended before; nothing was written now


_COLUMNS = "global_position, event_id, stream_id, version, type, payload, metadata, recorded_at"

_LOCK_SQL = f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; LOCK TABLE events IN EXCLUSIVE MODE"

# Checks the expected version, inserts the events numbered after the stream's current version,
# records the request id and notifies listeners with "<last position> <stream id>" — or, when the
# version does not match, inserts nothing (the caller raises ConcurrencyError).
_APPEND_SQL = """
WITH cur AS (
    SELECT coalesce(max(version), 0) AS v FROM events WHERE stream_id = %(stream)s
), ok AS (
    SELECT v FROM cur WHERE %(expected)s = %(any)s OR v = %(expected)s
), ins AS (
    INSERT INTO events (event_id, stream_id, version, type, payload, metadata)
    SELECT e.event_id, %(stream)s, ok.v + e.ord, e.type, e.payload, e.metadata
    FROM ok, unnest(%(ids)s::uuid[], %(types)s::text[], %(payloads)s::bytea[], %(metas)s::jsonb[])
         WITH ORDINALITY AS e(event_id, type, payload, metadata, ord)
    ORDER BY e.ord
    RETURNING global_position, version
), req AS (
    INSERT INTO event_requests (request_id, stream_id, first_version, last_version, first_position, last_position)
    SELECT %(request)s, %(stream)s, min(version), max(version), min(global_position), max(global_position)
    FROM ins HAVING %(request)s::text IS NOT NULL AND count(*) > 0
    RETURNING 1
)
SELECT (SELECT v FROM cur), min(global_position), max(global_position), count(*),
       CASE WHEN count(*) > 0
            THEN pg_notify(%(channel)s, max(global_position)::text || ' ' || %(stream)s) END,
       (SELECT count(*) FROM req)
FROM ins
"""


def _recorded(row: TupleRow) -> RecordedEvent:
    return RecordedEvent(
        global_position=row[0],
        event_id=row[1],
        stream_id=row[2],
        version=row[3],
        type=row[4],
        payload=bytes(row[5]),
        metadata=row[6] or {},
        recorded_at=row[7],
    )


class EventStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.channel = db.channel("events")

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        request_id: str | None = None,
        conn: Conn | None = None,
    ) -> AppendResult:
        """Append atomically. `expected_version` 0 means "the stream must not exist yet";
        ANY_VERSION skips the check. With `conn`, the append joins the caller's transaction
        (so an effect and its events commit together)."""
        if not events:
            raise ValueError("append needs at least one event")
        if conn is None:
            async with self.db.transaction() as own:
                return await self._append(own, stream_id, expected_version, events, request_id)
        async with conn.transaction():
            return await self._append(conn, stream_id, expected_version, events, request_id)

    async def _append(
        self,
        conn: Conn,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        request_id: str | None,
    ) -> AppendResult:
        # Round trips matter here (an append is a few statements inside a held lock): the
        # version check, the insert, the request record and the notification are one statement.
        await conn.execute(_LOCK_SQL)
        if request_id is not None:
            row = await (
                await conn.execute(
                    "SELECT stream_id, first_version, last_version, first_position, last_position "
                    "FROM event_requests WHERE request_id = %s",
                    (request_id,),
                )
            ).fetchone()
            if row is not None:
                return AppendResult(row[0], row[1], row[2], row[3], row[4], duplicate=True)
        row = await (
            await conn.execute(
                _APPEND_SQL,
                {
                    "stream": stream_id,
                    "expected": expected_version,
                    "any": ANY_VERSION,
                    "ids": [e.event_id for e in events],
                    "types": [e.type for e in events],
                    "payloads": [e.payload for e in events],
                    "metas": [Jsonb(dict(e.metadata)) for e in events],
                    "request": request_id,
                    "channel": self.channel,
                },
            )
        ).fetchone()
        assert row is not None
        current, first_position, last_position, inserted = int(row[0]), row[1], row[2], int(row[3])
        if inserted == 0:
            raise ConcurrencyError(stream_id, expected_version, current)
        return AppendResult(stream_id, current + 1, current + inserted, first_position, last_position)

    @staticmethod
    async def _version(conn: Conn, stream_id: str) -> int:
        row = await (
            await conn.execute(
                "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = %s", (stream_id,)
            )
        ).fetchone()
        return int(row[0]) if row else 0

    async def stream_version(self, stream_id: str) -> int:
        async with self.db.connection() as conn:
            return await self._version(conn, stream_id)

    async def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        *,
        to_version: int | None = None,
        conn: Conn | None = None,
    ) -> list[RecordedEvent]:
        if conn is not None:
            return await read_stream(conn, stream_id, from_version, to_version)
        async with self.db.connection() as own:
            return await read_stream(own, stream_id, from_version, to_version)

    async def read_all(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        types: Sequence[str] | None = None,
        conn: Conn | None = None,
    ) -> list[RecordedEvent]:
        """Events after `after_position`, in global order (see the module docstring)."""
        if types:
            query = (
                f"SELECT {_COLUMNS} FROM events WHERE global_position > %s AND type = ANY(%s) "
                "ORDER BY global_position LIMIT %s"
            )
            params: tuple[Any, ...] = (after_position, list(types), limit)
        else:
            query = (
                f"SELECT {_COLUMNS} FROM events WHERE global_position > %s ORDER BY global_position LIMIT %s"
            )
            params = (after_position, limit)
        if conn is not None:
            rows = await (await conn.execute(query, params)).fetchall()
        else:
            async with self.db.connection() as own:
                rows = await (await own.execute(query, params)).fetchall()
        return [_recorded(r) for r in rows]

    async def head_position(self) -> int:
        async with self.db.connection() as conn:
            row = await (
                await conn.execute("SELECT coalesce(max(global_position), 0) FROM events")
            ).fetchone()
            return int(row[0]) if row else 0


async def read_stream(
    conn: Conn, stream_id: str, from_version: int = 1, to_version: int | None = None
) -> list[RecordedEvent]:
    """A stream's events from one version to another (inclusive), in order."""
    rows = await (
        await conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = %s AND version >= %s AND version <= %s "
            "ORDER BY version",
            (stream_id, from_version, to_version if to_version is not None else 2**62),
        )
    ).fetchall()
    return [_recorded(r) for r in rows]


class Waker:
    """Wakes log readers when something is appended (LISTEN/NOTIFY), with a polling fallback.

    A notification is a hint, not the data: readers always re-read from their checkpoint, so a
    lost notification only delays them until the next poll.
    """

    def __init__(self, db: Database, channel: str) -> None:
        self.db = db
        self.channel = channel
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name=f"listen:{self.channel}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()

    def poke(self) -> None:
        self._event.set()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.db.url, autocommit=True) as conn:
                    await conn.execute(f'LISTEN "{self.channel}"')
                    self._event.set()  # catch up on anything appended while we were not listening
                    async for _ in conn.notifies():
                        self._event.set()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                log.warning("event listener lost its connection (%s); retrying", type(exc).__name__)
                self._event.set()
                await asyncio.sleep(1.0)


async def iterate_all(
    store: EventStore, after_position: int = 0, batch: int = 1000
) -> AsyncIterator[RecordedEvent]:
    """Every event after a position, in order, batch by batch (for replays and tools)."""
    position = after_position
    while True:
        events = await store.read_all(position, batch)
        if not events:
            return
        for event in events:
            yield event
        position = events[-1].global_position
