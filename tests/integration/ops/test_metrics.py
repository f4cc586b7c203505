"""`/metrics` as Prometheus scrapes it: parses with prometheus_client's own parser, and the
counters of RPCs, dispatches, polls, provider calls and tasks move when a task runs."""

from __future__ import annotations

import httpx
import pytest
from aigen import metrics
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.pipeline.conftest import HAS_STORAGE

Sample = tuple[str, tuple[tuple[str, str], ...]]


@pytest.fixture(scope="module")
def metrics_url() -> str:
    # The registry is process-wide: one endpoint shows every service of the in-process stack.
    port = metrics.serve(0, addr="127.0.0.1")
    return f"http://127.0.0.1:{port}/metrics"


async def scrape(url: str) -> dict[Sample, float]:
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.get(url)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    found: dict[Sample, float] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict[Sample, float], name: str, **labels: str) -> float:
    """Sum over every label set that includes `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


async def test_metrics_parse_and_the_counters_move(ops, metrics_url):
    before = await scrape(metrics_url)
    created = await ops.pipeline.generate("kie-4o-image")
    task = await ops.settled(created.id)
    await ops.rounds(2)  # the ops projections and gauges have caught up
    after = await scrape(metrics_url)

    def moved(name: str, by: float = 1.0, **labels: str) -> None:
        assert total(after, name, **labels) - total(before, name, **labels) >= by, (name, labels)

    moved("aigen_grpc_requests_total", service="dispatcher", method="Generate", code="OK")
    moved("aigen_grpc_latency_seconds_count", service="dispatcher", method="Generate")
    moved("aigen_dispatch_outcomes_total", provider="kie", outcome="PROCESSING")
    moved("aigen_poll_outcomes_total", provider="kie", outcome="SUCCESS")
    moved("aigen_poll_lag_seconds_count")
    moved("aigen_provider_requests_total", by=3, provider="kie", status="2xx")  # create + checks
    moved("aigen_provider_request_seconds_count", provider="kie")
    moved("aigen_tasks_created_total", provider="kie", model="kie-4o-image")
    moved("aigen_relay_published_total")
    moved("aigen_consumer_events_total", outcome="processed")
    moved("aigen_spend_usd_total", by=0.03, provider="kie", model="kie-4o-image")
    if HAS_STORAGE:
        moved("aigen_tasks_finished_total", status="SUCCESS", provider="kie", model="kie-4o-image")
        moved("aigen_storage_bytes_total", by=1)
    assert task.provider_slug == "kie"
    # Labels stay bounded: no task ids, no URLs.
    for name, labels in after:
        for _, label_value in labels:
            assert created.id not in label_value and "://" not in label_value, (name, labels)


async def test_provider_errors_count_by_code(ops, metrics_url):
    before = await scrape(metrics_url)
    ops.pipeline.fakes["kie"].faults.add("rate_limit", scope="create", retry_after=0.1)
    await ops.settled((await ops.pipeline.generate("kie-nano-banana")).id)
    after = await scrape(metrics_url)
    for name, labels in (
        ("aigen_dispatch_outcomes_total", {"provider": "kie", "outcome": "ERROR", "code": "RATE_LIMITED"}),
        ("aigen_provider_errors_total", {"provider": "kie", "stage": "dispatch", "code": "RATE_LIMITED"}),
        ("aigen_provider_requests_total", {"provider": "kie", "status": "4xx"}),
    ):
        assert value(after, name, **labels) - value(before, name, **labels) >= 1, (name, labels)
