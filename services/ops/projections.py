"""The ops service's read models, each a projection of the event log (see aigen.projections).

- `ops-tasks`: where every task is and since when (stuck detection, in-flight counts), every
  dispatch outcome that counts for circuit breaking, spend per day, provider and model.
- `error-log`: adapter errors (`ProviderErrorRecorded`) and task failures (`TaskFailed`), with the
  model and correlation id filled from the task when the event does not name them.
- `provider-health`: each provider's last health check and breaker state.
- `alerts`: every alert raised, resolved in place, and the head of each alert stream.

Counters exported to Prometheus move as events are applied, at most once per event per process:
a batch retried after a failure, or a rebuild, does not count again.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from aigen import metrics
from aigen.eventstore.mapper import type_name
from aigen.eventstore.store import Conn, RecordedEvent
from aigen.projections.runner import Projection
from aigen.providers.types import PROVIDER_SIDE_CODES
from aigen.v1 import events_pb2, ops_pb2
from google.protobuf.message import Message
from psycopg.types.json import Jsonb

OUTCOME_UNKNOWN = "DISPATCH_OUTCOME_UNKNOWN"
_PROVIDER_SIDE = frozenset(code.value for code in PROVIDER_SIDE_CODES)
ACTIVE_STAGES = ("PENDING", "PROCESSING", "STORING")


def _types(*classes: type[Message]) -> frozenset[str]:
    return frozenset(type_name(cls) for cls in classes)


def _usd(value: str) -> Decimal | None:
    try:
        amount = Decimal(value) if value else None
    except InvalidOperation:
        return None
    return amount if amount is not None and amount.is_finite() else None


class _OncePerEvent:
    """Remembers the highest position counted, so metrics never count an event twice."""

    def __init__(self) -> None:
        self.counted_up_to = 0

    def first_time(self, event: RecordedEvent) -> bool:
        if event.global_position <= self.counted_up_to:
            return False
        self.counted_up_to = event.global_position
        return True


class OpsTaskProjection(Projection):
    name = "ops-tasks"
    tables = ("ops_tasks", "ops_dispatch_outcomes", "ops_spend")
    types = _types(
        events_pb2.TaskCreated,
        events_pb2.TaskDispatching,
        events_pb2.DispatchAttemptFailed,
        events_pb2.TaskFailedOver,
        events_pb2.TaskDispatched,
        events_pb2.TaskCompleted,
        events_pb2.ResultsStored,
        events_pb2.TaskFailed,
        events_pb2.TaskCancelled,
        events_pb2.TaskDeleted,
    )

    def __init__(self) -> None:
        self._once = _OncePerEvent()

    async def apply(self, conn: Conn, event: RecordedEvent, message: Message) -> None:
        count = self._once.first_time(event)
        at = event.recorded_at
        if isinstance(message, events_pb2.TaskCreated):
            model = message.model
            await conn.execute(
                "INSERT INTO ops_tasks (task_id, provider_slug, model_slug, stage, stage_since, "
                "max_duration_s, quote_usd, updated_at) VALUES (%s, %s, %s, 'PENDING', %s, %s, %s, %s) "
                "ON CONFLICT (task_id) DO NOTHING",
                (
                    message.task_id,
                    model.provider_slug,
                    model.model_slug,
                    at,
                    model.polling.max_duration_s,
                    _usd(message.quote.usd) or Decimal(0),
                    at,
                ),
            )
            if count:
                metrics.TASKS_CREATED.labels(model.provider_slug, model.model_slug).inc()
        elif isinstance(message, events_pb2.TaskDispatching | events_pb2.TaskFailedOver):
            model = message.model
            await conn.execute(
                "UPDATE ops_tasks SET provider_slug = %s, model_slug = %s, max_duration_s = %s, "
                "updated_at = %s WHERE task_id = %s",
                (model.provider_slug, model.model_slug, model.polling.max_duration_s, at, message.task_id),
            )
        elif isinstance(message, events_pb2.TaskDispatched):
            model = message.model
            await conn.execute(
                "UPDATE ops_tasks SET provider_slug = %s, model_slug = %s, max_duration_s = %s, "
                "stage = 'PROCESSING', stage_since = %s, updated_at = %s WHERE task_id = %s",
                (
                    model.provider_slug,
                    model.model_slug,
                    model.polling.max_duration_s,
                    at,
                    at,
                    message.task_id,
                ),
            )
            await self._outcome(conn, event, model.provider_slug, model.model_slug, ok=True)
        elif isinstance(message, events_pb2.DispatchAttemptFailed):
            if message.code in _PROVIDER_SIDE:
                task = await self._task(conn, message.task_id)
                model_slug = task[1] if task else ""
                await self._outcome(
                    conn, event, message.provider_slug, model_slug, ok=False, code=message.code
                )
        elif isinstance(message, events_pb2.TaskCompleted):
            await self._completed(conn, event, message, count)
        elif isinstance(message, events_pb2.ResultsStored):
            await self._finish(conn, message.task_id, "SUCCESS", at, count)
        elif isinstance(message, events_pb2.TaskFailed):
            if message.stage == "dispatch" and message.code == OUTCOME_UNKNOWN:
                # The provider took the request and never answered: its fault, like a timeout.
                task = await self._task(conn, message.task_id)
                await self._outcome(
                    conn, event, message.provider_slug, task[1] if task else "", ok=False, code=message.code
                )
            await self._finish(conn, message.task_id, "FAILED", at, count)
        elif isinstance(message, events_pb2.TaskCancelled):
            await self._finish(conn, message.task_id, "CANCELLED", at, count)
        elif isinstance(message, events_pb2.TaskDeleted):
            # Work on a deleted task stops; it must not look stuck.
            await conn.execute(
                "UPDATE ops_tasks SET stage = 'DELETED', stage_since = %s, updated_at = %s "
                "WHERE task_id = %s AND stage = ANY(%s)",
                (at, at, message.task_id, list(ACTIVE_STAGES)),
            )

    async def _completed(
        self, conn: Conn, event: RecordedEvent, message: events_pb2.TaskCompleted, count: bool
    ) -> None:
        task = await self._task(conn, message.task_id)
        if task is None:
            return
        provider, model, quote = task
        at = event.recorded_at
        await conn.execute(
            "UPDATE ops_tasks SET stage = 'STORING', stage_since = %s, updated_at = %s WHERE task_id = %s",
            (at, at, message.task_id),
        )
        if message.source == "dispatch":
            await self._outcome(conn, event, provider, model, ok=True)
        charged = _usd(message.charge.usd) if message.HasField("charge") else None
        usd = charged if charged is not None else quote
        await conn.execute(
            "INSERT INTO ops_spend (day, provider_slug, model_slug, usd, tasks) VALUES (%s, %s, %s, %s, 1) "
            "ON CONFLICT (day, provider_slug, model_slug) DO UPDATE "
            "SET usd = ops_spend.usd + EXCLUDED.usd, tasks = ops_spend.tasks + 1",
            (at.date(), provider, model, usd),
        )
        if count:
            metrics.SPEND_USD.labels(provider, model).inc(float(usd))

    @staticmethod
    async def _task(conn: Conn, task_id: str) -> tuple[str, str, Decimal] | None:
        row = await (
            await conn.execute(
                "SELECT provider_slug, model_slug, quote_usd FROM ops_tasks WHERE task_id = %s", (task_id,)
            )
        ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    async def _finish(
        self, conn: Conn, task_id: str, stage: str, at: datetime, count: bool
    ) -> tuple[str, str] | None:
        row = await (
            await conn.execute(
                "UPDATE ops_tasks SET stage = %s, stage_since = %s, updated_at = %s WHERE task_id = %s "
                "RETURNING provider_slug, model_slug",
                (stage, at, at, task_id),
            )
        ).fetchone()
        if row is None:
            return None
        if count:
            metrics.TASKS_FINISHED.labels(stage, row[0], row[1]).inc()
        return row[0], row[1]

    @staticmethod
    async def _outcome(
        conn: Conn, event: RecordedEvent, provider: str, model: str, *, ok: bool, code: str = ""
    ) -> None:
        await conn.execute(
            "INSERT INTO ops_dispatch_outcomes (position, provider_slug, model_slug, ok, code, at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (position) DO NOTHING",
            (event.global_position, provider, model, ok, code, event.recorded_at),
        )


class ErrorLogProjection(Projection):
    name = "error-log"
    tables = ("ops_errors", "ops_error_tasks")
    types = _types(
        events_pb2.TaskCreated,
        events_pb2.TaskDispatching,
        events_pb2.TaskFailedOver,
        ops_pb2.ProviderErrorRecorded,
        events_pb2.TaskFailed,
        events_pb2.ResultsStored,
        events_pb2.TaskCancelled,
        events_pb2.TaskDeleted,
    )

    async def apply(self, conn: Conn, event: RecordedEvent, message: Message) -> None:
        correlation = str(event.metadata.get("correlation_id") or "")
        if isinstance(message, events_pb2.TaskCreated):
            await conn.execute(
                "INSERT INTO ops_error_tasks (task_id, model_slug, correlation_id) VALUES (%s, %s, %s) "
                "ON CONFLICT (task_id) DO NOTHING",
                (message.task_id, message.model.model_slug, correlation),
            )
        elif isinstance(message, events_pb2.TaskDispatching | events_pb2.TaskFailedOver):
            await conn.execute(
                "UPDATE ops_error_tasks SET model_slug = %s WHERE task_id = %s",
                (message.model.model_slug, message.task_id),
            )
        elif isinstance(message, ops_pb2.ProviderErrorRecorded):
            model, task_correlation = await self._task(conn, message.task_id)
            await self._insert(
                conn,
                event,
                kind="adapter",
                provider=message.provider_slug,
                model=message.model_slug or model,
                task_id=message.task_id,
                stage=message.stage,
                code=message.code,
                message=message.message,
                retryable=message.retryable,
                http_status=message.http_status,
                provider_code=message.provider_code,
                snippet=message.response_snippet,
                correlation=message.correlation_id or correlation or task_correlation,
            )
        elif isinstance(message, events_pb2.TaskFailed):
            model, task_correlation = await self._task(conn, message.task_id)
            await self._insert(
                conn,
                event,
                kind="task_failure",
                provider=message.provider_slug,
                model=model,
                task_id=message.task_id,
                stage=message.stage,
                code=message.code or "FAILED",
                message=message.message,
                retryable=message.retryable,
                correlation=correlation or task_correlation,
            )
            if message.stage != "timeout":  # a late reconciliation may still report on it
                await self._forget(conn, message.task_id)
        elif isinstance(
            message, events_pb2.ResultsStored | events_pb2.TaskCancelled | events_pb2.TaskDeleted
        ):
            await self._forget(conn, message.task_id)

    @staticmethod
    async def _task(conn: Conn, task_id: str) -> tuple[str, str]:
        if not task_id:
            return "", ""
        row = await (
            await conn.execute(
                "SELECT model_slug, correlation_id FROM ops_error_tasks WHERE task_id = %s", (task_id,)
            )
        ).fetchone()
        return (row[0], row[1]) if row else ("", "")

    @staticmethod
    async def _forget(conn: Conn, task_id: str) -> None:
        await conn.execute("DELETE FROM ops_error_tasks WHERE task_id = %s", (task_id,))

    @staticmethod
    async def _insert(
        conn: Conn,
        event: RecordedEvent,
        *,
        kind: str,
        provider: str,
        model: str,
        task_id: str,
        stage: str,
        code: str,
        message: str,
        retryable: bool,
        correlation: str,
        http_status: int = 0,
        provider_code: str = "",
        snippet: str = "",
    ) -> None:
        await conn.execute(
            "INSERT INTO ops_errors (position, kind, provider_slug, model_slug, task_id, stage, code, "
            "message, retryable, http_status, provider_code, response_snippet, correlation_id, at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (position) DO NOTHING",
            (
                event.global_position,
                kind,
                provider,
                model,
                task_id,
                stage,
                code,
                message,
                retryable,
                http_status,
                provider_code,
                snippet,
                correlation,
                event.recorded_at,
            ),
        )


class ProviderHealthProjection(Projection):
    name = "provider-health"
    tables = ("ops_provider_status",)
    types = _types(ops_pb2.ProviderHealthChecked, ops_pb2.ProviderCooledDown, ops_pb2.ProviderRecovered)

    async def apply(self, conn: Conn, event: RecordedEvent, message: Message) -> None:
        if isinstance(message, ops_pb2.ProviderHealthChecked):
            balance = message.balance if message.HasField("balance") else None
            await conn.execute(
                "INSERT INTO ops_provider_status (provider_slug, checked_at, ok, message, latency_ms, "
                "balance, balance_unit, trigger, consecutive_failures) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (provider_slug) DO UPDATE SET checked_at = EXCLUDED.checked_at, "
                "ok = EXCLUDED.ok, "
                "message = EXCLUDED.message, latency_ms = EXCLUDED.latency_ms, "
                "balance = coalesce(EXCLUDED.balance, ops_provider_status.balance), "
                "balance_unit = CASE WHEN EXCLUDED.balance IS NULL THEN ops_provider_status.balance_unit "
                "ELSE EXCLUDED.balance_unit END, trigger = EXCLUDED.trigger, "
                "consecutive_failures = CASE WHEN EXCLUDED.ok THEN 0 "
                "ELSE ops_provider_status.consecutive_failures + 1 END",
                (
                    message.provider_slug,
                    event.recorded_at,
                    message.ok,
                    message.message,
                    message.latency_ms,
                    balance,
                    message.balance_unit,
                    message.trigger,
                    0 if message.ok else 1,
                ),
            )
            metrics.PROVIDER_UP.labels(message.provider_slug).set(1 if message.ok else 0)
            if balance is not None:
                metrics.PROVIDER_BALANCE.labels(message.provider_slug, message.balance_unit).set(balance)
        elif isinstance(message, ops_pb2.ProviderCooledDown):
            await self._breaker(conn, message.provider_slug, True, event.recorded_at, message.reason)
        elif isinstance(message, ops_pb2.ProviderRecovered):
            await self._breaker(conn, message.provider_slug, False, event.recorded_at, message.reason)

    @staticmethod
    async def _breaker(conn: Conn, provider: str, open_: bool, at: datetime, reason: str) -> None:
        await conn.execute(
            "INSERT INTO ops_provider_status (provider_slug, breaker_open, breaker_since, breaker_reason) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (provider_slug) DO UPDATE SET "
            "breaker_open = EXCLUDED.breaker_open, breaker_since = EXCLUDED.breaker_since, "
            "breaker_reason = EXCLUDED.breaker_reason",
            (provider, open_, at, reason),
        )
        metrics.BREAKER_OPEN.labels(provider).set(1 if open_ else 0)


def alert_id(stream_id: str, version: int) -> str:
    return f"{stream_id}#{version}"


class AlertProjection(Projection):
    name = "alerts"
    tables = ("ops_alerts", "ops_alert_streams")
    types = _types(ops_pb2.AlertRaised, ops_pb2.AlertResolved)

    async def apply(self, conn: Conn, event: RecordedEvent, message: Message) -> None:
        if isinstance(message, ops_pb2.AlertRaised):
            ident = alert_id(event.stream_id, event.version)
            await conn.execute(
                "INSERT INTO ops_alerts (id, stream_id, rule, subject, severity, status, summary, value, "
                "threshold, details, raised_at) VALUES (%s, %s, %s, %s, %s, 'open', %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (
                    ident,
                    event.stream_id,
                    message.rule,
                    message.subject,
                    message.severity,
                    message.summary,
                    message.value,
                    message.threshold,
                    Jsonb(dict(message.details)),
                    event.recorded_at,
                ),
            )
            await self._head(conn, event, message.rule, message.subject, ident)
        elif isinstance(message, ops_pb2.AlertResolved):
            await conn.execute(
                "UPDATE ops_alerts SET status = 'resolved', resolved_at = %s, resolution = %s "
                "WHERE stream_id = %s AND status = 'open'",
                (event.recorded_at, message.summary, event.stream_id),
            )
            await self._head(conn, event, message.rule, message.subject, None)

    @staticmethod
    async def _head(
        conn: Conn, event: RecordedEvent, rule: str, subject: str, open_alert: str | None
    ) -> None:
        await conn.execute(
            "INSERT INTO ops_alert_streams (stream_id, rule, subject, version, open_alert) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (stream_id) DO UPDATE SET "
            "version = EXCLUDED.version, open_alert = EXCLUDED.open_alert",
            (event.stream_id, rule, subject, event.version, open_alert),
        )
