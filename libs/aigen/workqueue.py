"""Durable scheduled work in PostgreSQL: leases with SKIP LOCKED.

Why PostgreSQL and not a JetStream work queue: the outcome of a piece of work (an event appended
to a task stream) and the work's next schedule must change together. Here they are one
transaction — a poll that appended TaskProgressed has also moved its job to the next due time, or
neither happened. Scale-out comes from `FOR UPDATE SKIP LOCKED`: replicas claim disjoint jobs.

- A claim takes a lease (`lease_until`). A worker that dies loses nothing: when the lease expires
  the job is claimable again (redelivery).
- Deferred retries set `due_at` in the future; nothing is claimed before it is due.
- `claims` counts claims since the last completed step. A job whose processing keeps crashing the
  worker (or raising) climbs past `max_claims` and is moved to `dead_letters`, so the queue keeps
  flowing.
- Only the lease holder may reschedule or complete a job: a worker that lost its lease (it was
  too slow) cannot overwrite the newer holder's decision.

Every queue is a table of its owning service with these columns (see its migration):
    key text PRIMARY KEY, due_at timestamptz, lease_owner text, lease_until timestamptz,
    claims int, attempts int, state jsonb, created_at timestamptz — and an index on due_at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from aigen.db.pool import Database
from aigen.eventstore.store import Conn
from aigen.groupcommit import GroupCommit

log = logging.getLogger("aigen.workqueue")

# Dead row versions a queue's table may hold before `WorkQueue.tidy` vacuums it (when they also
# outnumber the live rows), and how often a serving worker looks.
TIDY_MIN_DEAD = 2_000
TIDY_EVERY_S = 10.0
_DEAD_ROWS_SQL = "SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables WHERE relid = to_regclass(%s)"


@dataclass(frozen=True)
class Job:
    key: str
    due_at: datetime
    claimed_at: datetime
    claims: int
    attempts: int
    state: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    # This process's monotonic clock at the claim: with jobs claimed ahead of the workers (see
    # `serve(prefetch=…)`), how long a job waited in hand is `time.monotonic() - fetched_at`.
    fetched_at: float = 0.0


@dataclass(frozen=True)
class EventJob:
    """A job added because a consumer received an event (`WorkQueue.enqueue_for_event`)."""

    consumer: str
    event_id: uuid.UUID
    key: str
    delay_s: float
    state: Mapping[str, Any]


@dataclass(frozen=True)
class Reschedule:
    """One job's next due time, for `WorkQueue.reschedule_many`."""

    key: str
    delay_s: float
    state: Mapping[str, Any] | None = None
    count_attempt: bool = True


