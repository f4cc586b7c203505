"""Append to and read from the event log.

Ordering rule (why a tailing reader never skips a late-committing transaction): an append takes
its global positions from a single counter row (`event_head`), updating it inside the statement
that inserts the events. The row lock is held until the append commits, so the next append can
only take positions after the previous one has committed and become visible: positions grow in
commit order. A reader that has seen position P can ask for `> P` and will never later find a
smaller position appear. A rolled-back append also rolls back the counter: no gaps. Reads take no
lock, so readers never slow writers.

Optimistic concurrency: the caller names the version it expects the stream to be at; any other
version raises `ConcurrencyError` and nothing is written. The unique (stream_id, version) key is
the backstop that keeps versions gap-free even against writers that bypass this module.

One statement does it all — counter, version check, insert, request record, notification — so the
counter row is locked from that statement to the commit that follows it: one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from aigen.db.pool import Database
from aigen.errors import Conflict
from aigen.eventstore.listener import listener

log = logging.getLogger("aigen.eventstore")

ANY_VERSION = -1

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


COLUMNS = "global_position, event_id, stream_id, version, type, payload, metadata, recorded_at"

CONFLICT = "AG409"  # SQLSTATE raised for a version mismatch
DUPLICATE = "AG208"  # SQLSTATE raised when the request id was appended before

# The whole append. In order of dependency (which is the order PostgreSQL must follow):
# the request id is checked, the stream's version compared, the counter row locked and advanced,
# the events inserted at the positions taken, the request recorded, listeners notified with
# "<last position> <stream id>". A refusal raises (events_refuse), aborting the transaction.
# The statement reads the stream's version from its own snapshot, taken before it waited for the
# counter row; an ANY_VERSION append asks again once it holds the row (events_version_now), so
# appends to one busy stream queue up behind each other instead of colliding on a version.
_APPEND_SQL = """
WITH prior AS (
    SELECT stream_id, first_version, last_version, first_position, last_position
    FROM event_requests WHERE %(request)s::text IS NOT NULL AND request_id = %(request)s
), cur AS (
    SELECT coalesce(max(version), 0) AS v FROM events WHERE stream_id = %(stream)s
), checked AS (
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM prior)
            THEN events_refuse('AG208', (SELECT row_to_json(prior)::text FROM prior))
        WHEN %(expected)s <> %(any)s AND cur.v <> %(expected)s
            THEN events_refuse('AG409', cur.v::text)
        ELSE 0 END AS refused, cur.v
    FROM cur
), head AS (
    UPDATE event_head SET position = position + %(count)s
    FROM checked WHERE checked.refused = 0
    RETURNING position - %(count)s AS base,
              CASE WHEN %(expected)s = %(any)s THEN events_version_now(%(stream)s) ELSE checked.v END AS v
), ins AS (
    INSERT INTO events (global_position, event_id, stream_id, version, type, payload, metadata)
    SELECT head.base + e.ord, e.event_id, %(stream)s, head.v + e.ord, e.type, e.payload, e.metadata
    FROM head, unnest(%(ids)s::uuid[], %(types)s::text[], %(payloads)s::bytea[], %(metas)s::jsonb[])
         WITH ORDINALITY AS e(event_id, type, payload, metadata, ord)
    RETURNING global_position, version
), req AS (
    INSERT INTO event_requests
        (request_id, stream_id, first_version, last_version, first_position, last_position)
    SELECT %(request)s, %(stream)s, min(version), max(version), min(global_position), max(global_position)
    FROM ins HAVING %(request)s::text IS NOT NULL
    RETURNING 1
)
SELECT min(version), max(version), min(global_position), max(global_position),
       pg_notify(%(channel)s, max(global_position)::text || ' ' || %(stream)s),
       (SELECT count(*) FROM req)
FROM ins
"""


class _RequestTaken(Exception):
    """Another append recorded the same request id while this one ran."""


def _result(stream_id: str, row: Any) -> AppendResult:
    assert row is not None
    return AppendResult(stream_id, int(row[0]), int(row[1]), int(row[2]), int(row[3]))


# The common case — one event, no request id — without arrays or request bookkeeping: the same
# checks and order, at about twice the rate of the general statement.
_APPEND_ONE_SQL = """
WITH cur AS (
    SELECT coalesce(max(version), 0) AS v FROM events WHERE stream_id = %(stream)s
), checked AS (
    SELECT CASE WHEN %(expected)s <> %(any)s AND cur.v <> %(expected)s
                THEN events_refuse('AG409', cur.v::text) ELSE 0 END AS refused, cur.v
    FROM cur
), head AS (
    UPDATE event_head SET position = position + 1
    FROM checked WHERE checked.refused = 0
    RETURNING position AS p,
              CASE WHEN %(expected)s = %(any)s THEN events_version_now(%(stream)s) ELSE checked.v END + 1 AS v
), ins AS (
    INSERT INTO events (global_position, event_id, stream_id, version, type, payload, metadata)
    SELECT head.p, %(id)s, %(stream)s, head.v, %(type)s, %(payload)s, %(meta)s FROM head
    RETURNING global_position, version
)
SELECT version, version, global_position, global_position,
       pg_notify(%(channel)s, global_position::text || ' ' || %(stream)s)
