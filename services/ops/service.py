"""The ops service's gRPC API: HealthCheckService, ErrorLogService, SystemAlertService.

Thin: each call checks its input (INVALID_ARGUMENT naming the field), then asks the prober or
the read models. Nothing here returns a key: health answers carry the provider's message, which
the catalog produced with the key registered for scrubbing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aigen import errors
from aigen.v1 import ops_pb2, ops_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.ops import domain
from services.ops.alerts import safe_url
from services.ops.health import ON_DEMAND, Prober
from services.ops.repository import ErrorFilter, OpsRepository, decode_cursor, encode_cursor
from services.ops.settings import OpsSettings

DEFAULT_PAGE = 50
MAX_PAGE = 500
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_KINDS = {
    ops_pb2.ERROR_KIND_UNSPECIFIED: "",
    ops_pb2.ERROR_KIND_ADAPTER: "adapter",
    ops_pb2.ERROR_KIND_TASK_FAILURE: "task_failure",
}
_KIND_OF = {v: k for k, v in _KINDS.items() if v}
_STATUSES = {
    ops_pb2.ALERT_STATUS_UNSPECIFIED: "",
    ops_pb2.ALERT_STATUS_OPEN: "open",
    ops_pb2.ALERT_STATUS_RESOLVED: "resolved",
}
_STATUS_OF = {v: k for k, v in _STATUSES.items() if v}


def _timestamp(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


def _page_size(value: int) -> int:
    if value < 0:
        raise errors.InvalidArgument.field("page_size", "must not be negative")
    if value > MAX_PAGE:
        raise errors.InvalidArgument.field("page_size", f"must be at most {MAX_PAGE}")
    return value or DEFAULT_PAGE


def _slug(field: str, value: str, *, required: bool = False) -> str:
    if not value:
        if required:
            raise errors.InvalidArgument.field(field, "is required")
        return ""
    if not _SLUG.match(value):
        raise errors.InvalidArgument.field(field, "is not a slug (lower-case letters, digits, - _ .)")
    return value


def _range(since: Timestamp | None, until: Timestamp | None) -> tuple[datetime | None, datetime | None]:
    start = since.ToDatetime(UTC) if since is not None else None
    end = until.ToDatetime(UTC) if until is not None else None
    if start is not None and end is not None and end <= start:
        raise errors.InvalidArgument.field("until", "must be after since")
    return start, end


def _kind(value: ops_pb2.ErrorKind.ValueType) -> str:
    if value not in _KINDS:
        raise errors.InvalidArgument.field("kind", f"unknown error kind {value}")
    return _KINDS[value]


def health_status(row: tuple[Any, ...]) -> ops_pb2.ProviderHealthStatus:
    (provider, ok, message, latency, balance, unit, checked_at, trigger, failures, open_, since, reason) = row
    status = ops_pb2.ProviderHealthStatus(
        provider=provider,
        ok=bool(ok),
        message=message,
        latency_ms=latency,
        balance_unit=unit,
        checked_at=_timestamp(checked_at),
        trigger=trigger,
        consecutive_failures=failures,
        breaker=ops_pb2.BREAKER_STATE_OPEN if open_ else ops_pb2.BREAKER_STATE_CLOSED,
        breaker_since=_timestamp(since),
        breaker_reason=reason,
    )
    if balance is not None:
        status.balance = balance
    return status


class HealthCheckService(ops_pb2_grpc.HealthCheckServiceServicer):
    def __init__(self, prober: Prober, repo: OpsRepository) -> None:
        self.prober = prober
        self.repo = repo

    async def CheckProviderHealth(
        self, request: ops_pb2.ProviderHealthCheckRequest, context: object
    ) -> ops_pb2.ProviderHealthStatus:
        slug = _slug("provider", request.provider, required=True)
        before = await self.repo.provider_statuses(slug)
        result = await self.prober.check(slug, ON_DEMAND)
        reply = result.reply
        status = ops_pb2.ProviderHealthStatus(
            provider=reply.provider or slug,
            ok=reply.ok,
            message=reply.message,
            latency_ms=reply.latency_ms,
            balance_unit=reply.balance_unit,
            checked_at=reply.checked_at,
            trigger=ON_DEMAND,
            breaker=ops_pb2.BREAKER_STATE_OPEN if result.breaker_open else ops_pb2.BREAKER_STATE_CLOSED,
        )
        if reply.HasField("balance"):
            status.balance = reply.balance
        previous = health_status(before[0]) if before else None
        if not reply.ok:
            status.consecutive_failures = 1 + (previous.consecutive_failures if previous else 0)
        if result.breaker_open and previous is not None:
            status.breaker_since.CopyFrom(previous.breaker_since)
            status.breaker_reason = previous.breaker_reason
        return status

    async def ListProviderHealth(
        self, request: ops_pb2.ListProviderHealthRequest, context: object
    ) -> ops_pb2.ListProviderHealthResponse:
        rows = await self.repo.provider_statuses()
        return ops_pb2.ListProviderHealthResponse(providers=[health_status(r) for r in rows])


def error_entry(row: tuple[Any, ...]) -> ops_pb2.ErrorEntry:
    (
        position,
        kind,
        provider,
        model,
        task_id,
        stage,
        code,
        message,
        retryable,
        http,
        pcode,
        snippet,
        cid,
        at,
    ) = row
    return ops_pb2.ErrorEntry(
        id=str(position),
        kind=_KIND_OF.get(kind, ops_pb2.ERROR_KIND_UNSPECIFIED),
        provider=provider,
        model=model,
        task_id=task_id,
        stage=stage,
        code=code,
        message=message,
        retryable=retryable,
        http_status=http,
        provider_code=pcode,
        response_snippet=snippet,
        correlation_id=cid,
        at=_timestamp(at),
    )


class ErrorLogService(ops_pb2_grpc.ErrorLogServiceServicer):
    def __init__(self, repo: OpsRepository, clock: Any = None) -> None:
        self.repo = repo
        self.clock = clock or (lambda: datetime.now(UTC))

    async def ListErrors(
        self, request: ops_pb2.ListErrorsRequest, context: object
    ) -> ops_pb2.ListErrorsResponse:
        size = _page_size(request.page_size)
        since, until = _range(
            request.since if request.HasField("since") else None,
            request.until if request.HasField("until") else None,
        )
        filters = ErrorFilter(
            provider=_slug("provider", request.provider),
            model=_slug("model", request.model),
            code=request.code,
            task_id=request.task_id,
            kind=_kind(request.kind),
            since=since,
            until=until,
        )
        before = None
        if request.page_token:
            cursor = decode_cursor(request.page_token)
            if not cursor or not isinstance(cursor[0], int):
                raise errors.InvalidArgument.field("page_token", "is not a token this service issued")
            before = cursor[0]
        rows = await self.repo.list_errors(filters, limit=size + 1, before=before)
        response = ops_pb2.ListErrorsResponse(errors=[error_entry(r) for r in rows[:size]])
        if len(rows) > size:
            response.next_page_token = encode_cursor(int(rows[size - 1][0]))
        return response

    async def CountErrors(
        self, request: ops_pb2.CountErrorsRequest, context: object
    ) -> ops_pb2.CountErrorsResponse:
        since, until = _range(
            request.since if request.HasField("since") else None,
            request.until if request.HasField("until") else None,
        )
        if since is None:
            since = (until or self.clock()) - timedelta(days=1)
        filters = ErrorFilter(
            provider=_slug("provider", request.provider),
            model=_slug("model", request.model),
            kind=_kind(request.kind),
            since=since,
            until=until,
        )
        counts = await self.repo.count_errors(filters)
        return ops_pb2.CountErrorsResponse(
            counts=[
                ops_pb2.ErrorCount(provider=p, code=c, count=n, last_at=_timestamp(last))
                for p, c, n, last in counts
            ]
        )


def alert_message(row: tuple[Any, ...]) -> ops_pb2.Alert:
    (
        ident,
        rule,
        subject,
        severity,
        status,
        summary,
        value,
        threshold,
        details,
        raised,
        resolved,
        resolution,
    ) = row
    return ops_pb2.Alert(
        id=ident,
        rule=rule,
        subject=subject,
        severity=severity,
        status=_STATUS_OF.get(status, ops_pb2.ALERT_STATUS_UNSPECIFIED),
        summary=summary,
        value=value,
        threshold=threshold,
        details={str(k): str(v) for k, v in (details or {}).items()},
        raised_at=_timestamp(raised),
        resolved_at=_timestamp(resolved),
        resolution=resolution,
    )


def rule_descriptions(settings: OpsSettings) -> list[ops_pb2.AlertRule]:
    a, b = settings.alerts, settings.breaker
    balance = ", ".join(f"{k}<{v:g}" for k, v in sorted(a.low_balance.items()))
    budget = (
        f"spend >= {a.budget_fraction:g} of ${a.budget_usd} per {a.budget_period}"
        if a.budget_usd is not None
        else "off (AIGEN_ALERT_BUDGET_USD unset)"
    )
    stuck = (
        f"at the provider past its polling deadline + {a.stuck_grace_s:g}s; "
        f"waiting for dispatch or storage over {a.queue_stuck_s:g}s"
    )
    described = {
        domain.PROVIDER_FAILURE_RATE: (
            "provider-side dispatch failures over the breaker window",
            f"failure rate >= {a.failure_rate:g} over {b.window_s:g}s, "
            f"at least {a.failure_min_attempts} dispatches",
        ),
        domain.PROVIDER_DOWN: (
            "a provider is cooled down (breaker open) or fails its health checks",
            f"breaker open, or {a.health_failures} failed health checks in a row",
        ),
        domain.LOW_BALANCE: ("a provider's balance, read at its health check, is low", balance or "none"),
        domain.TASK_STUCK: ("tasks stuck beyond their polling profile", stuck),
        domain.LAG: (
            "the relay or a projection is behind the log, or a projection stopped",
            f">= {a.lag_events} events",
        ),
        domain.DEAD_LETTERS: (
            "work given up after its last delivery",
            f"any in the last {a.dead_letter_window_s:g}s",
        ),
        domain.BUDGET: ("spend against the deployment's budget", budget),
    }
    return [
        ops_pb2.AlertRule(
            name=name,
            description=described[name][0],
            threshold=described[name][1],
            enabled=name not in a.disabled and not (name == domain.BUDGET and a.budget_usd is None),
        )
        for name in domain.RULES
    ]


class SystemAlertService(ops_pb2_grpc.SystemAlertServiceServicer):
    def __init__(self, repo: OpsRepository, settings: OpsSettings) -> None:
        self.repo = repo
        self.settings = settings

    async def ListAlerts(
        self, request: ops_pb2.ListAlertsRequest, context: object
    ) -> ops_pb2.ListAlertsResponse:
        size = _page_size(request.page_size)
        if request.status not in _STATUSES:
            raise errors.InvalidArgument.field("status", f"unknown alert status {request.status}")
        if request.rule and request.rule not in domain.RULES:
            raise errors.InvalidArgument.field("rule", f"unknown rule; known: {', '.join(domain.RULES)}")
        after = None
        if request.page_token:
            cursor = decode_cursor(request.page_token)
            try:
                assert cursor is not None and len(cursor) == 2
                after = (datetime.fromisoformat(cursor[0]), str(cursor[1]))
            except (AssertionError, TypeError, ValueError):
                raise errors.InvalidArgument.field(
                    "page_token", "is not a token this service issued"
                ) from None
        rows = await self.repo.list_alerts(
            status=_STATUSES[request.status],
            rule=request.rule,
            subject=request.subject,
            limit=size + 1,
            after=after,
        )
        response = ops_pb2.ListAlertsResponse(alerts=[alert_message(r) for r in rows[:size]])
        if len(rows) > size:
            last = rows[size - 1]
            response.next_page_token = encode_cursor(last[9], last[0])
        return response

    async def GetAlert(self, request: ops_pb2.GetAlertRequest, context: object) -> ops_pb2.Alert:
        if not request.id:
            raise errors.InvalidArgument.field("id", "is required")
        row = await self.repo.get_alert(request.id)
        if row is None:
            raise errors.NotFound("alert", request.id)
        return alert_message(row)

    async def ListAlertRules(
        self, request: ops_pb2.ListAlertRulesRequest, context: object
    ) -> ops_pb2.ListAlertRulesResponse:
        return ops_pb2.ListAlertRulesResponse(rules=rule_descriptions(self.settings))

    async def ListAlertDeliveries(
        self, request: ops_pb2.ListAlertDeliveriesRequest, context: object
    ) -> ops_pb2.ListAlertDeliveriesResponse:
        size = _page_size(request.page_size)
        rows = await self.repo.list_deliveries(alert_id=request.alert_id, limit=size)
        return ops_pb2.ListAlertDeliveriesResponse(
            deliveries=[
                ops_pb2.AlertDelivery(
                    id=str(r[0]),
                    alert_id=r[1],
                    event=r[2],
                    url=safe_url(r[3]),
                    status=r[4],
                    attempts=r[5],
                    last_status_code=r[6] or 0,
                    last_error=r[7] or "",
                    created_at=_timestamp(r[8]),
                    finished_at=_timestamp(r[9]),
                )
                for r in rows
            ]
        )
