"""REST requests as spans and Prometheus metrics, and `/metrics` on the gateway's own port.

Each request runs in a server span that continues the caller's `traceparent` (or starts a
trace): FastAPI's own when its telemetry opened one, else ours. The gRPC calls it makes carry it
on, so one trace runs from the REST call through the services, NATS and the provider calls.
Metrics are labelled by route template (`/api/external/ai-generation/{task_id}`), never by the
concrete path, so their label sets stay bounded; requests that match no route are `unmatched`.
"""

from __future__ import annotations

import time
from typing import Any

from aigen import metrics
from aigen.tracing import context_from, tracer
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_TRACE_HEADERS = (b"traceparent", b"tracestate")


def route_of(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            k.decode(): v.decode("latin-1") for k, v in scope.get("headers", ()) if k in _TRACE_HEADERS
        }
        method = scope.get("method", "GET")
        status = 500
        started = time.perf_counter()

        async def recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        if trace.get_current_span().is_recording():
            # FastAPI's own telemetry (recent releases) opened the request's server span already,
            # and names and ends it itself: nest nothing, only count.
            try:
                await self.app(scope, receive, recorded)
            finally:
                self._count(scope, method, status, started)
            return
        with tracer("aigen.gateway").start_as_current_span(
            method, context=context_from(carrier), kind=trace.SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, recorded)
            finally:
                route = route_of(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(trace.StatusCode.ERROR)
                self._count(scope, method, status, started)

    @staticmethod
    def _count(scope: Scope, method: str, status: int, started: float) -> None:
        route = route_of(scope)
        metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
        metrics.HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition of the process registry."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
