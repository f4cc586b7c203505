"""Alerts leave the system: on NATS (`aigen.alerts.<rule>`) and to the configured webhooks.

`AlertFanout` is the handler of the `ops-alerts` consumer (AlertRaised / AlertResolved from the
events stream). It publishes the event's envelope to the alerts stream with `Nats-Msg-Id` = the
event id (a redelivery re-publishes into JetStream's duplicate window and is dropped), then, in
the same transaction as the consumer's tracking row, writes one delivery per webhook URL and
queues it. `AlertWebhookSender` works that queue: Slack-compatible JSON POSTed through the SSRF
guard, retried on the configured schedule, each attempt's outcome kept on the delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aigen import metrics
from aigen.bus import topology as topo
from aigen.bus.consumer import Delivery
from aigen.db.pool import Database
from aigen.eventstore.mapper import type_name
from aigen.eventstore.store import Conn, Waker
from aigen.netguard import NetGuard, NetGuardError
from aigen.v1 import ops_pb2
from aigen.workqueue import Job, WorkQueue
from nats.js import JetStreamContext

from services.ops.projections import alert_id

log = logging.getLogger("aigen.ops.alerts")

_RAISED = type_name(ops_pb2.AlertRaised)
_ICON = {"critical": ":rotating_light:", "warning": ":warning:"}


def safe_url(url: str) -> str:
    """A webhook URL fit for logs and listings: Slack-style URLs carry their secret in the path."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}/…"


