"""Prometheus metrics, with bounded label sets (service, method, code, provider, model, status).

Every service exposes them on `/metrics` (AIGEN_METRICS_PORT); the gateway also on its HTTP port.
"""

from __future__ import annotations

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


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Expose /metrics on a port of its own (a thread; the registry is process-wide)."""
    start_http_server(port, addr=addr)
