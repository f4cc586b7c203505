"""Spans continue the caller's trace whether or not this process records them."""

from __future__ import annotations

from aigen import tracing
from opentelemetry import trace

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_span_makes_its_parent_current_and_gives_it_back():
    before = tracing.current_trace_context()
    with tracing.span("aigen.test", "work", context=tracing.context_from({"traceparent": PARENT})) as span:
        inside = tracing.current_trace_context()["traceparent"]
        span.set_attribute("aigen.test", "ok")  # usable whether recorded or not
    # The same trace, continued (a recorded span is the parent's child, an unrecorded one is it).
    assert inside.split("-")[1] == PARENT.split("-")[1]
    if not tracing.recording():
        assert inside == PARENT
    assert tracing.current_trace_context() == before


def test_without_a_parent_the_current_span_stays_the_one_in_force():
    with (
        tracing.span("aigen.test", "outer", context=tracing.context_from({"traceparent": PARENT})),
        tracing.span("aigen.test", "inner", kind=trace.SpanKind.CLIENT),
    ):
        inner = tracing.current_trace_context()["traceparent"]
    assert inner.split("-")[1] == PARENT.split("-")[1]