FROM ins
"""


# Many streams at once (group commit): every stream's version checked against what its caller
# expected, then one counter update for all the events, one insert, one notification per stream.
# A single mismatch refuses the whole statement, naming every mismatched stream in the detail as
# "<stream id>=<actual version>" separated by newlines; nothing is written. Appends that carry a
# request id are recorded like `append`'s; one whose request id was appended before refuses the
# whole statement too (AG208, the request ids in the detail).
_APPEND_MANY_SQL = """
WITH item AS (
    SELECT * FROM unnest(%(streams)s::text[], %(expected)s::int[], %(requests)s::text[])
                  WITH ORDINALITY AS i(stream_id, expected, request, idx)
), cur AS (
    SELECT item.idx, item.stream_id, item.expected, item.request,
           coalesce((SELECT max(version) FROM events e WHERE e.stream_id = item.stream_id), 0) AS v
    FROM item
), prior AS (
    SELECT request_id FROM event_requests WHERE request_id = ANY(%(requests)s::text[])
), checked AS (
    SELECT CASE WHEN EXISTS (SELECT 1 FROM prior)
                THEN events_refuse('AG208', (SELECT string_agg(request_id, E'\\n') FROM prior))
                WHEN EXISTS (SELECT 1 FROM cur WHERE cur.v <> cur.expected)
                THEN events_refuse('AG409', (SELECT string_agg(stream_id || '=' || v, E'\\n')
                                             FROM cur WHERE cur.v <> cur.expected))
                ELSE 0 END AS refused
), head AS (
    UPDATE event_head SET position = position + %(count)s
    FROM checked WHERE checked.refused = 0
    RETURNING position - %(count)s AS base
), ins AS (
    INSERT INTO events (global_position, event_id, stream_id, version, type, payload, metadata)
    SELECT head.base + e.ord, e.event_id, cur.stream_id, cur.v + e.step, e.type, e.payload, e.metadata
    FROM head,
         unnest(%(items)s::int[], %(steps)s::int[], %(ids)s::uuid[], %(types)s::text[],
                %(payloads)s::bytea[], %(metas)s::jsonb[])
         WITH ORDINALITY AS e(item, step, event_id, type, payload, metadata, ord)
         JOIN cur ON cur.idx = e.item
    RETURNING global_position, version, stream_id
), req AS (
    INSERT INTO event_requests
        (request_id, stream_id, first_version, last_version, first_position, last_position)
    SELECT cur.request, ins.stream_id, min(ins.version), max(ins.version),
           min(ins.global_position), max(ins.global_position)
    FROM ins JOIN cur ON cur.stream_id = ins.stream_id
    WHERE cur.request IS NOT NULL
    GROUP BY cur.request, ins.stream_id
)
SELECT stream_id, min(version), max(version), min(global_position), max(global_position),
       pg_notify(%(channel)s, max(global_position)::text || ' ' || stream_id)
FROM ins GROUP BY stream_id
"""


@dataclass(frozen=True)
class StreamAppend:
    """One stream's part of `EventStore.append_many`."""

    stream_id: str
    expected_version: int
    events: Sequence[NewEvent]
    request_id: str | None = None  # as `append`'s: recorded, and refused if appended before


class ManyDuplicate(Exception):
    """`append_many` refused: a request id among its appends was appended before (or is being
    appended by a transaction that committed first). Nothing was written; `append` one by one
    tells which appends are replays."""

    def __init__(self, request_ids: Sequence[str]) -> None:
        super().__init__(", ".join(request_ids) or "a request id was taken meanwhile")
        self.request_ids = list(request_ids)


class ManyConflict(ConcurrencyError):
    """`append_many` refused: these streams were not at the versions expected (stream → actual)."""

    def __init__(self, versions: Mapping[str, int]) -> None:
        first = next(iter(versions), "")
        super().__init__(first, -1, versions.get(first, -1))
        self.versions = dict(versions)


