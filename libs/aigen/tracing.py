"""OpenTelemetry wiring: off unless the standard OTEL_* variables ask for an exporter.

Trace context travels in gRPC metadata, in NATS message headers and in event metadata
(`trace_context`), so one trace spans gateway → services → NATS → provider calls.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.util.types import Attributes

_configured = False


def setup_tracing(service: str) -> None:
    """Install an SDK tracer provider when OTEL_TRACES_EXPORTER / an OTLP endpoint is configured."""
    global _configured
    if _configured:
        return
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if exporter_name in ("", "none") and not endpoint:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", f"aigen-{service}")})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer(name: str = "aigen") -> trace.Tracer:
    return trace.get_tracer(name)


def recording() -> bool:
    """Whether this process records spans (a tracer provider was installed)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def span(
    tracer_name: str,
    name: str,
    *,
    context: Context | None = None,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Attributes = None,
) -> AbstractContextManager[trace.Span]:
    """`tracer(tracer_name).start_as_current_span(...)`. When nothing records spans, only what the
    API's no-op span would do: make the parent's span context current (so it still travels on
    in the events and calls made inside), without building a span that nobody keeps — a cost paid
    for every event consumed, call served and status checked."""
    if recording():
        return tracer(tracer_name).start_as_current_span(
            name, context=context, kind=kind, attributes=attributes
        )
    return _Parent(context)


class _Parent:
    """Makes the span of `context` (if any) current while the block runs."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: Context | None) -> None:
        self._context = context
        self._token: object | None = None

    def __enter__(self) -> trace.Span:
        if self._context is None:
            return trace.get_current_span()
        parent = trace.get_current_span(self._context)
        self._token = otel_context.attach(trace.set_span_in_context(parent))
        return parent

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]


def current_trace_context() -> dict[str, str]:
    """The active span's W3C trace context, for carrying across a process boundary."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str] | None) -> Context | None:
    if not carrier:
        return None
    return propagate.extract(dict(carrier))
