"""Sending client webhooks: signed POSTs, retried with backoff for hours, every attempt recorded.

Deliveries wait in a lease-based work queue (`gateway_webhook_jobs`): replicas share the work, a
sender that dies loses nothing (its lease expires and another one tries). A receiver may
therefore get one delivery more than once; the `webhook-id` header stays the same across
attempts so it can tell. URLs are fetched through the SSRF guard: a webhook can never make the
gateway call into its own network, and a redirect counts as a failed attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aigen import metrics
from aigen.db.pool import Database
from aigen.eventstore.store import Waker
from aigen.netguard import NetGuard, NetGuardError
from aigen.workqueue import Job, WorkQueue

from services.gateway.webhooks import next_delay, signed_headers

log = logging.getLogger("aigen.gateway.webhooks")

SecretOf = Callable[[str | None], Awaitable[str | None]]


def safe_url(url: str) -> str:
    """A webhook URL for the log: no query string or credentials (they may carry tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    def __init__(
        self,
        db: Database,
        jobs: WorkQueue,
        guard: NetGuard,
        secret_of: SecretOf,
        *,
        schedule: Sequence[float],
        concurrency: int = 32,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.guard = guard
        self.secret_of = secret_of
        self.schedule = tuple(schedule)
        self.concurrency = concurrency
        self.clock = clock
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        waker = Waker(self.db, self.jobs.channel)
        await waker.start()
        running: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                free = self.concurrency - len(running)
                try:
                    jobs = await self.jobs.claim(free) if free > 0 else []
                except Exception as exc:
                    log.warning("webhook queue unavailable (%s); retrying", type(exc).__name__)
                    jobs = []
                    await asyncio.sleep(1.0)
                for job in jobs:
                    task = asyncio.create_task(self._guarded(job))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if jobs and len(running) < self.concurrency:
                    continue
                if free <= 0:
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    continue
                wait: float | None = 1.0
                with contextlib.suppress(Exception):
                    wait = await self.jobs.seconds_until_next()
                await waker.wait(1.0 if wait is None else min(1.0, max(0.01, wait)))
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            await waker.stop()

    async def _guarded(self, job: Job) -> None:
        try:
            await self.deliver(job)
        except Exception as exc:
            log.warning("webhook delivery %s failed inside the gateway: %s", job.key, exc, exc_info=True)
            with contextlib.suppress(Exception):
                await self.jobs.release(job.key, delay_s=5.0)

    async def deliver(self, job: Job) -> None:
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT key_id, url, body, attempts, status, task_id, event_type "
                    "FROM gateway_webhook_deliveries WHERE id = %s",
                    (job.key,),
                )
            ).fetchone()
        if row is None or row[4] != "pending":
            async with self.db.transaction() as conn:
                await self.jobs.complete(conn, job.key)
            return
        key_id, url, body, attempts, _, task_id, event_type = row
        secret = await self.secret_of(key_id)
        attempt = attempts + 1
        if secret is None:
            outcome = Outcome(None, "the API key of this task no longer exists", 0.0)
        else:
            outcome = await self._post(url, job.key, secret, body.encode())
        delay = None if outcome.ok else next_delay(self.schedule, attempt)
        status = "delivered" if outcome.ok else ("pending" if delay is not None else "failed")
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO gateway_webhook_attempts (delivery_id, attempt, status_code, error, "
                "duration_ms) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (job.key, attempt, outcome.status_code, outcome.error, outcome.duration_ms),
            )
            await conn.execute(
                "UPDATE gateway_webhook_deliveries SET attempts = %s, status = %s, last_status_code = %s, "
                "last_error = %s, next_attempt_at = CASE WHEN %s::float8 IS NULL THEN NULL "
                "ELSE now() + make_interval(secs => %s::float8) END, "
                "finished_at = CASE WHEN %s = 'pending' THEN NULL ELSE now() END WHERE id = %s",
                (attempt, status, outcome.status_code, outcome.error, delay, delay, status, job.key),
            )
            if delay is None:
                await self.jobs.complete(conn, job.key)
            else:
                await self.jobs.reschedule(conn, job.key, delay_s=delay)
        metrics.WEBHOOK_DELIVERIES.labels("client", "delivered" if outcome.ok else "failed_attempt").inc()
        where = safe_url(url)
        if outcome.ok:
            self.sent += 1
            log.info(
                "webhook %s (%s, task %s) delivered to %s, attempt %d",
                job.key,
                event_type,
                task_id,
                where,
                attempt,
            )
        elif delay is not None:
            log.warning(
                "webhook %s to %s failed (attempt %d: %s); next attempt in %.0fs",
                job.key, where, attempt, outcome.error or f"HTTP {outcome.status_code}", delay,
            )  # fmt: skip
        else:
            log.error(
                "webhook %s to %s failed for good after %d attempts (last: %s)",
                job.key, where, attempt, outcome.error or f"HTTP {outcome.status_code}",
            )  # fmt: skip

    async def _post(self, url: str, message_id: str, secret: str, body: bytes) -> Outcome:
        headers = signed_headers(secret, message_id, int(self.clock()), body)
        headers["user-agent"] = "aigen-webhooks/1"
        started = time.perf_counter()
        try:
            async with self.guard.stream(url, method="POST", headers=headers, content=body) as response:
                status: int | None = response.status_code
                error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except NetGuardError as exc:
            status, error = None, exc.reason
        return Outcome(status, error, (time.perf_counter() - started) * 1000.0)


async def list_deliveries(
    db: Database, *, task_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Deliveries with their attempts, newest first (for the admin API)."""
    where, params = ("task_id = %s", [task_id]) if task_id else ("true", [])
    async with db.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT id, task_id, key_id, url, event_type, status, attempts, last_status_code, "
                "last_error, "
                f"created_at, next_attempt_at, finished_at FROM gateway_webhook_deliveries WHERE {where} "
                "ORDER BY created_at DESC LIMIT %s",
                [*params, limit],
            )
        ).fetchall()
        ids = [r[0] for r in rows]
        attempts = await (
            await conn.execute(
                "SELECT delivery_id, attempt, attempted_at, status_code, error, duration_ms "
                "FROM gateway_webhook_attempts WHERE delivery_id = ANY(%s) ORDER BY delivery_id, attempt",
                (ids,),
            )
        ).fetchall()
    by_delivery: dict[Any, list[dict[str, Any]]] = {}
    for delivery_id, attempt, at, code, error, duration in attempts:
        by_delivery.setdefault(delivery_id, []).append(
            {
                "attempt": attempt,
                "at": _iso(at),
                "statusCode": code,
                "error": error,
                "durationMs": round(duration, 1),
            }
        )
    return [
        {
            "id": str(r[0]),
            "taskId": r[1],
            "keyId": r[2],
            "url": safe_url(r[3]),
            "eventType": r[4],
            "status": r[5],
            "attempts": r[6],
            "lastStatusCode": r[7],
            "lastError": r[8],
            "createdAt": _iso(r[9]),
            "nextAttemptAt": _iso(r[10]),
            "finishedAt": _iso(r[11]),
            "attemptLog": by_delivery.get(r[0], []),
        }
        for r in rows
    ]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