class WorkQueue:
    def __init__(
        self,
        db: Database,
        table: str,
        *,
        owner: str | None = None,
        lease_s: float = 60.0,
        max_claims: int = 5,
    ) -> None:
        self.db = db
        self.table = sql.Identifier(table)
        self.name = table
        self.owner = owner or f"{table}-{uuid.uuid4().hex[:10]}"
        self.lease_s = lease_s
        self.max_claims = max_claims
        self.channel = db.channel(f"{table}_wake")
        # Statements composed once: psycopg parses and caches a plain string, while a composed
        # query is rendered again on every call (these run many times a second).
        self._claim_sql = self._render(
            """
            UPDATE {t} SET lease_owner = %s,
                   lease_until = now() + make_interval(secs => %s),
                   claims = claims + 1
            WHERE key IN (
                SELECT key FROM {t}
                WHERE due_at <= now() AND (lease_until IS NULL OR lease_until < now())
                ORDER BY due_at
                LIMIT %s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING key, due_at, now(), claims, attempts, state, created_at
            """
        )
        self._reschedule_many_sql = self._render(
            "UPDATE {t} SET due_at = now() + make_interval(secs => v.delay), "
            "lease_owner = NULL, lease_until = NULL, claims = 0, "
            "attempts = {t}.attempts + v.counted, state = coalesce(v.state, {t}.state) "
            "FROM json_to_recordset(%s::json) AS v(key text, delay float8, counted int, state jsonb) "
            "WHERE {t}.key = v.key AND {t}.lease_owner = %s RETURNING {t}.key"
        )
        self._vacuum_sql = self._render("VACUUM (SKIP_LOCKED) {t}")
        insert = "INSERT INTO {t} (key, due_at, state) VALUES (%s, now() + make_interval(secs => %s), %s) "
        self._enqueue_sql = self._render(insert + "ON CONFLICT (key) DO NOTHING")
        self._enqueue_replacing_sql = self._render(
            insert
            + "ON CONFLICT (key) DO UPDATE SET due_at = EXCLUDED.due_at, state = EXCLUDED.state, claims = 0"
        )
        self._enqueue_many_sql = self._render(
            "INSERT INTO {t} (key, due_at, state) "
            "SELECT k, now() + make_interval(secs => %s), '{{}}'::jsonb FROM unnest(%s::text[]) AS k "
            "ON CONFLICT (key) DO NOTHING"
        )
        # The consumer's tracking rows and the jobs of the events that were new, in one statement
        # (atomic on its own); the notification goes out with its commit.
        self._enqueue_for_events_sql = self._render(
            "WITH v AS (SELECT * FROM unnest(%s::text[], %s::uuid[], %s::text[], %s::float8[], %s::text[]) "
            "  AS v(consumer, event_id, key, delay, state)), "
            "tracked AS (INSERT INTO consumer_tracking (consumer, event_id) "
            "  SELECT consumer, event_id FROM v ON CONFLICT DO NOTHING RETURNING consumer, event_id), "
            "added AS (INSERT INTO {t} (key, due_at, state) "
            "  SELECT v.key, now() + make_interval(secs => v.delay), v.state::jsonb "
            "  FROM v JOIN tracked USING (consumer, event_id) ON CONFLICT (key) DO NOTHING) "
            "SELECT coalesce(array_agg(event_id), '{{}}'), pg_notify(%s, '') FROM tracked"
        )
        self._complete_sql = self._render("DELETE FROM {t} WHERE key = %s AND lease_owner = %s")
        self._complete_many_sql = self._render("DELETE FROM {t} WHERE key = ANY(%s) AND lease_owner = %s")
        self._remove_sql = self._render("DELETE FROM {t} WHERE key = %s")
        # Grouped reschedules (`reschedule_soon`).
        self._reschedules: GroupCommit[Reschedule, bool] = GroupCommit(
            self._reschedule_batch, self._reschedule_one, key=lambda item: item.key
        )
        # Grouped enqueues of consumed events (`enqueue_for_event`).
        self._event_jobs: GroupCommit[EventJob, bool] = GroupCommit(
            self._enqueue_for_events, self._enqueue_for_event, key=lambda item: item.key
        )
        # Leases kept alive by `held` (key → how many blocks hold it), renewed together.
        self._held: dict[str, int] = {}
        self._keeper: asyncio.Task[None] | None = None

    async def enqueue(
        self,
        conn: Conn,
        key: str,
        *,
        delay_s: float = 0.0,
        state: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> None:
        """Add a job (in the caller's transaction). An existing job is kept unless `replace`."""
        await conn.execute(
            self._enqueue_replacing_sql if replace else self._enqueue_sql,
            (key, delay_s, Jsonb(dict(state or {}))),
        )
        # Workers in other processes LISTEN on this (webhook and alert senders); the dispatcher and
        # the poller also set their in-process `wake`.
        await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, key))

    def _render(self, template: str) -> str:
        """A statement on this queue's table (`{t}`), rendered to a plain string."""
        return sql.SQL(template).format(t=self.table).as_string(None)

    async def enqueue_many(self, conn: Conn, keys: Sequence[str], *, delay_s: float = 0.0) -> None:
        """Add jobs without state (in the caller's transaction); existing ones are kept. Reads no
        result, so it can run in a pipelined transaction (`EventStore.append_many(alongside=…)`)."""
        if keys:
            await conn.execute(self._enqueue_many_sql, (delay_s, list(keys)))
            await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, keys[0]))

    async def enqueue_for_event(
        self,
        consumer: str,
        event_id: uuid.UUID,
        key: str,
        *,
        delay_s: float = 0.0,
        state: Mapping[str, Any] | None = None,
    ) -> bool:
        """Add the job an event calls for, exactly once: the event is recorded as handled by
        `consumer` (its tracking row, as `Delivery.transaction()` writes it) in the same statement,
        so a redelivery adds nothing and answers False. An existing job is kept. Shared with the
        other enqueues waiting at the moment (group commit): a burst of events costs one statement
        per batch instead of a transaction each."""
        return await self._event_jobs.submit(EventJob(consumer, event_id, key, delay_s, dict(state or {})))

    async def _enqueue_for_events(self, items: Sequence[EventJob]) -> list[bool]:
        async with self.db.connection() as conn:
            cursor = await conn.execute(
                self._enqueue_for_events_sql,
                (
                    [item.consumer for item in items],
                    [item.event_id for item in items],
                    [item.key for item in items],
                    [item.delay_s for item in items],
                    [json.dumps(item.state) for item in items],
                    self.channel,
                ),
            )
            row = await cursor.fetchone()
        new = set(row[0]) if row is not None else set()
        return [item.event_id in new for item in items]

    async def _enqueue_for_event(self, item: EventJob) -> bool:
        return (await self._enqueue_for_events([item]))[0]

    async def complete_many(self, conn: Conn, keys: Sequence[str]) -> None:
        """`complete` for many jobs in one statement; reads no result (see `enqueue_many`)."""
        if keys:
            await conn.execute(self._complete_many_sql, (list(keys), self.owner))

    async def claim(self, limit: int) -> list[Job]:
        """Lease up to `limit` due jobs; poison jobs are dead-lettered instead of returned.

        The claim is one statement on its own (atomic without a transaction: one round trip).
        Dead-lettering is a second step; if the process dies between the two, the job keeps its
        claim count and the next claim dead-letters it."""
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    self._claim_sql,
                    (self.owner, self.lease_s, limit),
                )
            ).fetchall()
        fetched_at = time.monotonic()
        jobs: list[Job] = []
        poison: list[tuple[str, int, Any]] = []
        for key, due_at, now, claims, attempts, state, created_at in rows:
            if claims > self.max_claims:
                poison.append((key, claims, state))
                continue
            jobs.append(Job(key, due_at, now, claims, attempts, state or {}, created_at, fetched_at))
        if poison:
            async with self.db.transaction() as conn:
                for key, claims, state in poison:
                    await self._dead_letter(conn, key, claims, state)
        # Oldest due first, as the statement chose them (RETURNING keeps no order).
        jobs.sort(key=lambda job: job.due_at)
        return jobs

    async def _dead_letter(self, conn: Conn, key: str, claims: int, state: Any) -> None:
        deleted = await conn.execute(
            sql.SQL("DELETE FROM {} WHERE key = %s AND lease_owner = %s").format(self.table),
            (key, self.owner),
        )
        if deleted.rowcount != 1:
            return  # no longer ours (removed meanwhile): nothing to dead-letter
        log.error("%s: job %s failed %d times in a row; moved to dead_letters", self.name, key, claims - 1)
        await conn.execute(
            "INSERT INTO dead_letters (source, subject, deliveries, reason, payload) "
            "VALUES (%s, %s, %s, %s, %s)",
            (
                self.name,
                key,
                claims - 1,
                "processing failed on every claim",
                json.dumps(state or {}).encode(),
            ),
        )

    async def reschedule(
        self,
        conn: Conn,
        key: str,
        *,
        delay_s: float,
        state: Mapping[str, Any] | None = None,
        count_attempt: bool = True,
    ) -> bool:
        """Release the lease with a new due time (a completed step: claims reset). False if the
        lease was lost to someone else."""
        return key in await self.reschedule_many(conn, [Reschedule(key, delay_s, state, count_attempt)])

    async def reschedule_many(self, conn: Conn, items: Sequence[Reschedule]) -> set[str]:
        """`reschedule` for many jobs in one statement; the keys whose lease was still ours."""
        if not items:
            return set()
        # One JSON document rather than four arrays: json.dumps writes it in C, where psycopg
        # adapts array elements one by one in Python (about a third of the client CPU per
        # statement, docs/benchmarks.md).
        rows = await (
            await conn.execute(
                self._reschedule_many_sql,
                (
                    json.dumps(
                        [
                            {
                                "key": item.key,
                                "delay": item.delay_s,
                                "counted": 1 if item.count_attempt else 0,
                                "state": None if item.state is None else dict(item.state),
                            }
                            for item in items
                        ]
                    ),
                    self.owner,
                ),
            )
        ).fetchall()
        return {row[0] for row in rows}

    async def reschedule_soon(
        self,
        key: str,
        *,
        delay_s: float,
        state: Mapping[str, Any] | None = None,
        count_attempt: bool = True,
    ) -> bool:
        """`reschedule` in a statement of its own, shared with the other reschedules waiting at the
        same moment (group commit): while one statement runs, the next ones gather, so a busy
        worker pays one round trip for many jobs and an idle one waits for nobody. Returns when
        the new schedule is committed; False if the lease was lost to someone else."""
        return await self._reschedules.submit(Reschedule(key, delay_s, state, count_attempt))

    async def _reschedule_batch(self, items: Sequence[Reschedule]) -> list[bool]:
        async with self.db.connection() as conn:
            ours = await self.reschedule_many(conn, items)
        return [item.key in ours for item in items]

    async def _reschedule_one(self, item: Reschedule) -> bool:
        return (await self._reschedule_batch([item]))[0]

    async def complete(self, conn: Conn, key: str) -> bool:
        cursor = await conn.execute(self._complete_sql, (key, self.owner))
        return cursor.rowcount == 1

    async def remove(self, conn: Conn, key: str) -> None:
        """Delete whoever holds it (the work is no longer wanted)."""
        await conn.execute(self._remove_sql, (key,))

    async def release(self, key: str, *, delay_s: float) -> None:
        """Give a job back after a failure, keeping its claim count (poison detection)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                sql.SQL(
                    "UPDATE {} SET lease_owner = NULL, lease_until = NULL, "
                    "due_at = now() + make_interval(secs => %s) WHERE key = %s AND lease_owner = %s"
                ).format(self.table),
                (delay_s, key, self.owner),
            )

    async def extend_many(self, keys: Sequence[str]) -> set[str]:
        """Renew the leases on `keys`; the keys that were still ours."""
        if not keys:
            return set()
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    sql.SQL(
                        "UPDATE {} SET lease_until = now() + make_interval(secs => %s) "
                        "WHERE key = ANY(%s) AND lease_owner = %s RETURNING key"
                    ).format(self.table),
                    (self.lease_s, list(keys), self.owner),
                )
            ).fetchall()
        return {row[0] for row in rows}

    async def release_unstarted(self, keys: Sequence[str]) -> None:
        """Hand back jobs claimed but never started (a stopping worker's prefetched jobs): due
        as they were, claimable at once by anyone, and their claim not counted as a failure."""
        if not keys:
            return
        async with self.db.connection() as conn:
            await conn.execute(
                sql.SQL(
                    "UPDATE {} SET lease_owner = NULL, lease_until = NULL, claims = greatest(claims - 1, 0) "
                    "WHERE key = ANY(%s) AND lease_owner = %s"
                ).format(self.table),
                (list(keys), self.owner),
            )

    @contextlib.asynccontextmanager
    async def held(self, key: str) -> AsyncIterator[None]:
        """Keep the lease on `key` alive while the block runs (a provider call can outlast a
        lease; a worker that dies stops renewing, and the job returns within one lease).

        One keeper per queue renews every held lease in one statement every third of a lease,
        rather than a timer task per job: most blocks end long before the first renewal."""
        self.hold(key)
        try:
            yield
        finally:
            self.unhold(key)

    def hold(self, key: str) -> None:
        """Start keeping the lease on `key` alive (until as many `unhold` calls)."""
        self._held[key] = self._held.get(key, 0) + 1
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep())

    def unhold(self, key: str) -> None:
        left = self._held.get(key, 0) - 1
        if left > 0:
            self._held[key] = left
        else:
            self._held.pop(key, None)

    async def _keep(self) -> None:
        while self._held:
            await asyncio.sleep(self.lease_s / 3)
            keys = list(self._held)
            if not keys:
                return
            # A lease lost to someone else is simply not renewed (the statement checks the
            # owner); a failed renewal is tried again at the next round, within the lease.
            with contextlib.suppress(Exception):
                await self.extend_many(keys)

    async def seconds_until_next(self) -> float | None:
        """Time until the earliest job becomes claimable (None: the queue is empty)."""
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(
                    sql.SQL(
                        "SELECT extract(epoch FROM "
                        "min(greatest(due_at, coalesce(lease_until, due_at))) - now()) "
                        "FROM {}"
                    ).format(self.table)
                )
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return max(0.0, float(row[0]))

    async def tidy(self, *, min_dead: int = TIDY_MIN_DEAD) -> bool:
        """Vacuum the queue's table once its dead row versions outnumber its live rows (and
        `min_dead`); whether it did.

        Every check of a busy queue updates its row twice (the claim, the new due time), leaving
        thousands of dead row versions a second. PostgreSQL's autovacuum looks at a table once a
        minute at best, and some servers run with it off; meanwhile each claim walks its index
        through the dead versions and gets slower. A short VACUUM of this small table keeps the
        claim cheap. SKIP_LOCKED: a replica already vacuuming it makes this one return at once."""
        async with self.db.connection() as conn:
            row = await (await conn.execute(_DEAD_ROWS_SQL, (self.name,))).fetchone()
            if row is None or row[0] is None or row[0] < max(min_dead, row[1] or 0):
                return False
            await conn.execute(self._vacuum_sql)
        log.debug("%s: vacuumed %d dead row versions (%d live rows)", self.name, row[0], row[1] or 0)
        return True

    async def size(self) -> int:
        async with self.db.connection() as conn:
            row = await (await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self.table))).fetchone()
        return int(row[0]) if row else 0


async def serve(
    queue: WorkQueue,
    handle: Callable[[Job], Coroutine[Any, Any, None]],
    stop: asyncio.Event,
    *,
    concurrency: int,
    wake: asyncio.Event,
    batch: int = 200,
    idle_s: float = 0.5,
    on_claim: Callable[[Job], None] | None = None,
    prefetch: int = 0,
    tidy_every_s: float = TIDY_EVERY_S,
    tidy_min_dead: int = TIDY_MIN_DEAD,
) -> None:
    """Claim due jobs and handle up to `concurrency` at once until `stop`; `wake` cuts idle waits
    short (set it when new work was enqueued in this process). Cancelling stops the jobs in hand;
    their leases lapse and another worker takes them over.

    `prefetch` > 0 claims up to that many jobs ahead of the workers, in batches, so that a busy
    worker pays one claim per batch instead of one per freed slot (see `_serve_ahead`).

    Meanwhile the queue's table is vacuumed when dead row versions pile up (`WorkQueue.tidy`)."""
    tidying = asyncio.create_task(_tidy_until(queue, stop, tidy_every_s, tidy_min_dead))
    try:
        await _serve(
            queue,
            handle,
            stop,
            concurrency=concurrency,
            wake=wake,
            batch=batch,
            idle_s=idle_s,
            on_claim=on_claim,
            prefetch=prefetch,
        )
    finally:
        tidying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tidying