def webhook_body(
    envelope_time: float,
    message: ops_pb2.AlertRaised | ops_pb2.AlertResolved,
    ident: str,
) -> dict[str, Any]:
    """Slack's incoming-webhook shape (`text`), with the alert as structured fields beside it."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(envelope_time))
    if isinstance(message, ops_pb2.AlertRaised):
        icon = _ICON.get(message.severity, ":warning:")
        text = f"{icon} [{message.severity.upper()}] {message.rule} · {message.subject}: {message.summary}"
        alert: dict[str, Any] = {
            "id": ident,
            "status": "raised",
            "rule": message.rule,
            "subject": message.subject,
            "severity": message.severity,
            "summary": message.summary,
            "value": message.value,
            "threshold": message.threshold,
            "details": dict(message.details),
            "at": at,
        }
    else:
        text = f":white_check_mark: [RESOLVED] {message.rule} · {message.subject}: {message.summary}"
        alert = {
            "id": ident,
            "status": "resolved",
            "rule": message.rule,
            "subject": message.subject,
            "summary": message.summary,
            "value": message.value,
            "at": at,
        }
    return {"text": text, "alert": alert}


class AlertFanout:
    def __init__(
        self,
        *,
        js: JetStreamContext,
        topology: topo.Topology,
        jobs: WorkQueue,
        webhooks: Sequence[str],
    ) -> None:
        self.js = js
        self.topology = topology
        self.jobs = jobs
        self.webhooks = tuple(webhooks)
        self.published = 0

    async def __call__(self, delivery: Delivery) -> None:
        message = delivery.message
        if not isinstance(message, ops_pb2.AlertRaised | ops_pb2.AlertResolved):
            return
        envelope = delivery.envelope
        await self.js.publish(
            self.topology.alert_subject(message.rule),
            envelope.SerializeToString(),
            stream=self.topology.alerts_stream,
            headers={
                "Nats-Msg-Id": envelope.event_id,
                "Aigen-Type": envelope.type,
                "Aigen-Stream": envelope.stream_id,
                **dict(envelope.trace_context),
            },
        )
        self.published += 1
        async with delivery.transaction() as conn:
            if not self.webhooks:
                return
            ident = await _alert_of(conn, envelope.stream_id, envelope.version, envelope.type == _RAISED)
            when = envelope.time.ToSeconds() + envelope.time.nanos / 1e9
            body = json.dumps(webhook_body(when, message, ident), ensure_ascii=False)
            event = "raised" if isinstance(message, ops_pb2.AlertRaised) else "resolved"
            for url in self.webhooks:
                row = await (
                    await conn.execute(
                        "INSERT INTO ops_webhook_deliveries (id, event_id, alert_id, event, url, body) "
                        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id, url) DO NOTHING RETURNING id",
                        (uuid.uuid4(), uuid.UUID(envelope.event_id), ident, event, url, body),
                    )
                ).fetchone()
                if row is not None:
                    await self.jobs.enqueue(conn, str(row[0]))


async def _alert_of(conn: Conn, stream_id: str, version: int, raised: bool) -> str:
    """The alert an event is about: a raise is its own; a resolve belongs to the last raise."""
    if raised:
        return alert_id(stream_id, version)
    row = await (
        await conn.execute(
            "SELECT max(version) FROM events WHERE stream_id = %s AND type = %s AND version < %s",
            (stream_id, _RAISED, version),
        )
    ).fetchone()
    return alert_id(stream_id, int(row[0])) if row and row[0] is not None else stream_id


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class AlertWebhookSender:
    def __init__(
        self,
        db: Database,
        jobs: WorkQueue,
        guard: NetGuard,
        *,
        schedule: Sequence[float],
        concurrency: int = 8,
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.guard = guard
        self.schedule = tuple(schedule)
        self.concurrency = concurrency
        self.delivered = 0

    async def run(self, stop: asyncio.Event) -> None:
        waker = Waker(self.db, self.jobs.channel)
        await waker.start()
        running: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                free = self.concurrency - len(running)
                jobs: list[Job] = []
                if free > 0:
                    try:
                        jobs = await self.jobs.claim(free)
                    except Exception as exc:
                        log.warning("alert webhook queue unavailable (%s); retrying", type(exc).__name__)
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
            log.warning("alert webhook %s failed inside the ops service: %s", job.key, exc, exc_info=True)
            with contextlib.suppress(Exception):
                await self.jobs.release(job.key, delay_s=5.0)

    def next_delay(self, attempt: int) -> float | None:
        """Seconds before attempt `attempt + 1`, or None when the schedule is used up."""
        return self.schedule[attempt - 1] if attempt - 1 < len(self.schedule) else None

    async def deliver(self, job: Job) -> None:
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT url, body, attempts, status FROM ops_webhook_deliveries WHERE id = %s",
                    (uuid.UUID(job.key),),
                )
            ).fetchone()
        if row is None or row[3] != "pending":
            async with self.db.transaction() as conn:
                await self.jobs.complete(conn, job.key)
            return
        url, body, attempts, _ = row
        attempt = attempts + 1
        outcome = await self._post(url, body.encode())
        delay = None if outcome.ok else self.next_delay(attempt)
        status = "delivered" if outcome.ok else ("pending" if delay is not None else "failed")
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE ops_webhook_deliveries SET attempts = %s, status = %s, last_status_code = %s, "
                "last_error = %s, finished_at = CASE WHEN %s = 'pending' THEN NULL ELSE now() END "
                "WHERE id = %s",
                (attempt, status, outcome.status_code, outcome.error, status, uuid.UUID(job.key)),
            )
            if delay is None:
                await self.jobs.complete(conn, job.key)
            else:
                await self.jobs.reschedule(conn, job.key, delay_s=delay)
        metrics.WEBHOOK_DELIVERIES.labels("alert", "delivered" if outcome.ok else "failed_attempt").inc()
        if outcome.ok:
            self.delivered += 1
            log.info("alert webhook delivered to %s (attempt %d)", safe_url(url), attempt)
        elif delay is not None:
            log.warning(
                "alert webhook to %s failed (attempt %d: %s); next attempt in %.0fs",
                safe_url(url), attempt, outcome.error or f"HTTP {outcome.status_code}", delay,
            )  # fmt: skip
        else:
            log.error(
                "alert webhook to %s failed for good after %d attempts (last: %s)",
                safe_url(url), attempt, outcome.error or f"HTTP {outcome.status_code}",
            )  # fmt: skip

    async def _post(self, url: str, body: bytes) -> Attempt:
        headers = {"content-type": "application/json", "user-agent": "aigen-alerts/1"}
        try:
            async with self.guard.stream(url, method="POST", headers=headers, content=body) as response:
                code = response.status_code
        except NetGuardError as exc:
            return Attempt(None, exc.reason)
        return Attempt(code, None if 200 <= code < 300 else f"HTTP {code}")
