"""One trace from a REST call to the provider: gateway → gRPC → dispatch worker → adapter HTTP,
and on through the NATS consumers of the task's events, exported to an in-memory exporter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aigen import tracing
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.integration.gateway.conftest import gateway_running

API = "/api/external/ai-generation"


@pytest.fixture(scope="module")
def exported() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        # Set once per process (OpenTelemetry refuses a second global provider).
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # later spans are dropped, not kept in memory


def named(spans: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_a_trace_spans_gateway_dispatcher_and_adapter_with_one_trace_id(
    pg_url, nats_url, monkeypatch, tmp_path, exported
):
    async with gateway_running(pg_url, nats_url, monkeypatch, tmp_path) as gw:
        key = (await gw.create_key(name="traced"))["key"]
        exported.clear()
        reply = await gw.as_key(
            key, "POST", API, json={"model_slug": "kie-4o-image", "prompt": "a lighthouse"}
        )
        assert reply.status_code in (200, 201, 202), reply.text
        task_id = reply.json()["taskId"]
        await gw.eventually(
            lambda: gw.as_key(key, "GET", f"{API}/{task_id}"),
            lambda r: r.json()["status"] in ("SUCCESS", "FAILED"),
            timeout=60,
        )
        await asyncio.sleep(0.5)  # the last consumers finish their spans

    spans = list(exported.get_finished_spans())
    [rest] = [s for s in named(spans, "POST /api/external/ai-generation") if s.kind == trace.SpanKind.SERVER]
    trace_id = rest.context.trace_id
    assert rest.attributes["http.route"] == API
    same = [s for s in spans if s.context.trace_id == trace_id]

    [generate] = named(same, "/aigen.v1.GenerationService/Generate")
    assert generate.kind == trace.SpanKind.SERVER and generate.parent is not None
    dispatch = [s for s in named(same, "dispatch") if s.attributes.get("aigen.task_id") == task_id]
    assert dispatch, "the dispatch worker continues the request's trace"
    provider_calls = [
        s for s in same if s.kind == trace.SpanKind.CLIENT and s.attributes.get("aigen.provider") == "kie"
    ]
    assert provider_calls, "the adapter's HTTP calls are in the trace"
    assert any(s.attributes.get("http.response.status_code") == 200 for s in provider_calls)
    consumers = [s for s in same if s.kind == trace.SpanKind.CONSUMER]
    assert any("TaskDispatched" in s.name for s in consumers), "NATS consumers continue it from the event"
    services = {s.name for s in same}
    assert len(services) >= 5, services


def test_tracing_is_off_unless_an_exporter_is_configured(monkeypatch):
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tracing, "_configured", False)
    before = trace.get_tracer_provider()
    tracing.setup_tracing("test")
    assert trace.get_tracer_provider() is before and tracing._configured is False
