"""Prometheus metrics, with bounded label sets (service, method, code, provider, model, status).

Every service exposes them on `/metrics` (AIGEN_METRICS_PORT); the gateway also on its HTTP port.
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram, start_http_server

GRPC_REQUESTS = Counter("aigen_grpc_requests_total", "gRPC calls handled", ["service", "method", "code"])
GRPC_LATENCY = Histogram(
    "aigen_grpc_latency_seconds",
    "gRPC call latency",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RELAY_PUBLISHED = Counter("aigen_relay_published_total", "Events published to JetStream by the relay")
RELAY_LAG = Gauge("aigen_relay_lag_events", "Events in the log not yet published")
PROJECTION_LAG = Gauge("aigen_projection_lag_events", "Events a projection has yet to apply", ["projection"])
CONSUMER_EVENTS = Counter(
    "aigen_consumer_events_total", "Events handled by NATS consumers", ["consumer", "outcome"]
)


# --- providers, dispatch and polling (dispatcher, poller, catalog) ---------------------------------
PROVIDER_REQUESTS = Counter(
    "aigen_provider_requests_total",
    "HTTP requests to provider APIs, by status class (2xx, 4xx, 5xx, or transport for no answer)",
    ["provider", "status"],
)
PROVIDER_LATENCY = Histogram(
    "aigen_provider_request_seconds",
    "Latency of HTTP requests to provider APIs",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
DISPATCH_OUTCOMES = Counter(
    "aigen_dispatch_outcomes_total",
    "Adapter answers to dispatches: SUCCESS, PROCESSING or ERROR with its code",
    ["provider", "outcome", "code"],
)
POLL_OUTCOMES = Counter(
    "aigen_poll_outcomes_total",
    "Adapter answers to status checks: SUCCESS, PROCESSING or ERROR with its code",
    ["provider", "outcome", "code"],
)
POLL_LAG = Histogram(
    "aigen_poll_lag_seconds",
    "Time between a status check falling due and a poller claiming it",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30, 60),
)
ERRORS_RECORDED = Counter(
    "aigen_provider_errors_total", "Adapter errors recorded in the error log", ["provider", "stage", "code"]
)

# --- the task pipeline as the ops service sees it in the log --------------------------------------
TASKS_CREATED = Counter("aigen_tasks_created_total", "Tasks created", ["provider", "model"])
TASKS_FINISHED = Counter(
    "aigen_tasks_finished_total",
    "Tasks that reached SUCCESS, FAILED or CANCELLED",
    ["status", "provider", "model"],
)
TASKS_IN_FLIGHT = Gauge(
    "aigen_tasks_in_flight", "Tasks PENDING or PROCESSING now", ["status", "provider", "model"]
)
SPEND_USD = Counter(
    "aigen_spend_usd_total",
    "What finished tasks cost, in US dollars (the provider's reported charge, else the quote)",
    ["provider", "model"],
)

# --- operations: health, breakers, alerts, webhooks ----------------------------------------------
PROVIDER_UP = Gauge("aigen_provider_up", "1 when the provider's last health check passed", ["provider"])
PROVIDER_BALANCE = Gauge(
    "aigen_provider_balance", "Balance the provider reported at its last health check", ["provider", "unit"]
)
BREAKER_OPEN = Gauge("aigen_breaker_open", "1 while the provider is cooled down", ["provider"])
ALERTS_OPEN = Gauge("aigen_alerts_open", "Alerts raised and not yet resolved", ["rule"])
WEBHOOK_DELIVERIES = Counter(
    "aigen_webhook_deliveries_total",
    "Webhook delivery attempts: client (task webhooks) or alert, by outcome",
    ["kind", "outcome"],
)

# --- the REST gateway ------------------------------------------------------------------------------
HTTP_REQUESTS = Counter("aigen_http_requests_total", "REST requests handled", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "aigen_http_latency_seconds",
    "REST request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,47}$")


def code_label(code: str | None) -> str:
    """An error code as a label value: our codes pass, anything else (free text) is OTHER."""
    if not code:
        return ""
    return code if _CODE.match(code) else "OTHER"


def status_class(status: int | None) -> str:
    return "transport" if status is None else f"{status // 100}xx"


def serve(port: int, addr: str = "0.0.0.0") -> int:
    """Expose /metrics on a port of its own (a thread; the registry is process-wide). Port 0
    picks a free one; the port is returned."""
    server, _thread = start_http_server(port, addr=addr)
    return int(server.server_port)
