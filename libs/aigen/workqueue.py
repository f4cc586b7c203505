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
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from aigen.db.pool import Database
from aigen.eventstore.store import Conn

log = logging.getLogger("aigen.workqueue")


@dataclass(frozen=True)
class Job:
    key: str
    due_at: datetime
    claimed_at: datetime
    claims: int
    attempts: int
    state: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


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
        conflict = (
            sql.SQL("DO UPDATE SET due_at = EXCLUDED.due_at, state = EXCLUDED.state, claims = 0")
            if replace
            else sql.SQL("DO NOTHING")
        )
        await conn.execute(
            sql.SQL(
                "INSERT INTO {} (key, due_at, state) VALUES (%s, now() + make_interval(secs => %s), %s) "
                "ON CONFLICT (key) {}"
            ).format(self.table, conflict),
            (key, delay_s, Jsonb(dict(state or {}))),
        )
        await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, key))

    async def claim(self, limit: int) -> list[Job]:
        """Lease up to `limit` due jobs; poison jobs are dead-lettered instead of returned."""
        async with self.db.transaction() as conn:
            rows = await (
                await conn.execute(
                    sql.SQL(
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
                    ).format(t=self.table),
                    (self.owner, self.lease_s, limit),
                )
            ).fetchall()
            jobs: list[Job] = []
            for key, due_at, now, claims, attempts, state, created_at in rows:
                if claims > self.max_claims:
                    await self._dead_letter(conn, key, claims, state)
                    continue
                jobs.append(Job(key, due_at, now, claims, attempts, state or {}, created_at))
            return jobs

    async def _dead_letter(self, conn: Conn, key: str, claims: int, state: Any) -> None:
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
        await conn.execute(sql.SQL("DELETE FROM {} WHERE key = %s").format(self.table), (key,))

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
        cursor = await conn.execute(
            sql.SQL(
                "UPDATE {} SET due_at = now() + make_interval(secs => %s), lease_owner = NULL, "
                "lease_until = NULL, claims = 0, attempts = attempts + %s, "
                "state = coalesce(%s, state) WHERE key = %s AND lease_owner = %s"
            ).format(self.table),
            (
                delay_s,
                1 if count_attempt else 0,
                Jsonb(dict(state)) if state is not None else None,
                key,
                self.owner,
            ),
        )
        return cursor.rowcount == 1

    async def complete(self, conn: Conn, key: str) -> bool:
        cursor = await conn.execute(
            sql.SQL("DELETE FROM {} WHERE key = %s AND lease_owner = %s").format(self.table),
            (key, self.owner),
        )
        return cursor.rowcount == 1

    async def remove(self, conn: Conn, key: str) -> None:
        """Delete whoever holds it (the work is no longer wanted)."""
        await conn.execute(sql.SQL("DELETE FROM {} WHERE key = %s").format(self.table), (key,))

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

    async def extend(self, key: str) -> bool:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                sql.SQL(
                    "UPDATE {} SET lease_until = now() + make_interval(secs => %s) "
                    "WHERE key = %s AND lease_owner = %s"
                ).format(self.table),
                (self.lease_s, key, self.owner),
            )
            return cursor.rowcount == 1

    @contextlib.asynccontextmanager
    async def held(self, key: str) -> AsyncIterator[None]:
        """Keep the lease on `key` alive while the block runs (a provider call can outlast a
        lease; a worker that dies stops renewing, and the job returns within one lease)."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease_s / 3)
                with contextlib.suppress(Exception):
                    if not await self.extend(key):
                        return

        keeper = asyncio.create_task(renew())
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

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
) -> None:
    """Claim due jobs and handle up to `concurrency` at once until `stop`; `wake` cuts idle waits
    short (set it when new work was enqueued in this process). Cancelling stops the jobs in hand;
    their leases lapse and another worker takes them over."""
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