async def _tidy_until(queue: WorkQueue, stop: asyncio.Event, every_s: float, min_dead: int) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        if stop.is_set():
            return
        try:
            await queue.tidy(min_dead=min_dead)
        except Exception as exc:  # a missed round costs nothing; the next one tries again
            log.warning("%s: could not vacuum the queue's table (%s)", queue.name, exc)


async def _serve(
    queue: WorkQueue,
    handle: Callable[[Job], Coroutine[Any, Any, None]],
    stop: asyncio.Event,
    *,
    concurrency: int,
    wake: asyncio.Event,
    batch: int,
    idle_s: float,
    on_claim: Callable[[Job], None] | None,
    prefetch: int,
) -> None:
    if prefetch > 0:
        await _serve_ahead(
            queue,
            handle,
            stop,
            concurrency=concurrency,
            prefetch=prefetch,
            wake=wake,
            batch=batch,
            idle_s=idle_s,
            on_claim=on_claim,
        )
        return
    running: set[asyncio.Task[None]] = set()
    try:
        while not stop.is_set():
            free = concurrency - len(running)
            if free <= 0:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                continue
            jobs = await queue.claim(min(free, batch))
            for job in jobs:
                if on_claim is not None:
                    on_claim(job)
                task = asyncio.create_task(handle(job))
                running.add(task)
                task.add_done_callback(running.discard)
            if jobs:
                continue
            wait = await queue.seconds_until_next()
            timeout = idle_s if wait is None else min(idle_s, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), max(0.005, timeout))
            wake.clear()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


