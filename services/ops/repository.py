"""SQL of the ops service: what the evaluator measures and what the gRPC API lists.

Reads its own read models (`ops_*`), the head of breaker streams straight from the event log
(authoritative for the optimistic append that changes them), and the event store's shared
bookkeeping (`checkpoints`, `dead_letters`) for lag and dead-letter alerts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aigen.db.pool import Database
from aigen.eventstore.mapper import type_name
from aigen.ops.streams import breaker_stream
from aigen.v1 import ops_pb2

from services.ops.domain import ActiveTask, AlertStream, BreakerView, ProviderHealth, ReaderLag, WindowStats
from services.ops.projections import ACTIVE_STAGES

_COOLED = type_name(ops_pb2.ProviderCooledDown)


def _ts(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def encode_cursor(*parts: Any) -> str:
    raw = json.dumps([p.isoformat() if isinstance(p, datetime) else p for p in parts]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> list[Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        return None
    return data if isinstance(data, list) else None


@dataclass(frozen=True)
class ErrorFilter:
    provider: str = ""
    model: str = ""
    code: str = ""
    task_id: str = ""
    kind: str = ""  # "adapter" | "task_failure" | "" for both
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> tuple[list[str], list[Any]]:
        where: list[str] = ["true"]
        params: list[Any] = []
        for column, value in (
            ("provider_slug", self.provider),
            ("model_slug", self.model),
            ("code", self.code),
            ("task_id", self.task_id),
            ("kind", self.kind),
        ):
            if value:
                where.append(f"{column} = %s")
                params.append(value)
        if self.since is not None:
            where.append("at >= %s")
            params.append(self.since)
        if self.until is not None:
            where.append("at < %s")
            params.append(self.until)
        return where, params


ERROR_COLUMNS = (
    "position, kind, provider_slug, model_slug, task_id, stage, code, message, retryable, http_status, "
    "provider_code, response_snippet, correlation_id, at"
)
ALERT_COLUMNS = (
    "id, rule, subject, severity, status, summary, value, threshold, details, raised_at, resolved_at, "
    "resolution"
)
DELIVERY_COLUMNS = (
    "id, alert_id, event, url, status, attempts, last_status_code, last_error, created_at, finished_at"
)


class OpsRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- breaker and health --------------------------------------------------------------------

    async def known_providers(self) -> list[str]:
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT provider_slug FROM ops_provider_status "
                    "UNION SELECT DISTINCT provider_slug FROM ops_dispatch_outcomes "
                    "UNION SELECT DISTINCT provider_slug FROM ops_tasks WHERE stage = ANY(%s)",
                    (list(ACTIVE_STAGES),),
                )
            ).fetchall()
        return sorted(r[0] for r in rows if r[0])

    async def breaker_views(self, providers: Sequence[str]) -> dict[str, BreakerView]:
        """Each provider's breaker as the head of its stream in the log says."""
        streams = {breaker_stream(p): p for p in providers}
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT DISTINCT ON (stream_id) stream_id, version, type, recorded_at FROM events "
                    "WHERE stream_id = ANY(%s) ORDER BY stream_id, version DESC",
                    (list(streams),),
                )
            ).fetchall()
        views = {p: BreakerView() for p in providers}
        for stream_id, version, type_, at in rows:
            views[streams[stream_id]] = BreakerView(
                open=type_ == _COOLED, since=at.timestamp(), version=version
            )
        return views

    async def breaker_view(self, provider: str) -> BreakerView:
        return (await self.breaker_views([provider]))[provider]

    async def window_stats(self, starts: dict[str, float]) -> dict[str, WindowStats]:
        """Dispatch outcomes per provider since each provider's window start (unix seconds)."""
        if not starts:
            return {}
        providers = list(starts)
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT s.provider, count(o.position), count(o.position) FILTER (WHERE NOT o.ok), "
                    "(array_agg(o.code ORDER BY o.position DESC) FILTER (WHERE NOT o.ok))[1] "
                    "FROM unnest(%s::text[], %s::float8[]) AS s(provider, start) "
                    "LEFT JOIN ops_dispatch_outcomes o "
                    "ON o.provider_slug = s.provider AND o.at >= to_timestamp(s.start) "
                    "GROUP BY s.provider",
                    (providers, [starts[p] for p in providers]),
                )
            ).fetchall()
        return {r[0]: WindowStats(int(r[1]), int(r[2]), r[3] or "") for r in rows}

    async def provider_health(self) -> dict[str, ProviderHealth]:
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT provider_slug, ok, consecutive_failures, balance, balance_unit, checked_at, "
                    "message FROM ops_provider_status"
                )
            ).fetchall()
        return {
            r[0]: ProviderHealth(r[0], r[1], int(r[2]), r[3], r[4], _ts(r[5]), r[6])
            for r in rows
            if r[5] is not None
        }

    async def provider_statuses(self, provider: str | None = None) -> list[tuple[Any, ...]]:
        query = (
            "SELECT provider_slug, ok, message, latency_ms, balance, balance_unit, checked_at, trigger, "
            "consecutive_failures, breaker_open, breaker_since, breaker_reason FROM ops_provider_status"
        )
        params: tuple[Any, ...] = ()
        if provider is not None:
            query += " WHERE provider_slug = %s"
            params = (provider,)
        async with self.db.connection() as conn:
            return list(await (await conn.execute(query + " ORDER BY provider_slug", params)).fetchall())

    # --- tasks, lag, dead letters, spend -------------------------------------------------------

    async def active_tasks(self) -> list[ActiveTask]:
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT task_id, provider_slug, model_slug, stage, stage_since, max_duration_s "
                    "FROM ops_tasks WHERE stage = ANY(%s)",
                    (list(ACTIVE_STAGES),),
                )
            ).fetchall()
        return [ActiveTask(r[0], r[1], r[2], r[3], r[4].timestamp(), float(r[5])) for r in rows]

    async def reader_lags(self) -> list[ReaderLag]:
        """The relay (its current checkpoint) and every projection, against the log's head."""
        async with self.db.connection() as conn:
            head_row = await (
                await conn.execute("SELECT coalesce(max(global_position), 0) FROM events")
            ).fetchone()
            head = int(head_row[0]) if head_row else 0
            relay = await (
                await conn.execute(
                    "SELECT position FROM checkpoints WHERE name LIKE 'relay:%' "
                    "ORDER BY updated_at DESC LIMIT 1"
                )
            ).fetchone()
            projections = await (
                await conn.execute(
                    "SELECT name, position, state, coalesce(error, '') FROM checkpoints "
                    "WHERE name LIKE 'projection:%'"
                )
            ).fetchall()
        found = []
        if relay is not None:
            found.append(ReaderLag("relay", max(0, head - int(relay[0]))))
        for name, position, state, error in projections:
            found.append(ReaderLag(name, max(0, head - int(position)), state == "stalled", error))
        return found

    async def dead_letters_since(self, since: datetime) -> dict[str, int]:
        """Dead letters per source since `since`, and every source that ever had one (count 0)."""
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT source, count(*) FILTER (WHERE recorded_at >= %s) FROM dead_letters "
                    "GROUP BY source",
                    (since,),
                )
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    async def spend_since(self, day: date) -> Decimal:
        async with self.db.connection() as conn:
            row = await (
                await conn.execute("SELECT coalesce(sum(usd), 0) FROM ops_spend WHERE day >= %s", (day,))
            ).fetchone()
        return Decimal(row[0]) if row else Decimal(0)

    async def in_flight(self) -> list[tuple[str, str, str, int]]:
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT stage, provider_slug, model_slug, count(*) FROM ops_tasks WHERE stage = ANY(%s) "
                    "GROUP BY stage, provider_slug, model_slug",
                    (["PENDING", "PROCESSING"],),
                )
            ).fetchall()
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def prune(
        self, *, outcomes_before: datetime, errors_before: datetime, tasks_before: datetime
    ) -> None:
        """Drop what no rule looks at any more: old outcomes, old errors, long-finished tasks."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM ops_dispatch_outcomes WHERE at < %s", (outcomes_before,))
            await conn.execute("DELETE FROM ops_errors WHERE at < %s", (errors_before,))
            await conn.execute(
                "DELETE FROM ops_tasks WHERE updated_at < %s AND NOT stage = ANY(%s)",
                (tasks_before, list(ACTIVE_STAGES)),
            )

    # --- alerts --------------------------------------------------------------------------------

    async def alert_streams(self) -> dict[tuple[str, str], AlertStream]:
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute("SELECT rule, subject, version, open_alert FROM ops_alert_streams")
            ).fetchall()
        return {(r[0], r[1]): AlertStream(r[0], r[1], int(r[2]), r[3] is not None) for r in rows}

    async def open_alerts_per_rule(self) -> dict[str, int]:
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT rule, count(*) FROM ops_alerts WHERE status = 'open' GROUP BY rule"
                )
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    async def list_alerts(
        self, *, status: str, rule: str, subject: str, limit: int, after: tuple[datetime, str] | None
    ) -> list[tuple[Any, ...]]:
        where: list[str] = ["true"]
        params: list[Any] = []
        for column, value in (("status", status), ("rule", rule), ("subject", subject)):
            if value:
                where.append(f"{column} = %s")
                params.append(value)
        if after is not None:
            where.append("(raised_at, id) < (%s, %s)")
            params += [after[0], after[1]]
        async with self.db.connection() as conn:
            return list(
                await (
                    await conn.execute(
                        f"SELECT {ALERT_COLUMNS} FROM ops_alerts WHERE {' AND '.join(where)} "
                        "ORDER BY raised_at DESC, id DESC LIMIT %s",
                        [*params, limit],
                    )
                ).fetchall()
            )

    async def get_alert(self, alert_id: str) -> tuple[Any, ...] | None:
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(f"SELECT {ALERT_COLUMNS} FROM ops_alerts WHERE id = %s", (alert_id,))
            ).fetchone()
        return tuple(row) if row is not None else None

    async def list_deliveries(self, *, alert_id: str, limit: int) -> list[tuple[Any, ...]]:
        where, params = ("alert_id = %s", [alert_id]) if alert_id else ("true", [])
        async with self.db.connection() as conn:
            return list(
                await (
                    await conn.execute(
                        f"SELECT {DELIVERY_COLUMNS} FROM ops_webhook_deliveries WHERE {where} "
                        "ORDER BY created_at DESC, id DESC LIMIT %s",
                        [*params, limit],
                    )
                ).fetchall()
            )

    # --- errors --------------------------------------------------------------------------------

    async def list_errors(
        self, filters: ErrorFilter, *, limit: int, before: int | None
    ) -> list[tuple[Any, ...]]:
        where, params = filters.where()
        if before is not None:
            where.append("position < %s")
            params.append(before)
        async with self.db.connection() as conn:
            return list(
                await (
                    await conn.execute(
                        f"SELECT {ERROR_COLUMNS} FROM ops_errors WHERE {' AND '.join(where)} "
                        "ORDER BY position DESC LIMIT %s",
                        [*params, limit],
                    )
                ).fetchall()
            )

    async def count_errors(self, filters: ErrorFilter) -> list[tuple[str, str, int, datetime]]:
        where, params = filters.where()
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT provider_slug, code, count(*), max(at) FROM ops_errors "
                    f"WHERE {' AND '.join(where)} "
                    "GROUP BY provider_slug, code ORDER BY count(*) DESC, provider_slug, code",
                    params,
                )
            ).fetchall()
        return [(r[0], r[1], int(r[2]), r[3]) for r in rows]