def _refusal(
    exc: psycopg.Error, stream_id: str, expected: int
) -> ConcurrencyError | AppendResult | _RequestTaken | None:
    """The meaning of an append's refusal: a version conflict, or a request appended before."""
    state = exc.sqlstate or ""
    detail = exc.diag.message_detail or ""
    if state == CONFLICT:
        return ConcurrencyError(stream_id, expected, int(detail) if detail.isdigit() else -1)
    if state == DUPLICATE:
        prior = json.loads(detail)
        return AppendResult(
            prior["stream_id"],
            prior["first_version"],
            prior["last_version"],
            prior["first_position"],
            prior["last_position"],
            duplicate=True,
        )
    if isinstance(exc, psycopg.errors.UniqueViolation):
        constraint = exc.diag.constraint_name or ""
        if constraint == "events_stream_version":
            # A concurrent append took this version after our statement's snapshot was taken.
            return ConcurrencyError(stream_id, expected, -1)
        if constraint == "event_requests_pkey":
            return _RequestTaken()
    return None


def _event_arrays(events: Sequence[NewEvent]) -> dict[str, list[Any]]:
    """The events as the column arrays the array statements unnest."""
    return {
        "ids": [e.event_id for e in events],
        "types": [e.type for e in events],
        "payloads": [e.payload for e in events],
        "metas": [Jsonb(dict(e.metadata)) for e in events],
    }


def _many_refusal(exc: psycopg.Error) -> ManyConflict | ManyDuplicate | None:
    if exc.sqlstate == DUPLICATE:
        return ManyDuplicate((exc.diag.message_detail or "").splitlines())
    if isinstance(exc, psycopg.errors.UniqueViolation) and exc.diag.constraint_name == "event_requests_pkey":
        return ManyDuplicate([])  # a concurrent append recorded one of the request ids first
    if exc.sqlstate == CONFLICT:
        actual: dict[str, int] = {}
        for line in (exc.diag.message_detail or "").splitlines():
            stream, _, version = line.rpartition("=")
            actual[stream] = int(version) if version.isdigit() else -1
        return ManyConflict(actual)
    if (
        isinstance(exc, psycopg.errors.UniqueViolation)
        and exc.diag.constraint_name == "events_stream_version"
    ):
        return ManyConflict({})  # a concurrent append took a version after the snapshot
    return None


