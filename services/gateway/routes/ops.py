"""The admin API's operations pages: provider health and breakers, the error log, alerts and their
webhook deliveries. Answers come from the ops service (HealthCheckService, ErrorLogService,
SystemAlertService); this module only translates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aigen import errors
from aigen.grpcx.client import call
from aigen.v1 import ops_pb2
from fastapi import APIRouter, Depends, Path, Query
from google.protobuf.timestamp_pb2 import Timestamp

from services.gateway.auth import Gw, admin
from services.gateway.deps import Gateway, OpsStubs
from services.gateway.problems import bad_field
from services.gateway.routes.docs import problems
from services.gateway.schemas import Json

router = APIRouter(prefix="/admin", tags=["operations"], dependencies=[Depends(admin)])

_KINDS = {"adapter": ops_pb2.ERROR_KIND_ADAPTER, "task_failure": ops_pb2.ERROR_KIND_TASK_FAILURE}
_KIND_NAMES = {v: k for k, v in _KINDS.items()}
_STATUSES = {"open": ops_pb2.ALERT_STATUS_OPEN, "resolved": ops_pb2.ALERT_STATUS_RESOLVED}
_STATUS_NAMES = {v: k for k, v in _STATUSES.items()}

Slug = Annotated[str | None, Query(min_length=1, max_length=64)]
Since = Annotated[datetime | None, Query(description="ISO time; entries at or after it")]
Until = Annotated[datetime | None, Query(description="ISO time; entries before it")]


def ops_of(gw: Gateway) -> OpsStubs:
    if gw.services.ops is None:
        raise errors.Unavailable(
            "the ops service is not configured for this gateway", reason="OPS_UNAVAILABLE"
        )
    return gw.services.ops


def _ts(name: str, at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    ts = Timestamp()
    try:
        ts.FromDatetime(at)
    except (ValueError, OverflowError):
        raise bad_field(name, "is outside the supported range of times") from None
    return ts


def _iso(ts: Timestamp, present: bool = True) -> str | None:
    return ts.ToDatetime().isoformat() + "Z" if present and (ts.seconds or ts.nanos) else None


def health_document(status: ops_pb2.ProviderHealthStatus) -> dict[str, Any]:
    document: dict[str, Any] = {
        "provider": status.provider,
        "ok": status.ok,
        "message": status.message,
        "latencyMs": round(status.latency_ms, 1),
        "checkedAt": _iso(status.checked_at),
        "trigger": status.trigger,
        "consecutiveFailures": status.consecutive_failures,
        "breaker": "open" if status.breaker == ops_pb2.BREAKER_STATE_OPEN else "closed",
        "breakerSince": _iso(status.breaker_since),
        "breakerReason": status.breaker_reason or None,
    }
    if status.HasField("balance"):
        document["balance"] = status.balance
        document["balanceUnit"] = status.balance_unit
    return document


def alert_document(alert: ops_pb2.Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule": alert.rule,
        "subject": alert.subject,
        "severity": alert.severity,
        "status": _STATUS_NAMES.get(alert.status, "open"),
        "summary": alert.summary,
        "value": alert.value,
        "threshold": alert.threshold,
        "details": dict(alert.details),
        "raisedAt": _iso(alert.raised_at),
        "resolvedAt": _iso(alert.resolved_at),
        "resolution": alert.resolution or None,
    }


@router.get(
    "/provider-health",
    summary="Last health check and breaker state of every provider",
    response_model=Json,
    responses=problems(401),
)
async def provider_health_list(gw: Gw) -> dict[str, Any]:
    listed: ops_pb2.ListProviderHealthResponse = await call(
        ops_of(gw).health.ListProviderHealth, ops_pb2.ListProviderHealthRequest()
    )
    return {"providers": [health_document(p) for p in listed.providers]}


@router.get(
    "/errors",
    summary="Adapter errors and task failures, newest first",
    response_model=Json,
    responses=problems(401, 422),
)
async def error_log(
    gw: Gw,
    provider: Slug = None,
    model: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    code: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    task_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    kind: Literal["adapter", "task_failure"] | None = None,
    since: Since = None,
    until: Until = None,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    page_token: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
) -> dict[str, Any]:
    request = ops_pb2.ListErrorsRequest(
        provider=provider or "",
        model=model or "",
        code=code or "",
        task_id=task_id or "",
        kind=_KINDS[kind] if kind else ops_pb2.ERROR_KIND_UNSPECIFIED,
        since=_ts("since", since),
        until=_ts("until", until),
        page_size=page_size,
        page_token=page_token or "",
    )
    listed: ops_pb2.ListErrorsResponse = await call(ops_of(gw).errors.ListErrors, request)
    body: dict[str, Any] = {
        "errors": [
            {
                "id": e.id,
                "kind": _KIND_NAMES.get(e.kind, "adapter"),
                "provider": e.provider,
                "model": e.model or None,
                "taskId": e.task_id or None,
                "stage": e.stage,
                "code": e.code,
                "message": e.message,
                "retryable": e.retryable,
                "httpStatus": e.http_status or None,
                "providerCode": e.provider_code or None,
                "responseSnippet": e.response_snippet or None,
                "correlationId": e.correlation_id or None,
                "at": _iso(e.at),
            }
            for e in listed.errors
        ]
    }
    if listed.next_page_token:
        body["nextPageToken"] = listed.next_page_token
    return body


@router.get(
    "/errors/counts",
    summary="Errors per code per provider (default: the last 24 hours)",
    response_model=Json,
    responses=problems(401, 422),
)
async def error_counts(
    gw: Gw,
    provider: Slug = None,
    model: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    kind: Literal["adapter", "task_failure"] | None = None,
    since: Since = None,
    until: Until = None,
) -> dict[str, Any]:
    request = ops_pb2.CountErrorsRequest(
        provider=provider or "",
        model=model or "",
        kind=_KINDS[kind] if kind else ops_pb2.ERROR_KIND_UNSPECIFIED,
        since=_ts("since", since),
        until=_ts("until", until),
    )
    counted: ops_pb2.CountErrorsResponse = await call(ops_of(gw).errors.CountErrors, request)
    return {
        "counts": [
            {"provider": c.provider, "code": c.code, "count": c.count, "lastAt": _iso(c.last_at)}
            for c in counted.counts
        ]
    }


@router.get("/alerts", summary="Alerts, newest first", response_model=Json, responses=problems(401, 422))
async def alerts(
    gw: Gw,
    status: Literal["open", "resolved"] | None = None,
    rule: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    subject: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    page_token: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
) -> dict[str, Any]:
    request = ops_pb2.ListAlertsRequest(
        status=_STATUSES[status] if status else ops_pb2.ALERT_STATUS_UNSPECIFIED,
        rule=rule or "",
        subject=subject or "",
        page_size=page_size,
        page_token=page_token or "",
    )
    listed: ops_pb2.ListAlertsResponse = await call(ops_of(gw).alerts.ListAlerts, request)
    body: dict[str, Any] = {"alerts": [alert_document(a) for a in listed.alerts]}
    if listed.next_page_token:
        body["nextPageToken"] = listed.next_page_token
    return body


@router.get(
    "/alert-rules", summary="Alert rules and their thresholds", response_model=Json, responses=problems(401)
)
async def alert_rules(gw: Gw) -> dict[str, Any]:
    listed: ops_pb2.ListAlertRulesResponse = await call(
        ops_of(gw).alerts.ListAlertRules, ops_pb2.ListAlertRulesRequest()
    )
    return {
        "rules": [
            {"name": r.name, "description": r.description, "enabled": r.enabled, "threshold": r.threshold}
            for r in listed.rules
        ]
    }


AlertId = Annotated[str, Path(min_length=1, max_length=300)]


@router.get("/alerts/{alert_id}", summary="One alert", response_model=Json, responses=problems(401, 404, 422))
async def alert(alert_id: AlertId, gw: Gw) -> dict[str, Any]:
    found: ops_pb2.Alert = await call(ops_of(gw).alerts.GetAlert, ops_pb2.GetAlertRequest(id=alert_id))
    return alert_document(found)


@router.get(
    "/alerts/{alert_id}/deliveries",
    summary="Webhook deliveries of one alert",
    response_model=Json,
    responses=problems(401, 422),
)
async def alert_deliveries(
    alert_id: AlertId, gw: Gw, page_size: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, Any]:
    listed: ops_pb2.ListAlertDeliveriesResponse = await call(
        ops_of(gw).alerts.ListAlertDeliveries,
        ops_pb2.ListAlertDeliveriesRequest(alert_id=alert_id, page_size=page_size),
    )
    return {
        "deliveries": [
            {
                "id": d.id,
                "alertId": d.alert_id,
                "event": d.event,
                "url": d.url,
                "status": d.status,
                "attempts": d.attempts,
                "lastStatusCode": d.last_status_code or None,
                "lastError": d.last_error or None,
                "createdAt": _iso(d.created_at),
                "finishedAt": _iso(d.finished_at),
            }
            for d in listed.deliveries
        ]
    }