async def _serve_ahead(
    queue: WorkQueue,
    handle: Callable[[Job], Coroutine[Any, Any, None]],
    stop: asyncio.Event,
    *,
    concurrency: int,
    prefetch: int,
    wake: asyncio.Event,
    batch: int,
    idle_s: float,
    on_claim: Callable[[Job], None] | None,
) -> None:
    """`concurrency` long-lived workers take jobs from a local line that a claimer keeps between
    `prefetch / 2` and `prefetch` jobs long. Jobs in the line are leased like jobs in hand (the
    queue's keeper renews them), so a slow line cannot let a lease lapse and a job be checked twice;
    a stopping worker hands the line back at once instead of letting those leases run out."""
    line: asyncio.Queue[Job | None] = asyncio.Queue()
    low_water = max(1, prefetch // 2)
    refill = asyncio.Event()
    busy = 0
    unstarted: list[str] = []

    async def worker() -> None:
        nonlocal busy
        while True:
            job = await line.get()
            if job is None:
                return
            if stop.is_set():
                unstarted.append(job.key)  # stopping: no new work, hand it back
                queue.unhold(job.key)
                continue
            if line.qsize() < low_water:
                refill.set()
            busy += 1
            try:
                if on_claim is not None:
                    on_claim(job)
                await handle(job)
            except Exception:
                log.exception("%s: handling job %s failed", queue.name, job.key)
            finally:
                busy -= 1
                queue.unhold(job.key)

    def stopping(_: object) -> None:
        refill.set()
        wake.set()

    # The claimer's waits end as soon as `stop` is set.
    watch = asyncio.create_task(stop.wait())
    watch.add_done_callback(stopping)
    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        while not stop.is_set():
            room = concurrency + prefetch - busy - line.qsize()
            if line.qsize() >= low_water or room <= 0:
                refill.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(refill.wait(), idle_s)
                continue
            jobs = await queue.claim(min(batch, room))
            for job in jobs:
                queue.hold(job.key)
                line.put_nowait(job)
            if jobs:
                continue
            if line.qsize() or busy:
                # Work in hand: look again soon (anything due meanwhile), but not in a spin; the
                # earliest due time is a scan of the whole table, not worth it every time.
                timeout = 0.02
            else:
                wait = await queue.seconds_until_next()
                timeout = idle_s if wait is None else min(idle_s, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), max(0.005, timeout))
            wake.clear()
        while not line.empty():
            waiting = line.get_nowait()
            if waiting is not None:
                unstarted.append(waiting.key)
                queue.unhold(waiting.key)
        for _ in workers:
            line.put_nowait(None)
        await asyncio.gather(*workers, return_exceptions=True)
        with contextlib.suppress(Exception):
            await queue.release_unstarted(unstarted)
    finally:
        watch.cancel()
        for task in workers:
            task.cancel()
        await asyncio.gather(watch, *workers, return_exceptions=True)