def recorded(row: TupleRow) -> RecordedEvent:
    """A row of `COLUMNS` as a RecordedEvent."""
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
        ANY_VERSION skips the check. With `conn`, the append joins the caller's open
        transaction (so an effect and its events commit together): the counter row stays locked
        until that transaction ends, so make the append the last statement before its commit."""
        if not events:
            raise ValueError("append needs at least one event")
        statement, params = self._statement(stream_id, expected_version, events, request_id)
        try:
            if conn is not None and request_id is None:
                row = await (await conn.execute(statement, params)).fetchone()
            elif conn is not None:
                # A savepoint: a refused request must leave the caller's transaction usable.
                async with conn.transaction():
                    row = await (await conn.execute(statement, params)).fetchone()
            else:
                # Autocommit: the statement is its own transaction, so the position counter is
                # locked only while it runs and commits — one round trip, no BEGIN/COMMIT.
                async with self.db.connection() as own:
                    row = await (await own.execute(statement, params)).fetchone()
        except psycopg.Error as exc:
            refused = _refusal(exc, stream_id, expected_version)
            if refused is None:
                raise
            if isinstance(refused, _RequestTaken):
                if conn is not None:
                    return await self._prior(conn, request_id or "")
                async with self.db.connection() as fresh:
                    return await self._prior(fresh, request_id or "")
            if isinstance(refused, AppendResult):
                return refused
            raise refused from None
        return _result(stream_id, row)

    async def append_many(
        self,
        appends: Sequence[StreamAppend],
        *,
        conn: Conn | None = None,
        alongside: Callable[[Conn], Awaitable[None]] | None = None,
    ) -> list[AppendResult]:
        """Append to many streams in one statement: all or nothing (group commit).

        Each stream must be named once and with an explicit expected version (0 for a new one).
        If any stream is not at its expected version, nothing is written and `ManyConflict` names
        every such stream; if any request id was appended before, nothing is written and
        `ManyDuplicate` names them. With `conn` the statement joins the caller's transaction, as
        `append`.

        Without `conn`, `alongside` runs the caller's own statements first in the same transaction
        (they must not read results: the connection is in pipeline mode). BEGIN, those statements,
        the append and COMMIT then go to the server together, so the log's position counter is
        held only while the server runs the append and commits — never while this process is
        busy elsewhere before sending the COMMIT."""
        if alongside is not None and conn is not None:
            raise ValueError("alongside is for the append's own transaction; with conn, run it yourself")
        if not appends:
            return []
        streams = [a.stream_id for a in appends]
        if len(set(streams)) != len(streams):
            raise ValueError("append_many names a stream more than once")
        if any(a.expected_version < 0 or not a.events for a in appends):
            raise ValueError("append_many needs an expected version and events for every stream")
        items: list[int] = []
        steps: list[int] = []
        events: list[NewEvent] = []
        for index, a in enumerate(appends, start=1):
            for step, event in enumerate(a.events, start=1):
                items.append(index)
                steps.append(step)
                events.append(event)
        requests = [a.request_id for a in appends if a.request_id is not None]
        if len(set(requests)) != len(requests):
            raise ValueError("append_many names a request id more than once")
        params = {
            "streams": streams,
            "expected": [a.expected_version for a in appends],
            "requests": [a.request_id for a in appends],
            "count": len(events),
            "items": items,
            "steps": steps,
            **_event_arrays(events),
            "channel": self.channel,
        }
        try:
            if conn is not None:
                rows = await (await conn.execute(_APPEND_MANY_SQL, params)).fetchall()
            elif alongside is None:
                async with self.db.connection() as own:
                    rows = await (await own.execute(_APPEND_MANY_SQL, params)).fetchall()
            else:
                async with self.db.connection() as own, own.pipeline():
                    async with own.transaction():
                        await alongside(own)
                        cursor = await own.execute(_APPEND_MANY_SQL, params)
                    rows = await cursor.fetchall()
        except psycopg.Error as exc:
            refused = _many_refusal(exc)
            if refused is None:
                raise
            raise refused from None
        by_stream = {row[0]: AppendResult(row[0], row[1], row[2], row[3], row[4]) for row in rows}
        return [by_stream[s] for s in streams]

    @staticmethod
    async def _prior(conn: Conn, request_id: str) -> AppendResult:
        row = await (
            await conn.execute(
                "SELECT stream_id, first_version, last_version, first_position, last_position "
                "FROM event_requests WHERE request_id = %s",
                (request_id,),
            )
        ).fetchone()
        if row is None:  # pragma: no cover - the request row was just reported taken
            raise RuntimeError(f"request {request_id!r} was reported taken but is not recorded")
        return AppendResult(row[0], row[1], row[2], row[3], row[4], duplicate=True)

    def _statement(
        self, stream_id: str, expected_version: int, events: Sequence[NewEvent], request_id: str | None
    ) -> tuple[str, dict[str, Any]]:
        if len(events) == 1 and request_id is None:
            event = events[0]
            return _APPEND_ONE_SQL, {
                "stream": stream_id,
                "expected": expected_version,
                "any": ANY_VERSION,
                "id": event.event_id,
                "type": event.type,
                "payload": event.payload,
                "meta": Jsonb(dict(event.metadata)),
                "channel": self.channel,
            }
        return _APPEND_SQL, {
            "stream": stream_id,
            "expected": expected_version,
            "any": ANY_VERSION,
            **_event_arrays(events),
            "request": request_id,
            "channel": self.channel,
            "count": len(events),
        }

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
                f"SELECT {COLUMNS} FROM events WHERE global_position > %s AND type = ANY(%s) "
                "ORDER BY global_position LIMIT %s"
            )
            params: tuple[Any, ...] = (after_position, list(types), limit)
        else:
            query = (
                f"SELECT {COLUMNS} FROM events WHERE global_position > %s ORDER BY global_position LIMIT %s"
            )
            params = (after_position, limit)
        if conn is not None:
            rows = await (await conn.execute(query, params)).fetchall()
        else:
            async with self.db.connection() as own:
                rows = await (await own.execute(query, params)).fetchall()
        return [recorded(r) for r in rows]

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
            f"SELECT {COLUMNS} FROM events WHERE stream_id = %s AND version >= %s AND version <= %s "
            "ORDER BY version",
            (stream_id, from_version, to_version if to_version is not None else 2**62),
        )
    ).fetchall()
    return [recorded(r) for r in rows]


class Waker:
    """Wakes log readers when something is appended (LISTEN/NOTIFY), with a polling fallback.

    A notification is a hint, not the data: readers always re-read from their checkpoint, so a
    lost notification only delays them until the next poll. The process's readers of one channel
    share one listening connection (`listener.py`).
    """

    def __init__(self, db: Database, channel: str) -> None:
        self.db = db
        self.channel = channel
        self._event = asyncio.Event()
        self._unsubscribe: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        self._unsubscribe = listener(self.db, self.channel).subscribe(self._heard)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            await unsubscribe()

    async def wait(self, timeout: float) -> None:
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()

    def poke(self) -> None:
        self._event.set()

    def _heard(self, payloads: Sequence[str]) -> None:
        self._event.set()


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
