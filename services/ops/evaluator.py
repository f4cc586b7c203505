"""The ops service's clock: breaker decisions, probes, scheduled health checks, alerts, gauges.

Every `evaluate_every_s` the leader (one ops process at a time, by a PostgreSQL session advisory
lock; the others wait to take over) measures, decides with the pure rules of `domain`, and
appends what changed. Appends are optimistic at the version it read (`breaker-<slug>`,
`alert-<rule>-<subject>`), so even two leaders at once — a lock lost to a network blip — could not
open a breaker or raise an alert twice: the second append finds the stream moved and is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import psycopg
from aigen import metrics
from aigen.db.pool import Database
from aigen.eventstore.mapper import to_new_event
from aigen.eventstore.store import ConcurrencyError, EventStore
from aigen.ops.streams import alert_stream, breaker_stream
from google.protobuf.message import Message

from services.ops import domain
from services.ops.health import BREAKER_PROBE, SCHEDULED, Prober
from services.ops.repository import OpsRepository
from services.ops.settings import OpsSettings

log = logging.getLogger("aigen.ops.evaluator")

_LEADER_LOCK = 0x4F505345  # "OPSE"
FINISHED_TASKS_KEPT = timedelta(days=2)


class Evaluator:
    def __init__(
        self,
        *,
        db: Database,
        store: EventStore,
        repo: OpsRepository,
        prober: Prober,
        settings: OpsSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.store = store
        self.repo = repo
        self.prober = prober
        self.settings = settings
        self.clock = clock
        self.ticks = 0
        self.leader = False
        self._last_scheduled: float | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.db.url, autocommit=True) as lock_conn:
                    row = await (
                        await lock_conn.execute(
                            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (_LEADER_LOCK, self.db.schema)
                        )
                    ).fetchone()
                    if not (row and row[0]):
                        await _wait(stop, 5.0)
                        continue
                    self.leader = True
                    log.info("ops evaluator leads: breakers, health checks and alerts")
                    try:
                        await self._lead(stop)
                    finally:
                        self.leader = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("ops evaluator paused after %s: %s", type(exc).__name__, exc)
                await _wait(stop, 1.0)

    async def _lead(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the lock's session may be gone too: start over
            except Exception:
                log.exception("ops evaluation failed; trying again next round")
            await _wait(stop, self.settings.evaluate_every_s)

    async def tick(self) -> None:
        now = self.clock()
        await self._scheduled_checks(now)
        providers = await self.repo.known_providers()
        breakers = await self.repo.breaker_views(providers)
        policy = self.settings.breaker
        # A recovery starts the window afresh; while open, the window keeps the failures that
        # opened it (the failure-rate alert stays raised until recovery or until they age out).
        starts = {
            p: domain.window_start(now, policy.window_s, None if breakers[p].open else breakers[p].since)
            for p in providers
        }
        stats = await self.repo.window_stats(starts)
        for provider in providers:
            view, window = breakers[provider], stats.get(provider, domain.WindowStats())
            if domain.should_open(view, window, policy):
                breakers[provider] = await self._open(provider, view, window)
        health = await self.repo.provider_health()
        for provider, view in breakers.items():
            last = health[provider].last_check_at if provider in health else None
            if domain.probe_due(view, now, last, policy):
                result = await self.prober.check_quietly(provider, BREAKER_PROBE)
                if result is not None and result.recovered:
                    breakers[provider] = domain.BreakerView(False, self.clock(), view.version + 1)
                    stats[provider] = domain.WindowStats()
        health = await self.repo.provider_health()
        await self._alerts(now, providers, breakers, stats, health)
        await self._gauges()
        await self.repo.prune(
            outcomes_before=_at(now - 2 * policy.window_s),
            errors_before=_at(now) - timedelta(days=self.settings.error_retention_days),
            tasks_before=_at(now) - FINISHED_TASKS_KEPT,
        )
        self.ticks += 1

    async def _scheduled_checks(self, now: float) -> None:
        every = self.settings.health_every_s
        if every is None or (self._last_scheduled is not None and now - self._last_scheduled < every):
            return
        self._last_scheduled = now
        try:
            count = await self.prober.check_all(SCHEDULED)
        except Exception as exc:
            log.warning("scheduled health checks could not run: %s", exc)
            return
        log.info("scheduled health checks: %d provider(s) checked", count)

    async def _open(
        self, provider: str, view: domain.BreakerView, window: domain.WindowStats
    ) -> domain.BreakerView:
        event = domain.cooled_down(provider, window, self.settings.breaker)
        try:
            await self.store.append(breaker_stream(provider), view.version, [to_new_event(event)])
        except ConcurrencyError:
            return await self.repo.breaker_view(provider)
        log.error("%s cooled down: %s", provider, event.reason)
        return domain.BreakerView(True, self.clock(), view.version + 1)

    async def _alerts(
        self,
        now: float,
        providers: list[str],
        breakers: dict[str, domain.BreakerView],
        stats: dict[str, domain.WindowStats],
        health: dict[str, domain.ProviderHealth],
    ) -> None:
        policy = self.settings.alerts
        window_s = self.settings.breaker.window_s
        rules: dict[str, Callable[[], Awaitable[list[domain.Measurement]]]] = {
            domain.PROVIDER_FAILURE_RATE: lambda: _now(
                domain.failure_rate_measurements(stats, policy, window_s)
            ),
            domain.PROVIDER_DOWN: lambda: _now(domain.provider_down_measurements(breakers, health, policy)),
            domain.LOW_BALANCE: lambda: _now(domain.low_balance_measurements(health, policy)),
            domain.TASK_STUCK: lambda: self._stuck(now, providers),
            domain.LAG: self._lag,
            domain.DEAD_LETTERS: lambda: self._dead_letters(now),
            domain.BUDGET: lambda: self._budget(now),
        }
        measured: list[domain.Measurement] = []
        evaluated: set[str] = set()
        for name, measure in rules.items():
            if name in policy.disabled:
                continue
            try:
                measured.extend(await measure())
            except Exception as exc:
                # Its open alerts stay as they are: not knowing is not "resolved".
                log.warning("alert rule %s could not be evaluated: %s", name, exc)
                continue
            evaluated.add(name)
        streams = await self.repo.alert_streams()
        for transition in domain.reconcile(streams, measured, evaluated):
            await self._append_alert(transition)

    async def _stuck(self, now: float, providers: list[str]) -> list[domain.Measurement]:
        tasks = await self.repo.active_tasks()
        return domain.stuck_measurements(tasks, now, self.settings.alerts, providers)

    async def _lag(self) -> list[domain.Measurement]:
        readers = await self.repo.reader_lags()
        for reader in readers:
            if reader.name == "relay":
                metrics.RELAY_LAG.set(reader.lag)
        return domain.lag_measurements(readers, self.settings.alerts)

    async def _dead_letters(self, now: float) -> list[domain.Measurement]:
        since = _at(now - self.settings.alerts.dead_letter_window_s)
        return domain.dead_letter_measurements(
            await self.repo.dead_letters_since(since), self.settings.alerts
        )

    async def _budget(self, now: float) -> list[domain.Measurement]:
        policy = self.settings.alerts
        if policy.budget_usd is None:
            return []
        start = domain.period_start(policy.budget_period, _at(now))
        return domain.budget_measurements(await self.repo.spend_since(start.date()), policy)

    async def _append_alert(self, transition: domain.Raise | domain.Resolve) -> None:
        if isinstance(transition, domain.Raise):
            rule, subject = transition.measurement.rule, transition.measurement.subject
            event: Message = transition.event()
            summary = transition.measurement.summary
        else:
            rule, subject = transition.stream.rule, transition.stream.subject
            event, summary = transition.event(), transition.summary
        try:
            await self.store.append(
                alert_stream(rule, subject), transition.expected_version, [to_new_event(event)]
            )
        except ConcurrencyError:
            # The alerts projection had not caught up with this stream: decide again next round.
            return
        verb = "raised" if isinstance(transition, domain.Raise) else "resolved"
        log.warning("alert %s: %s %s — %s", verb, rule, subject, summary)

    async def _gauges(self) -> None:
        metrics.TASKS_IN_FLIGHT.clear()
        for stage, provider, model, count in await self.repo.in_flight():
            metrics.TASKS_IN_FLIGHT.labels(stage, provider, model).set(count)
        metrics.ALERTS_OPEN.clear()
        for rule_name, count in (await self.repo.open_alerts_per_rule()).items():
            metrics.ALERTS_OPEN.labels(rule_name).set(count)


async def _now(found: list[domain.Measurement]) -> list[domain.Measurement]:
    return found


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
