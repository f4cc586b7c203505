"""Circuit breaking through the real pipeline: a provider failing half its dispatches is cooled
down and raises one alert; a passing probe brings it back and resolves the alert."""

from __future__ import annotations

from aigen.eventstore.mapper import to_new_event
from aigen.eventstore.store import ANY_VERSION, EventStore
from aigen.grpcx.client import call
from aigen.ops.streams import breaker_stream
from aigen.v1 import catalog_pb2, generation_pb2, ops_pb2
from google.protobuf.struct_pb2 import Struct

from tests.integration.ops.conftest import ops_running
from tests.integration.pipeline.conftest import pipeline_running

CREATE = "/api/v1/jobs/createTask"
HALF_FAILING = {
    "AIGEN_BREAKER_MIN_ATTEMPTS": "6",
    "AIGEN_BREAKER_FAILURE_RATE": "0.3",
    "AIGEN_ALERT_FAILURE_RATE": "0.3",
    "AIGEN_BREAKER_COOLDOWN_S": "3600",  # only an explicit probe brings it back in this test
}


async def test_half_failing_provider_opens_the_breaker_and_alerts_once_then_recovery_closes_both(
    pg_url, nats_url, monkeypatch, tmp_path
):
    async with ops_running(pg_url, nats_url, monkeypatch, tmp_path, env=HALF_FAILING) as ops:
        kie = ops.pipeline.fakes["kie"]
        kie.faults.create_failure_rate = 0.5
        created = [await ops.pipeline.generate("kie-nano-banana") for _ in range(8)]

        await ops.eventually(lambda: ops.stream_types("breaker-kie"), lambda t: t == ["ProviderCooledDown"])
        [cooled] = await ops.stream("breaker-kie")
        assert cooled.attempts >= 6 and cooled.failure_rate >= 0.3
        assert cooled.last_error_code == "PROVIDER_UNAVAILABLE"
        for task in created:
            await ops.settled(task.id)

        # While cooled down, kie is not called: the task is refused, saying why.
        calls = len(kie.requests_to(CREATE, "POST"))
        refused = await ops.settled((await ops.pipeline.generate("kie-nano-banana")).id)
        assert refused.status == generation_pb2.FAILED
        assert refused.error.code == "PROVIDER_UNAVAILABLE" and "cooled down" in refused.error.message
        assert len(kie.requests_to(CREATE, "POST")) == calls

        # One alert while the condition lasts, however many rounds pass.
        await ops.eventually(lambda: ops.alerts_of("provider_down", "kie"), lambda a: len(a) == 1)
        await ops.rounds(5)
        assert await ops.stream_types("alert-provider_down-kie") == ["AlertRaised"]
        assert await ops.stream_types("alert-provider_failure_rate-kie") == ["AlertRaised"]
        [down] = await ops.alerts_of("provider_down", "kie")
        assert down.status == ops_pb2.ALERT_STATUS_OPEN and down.severity == "critical"
        listed = await call(ops.health.ListProviderHealth, ops_pb2.ListProviderHealthRequest())
        assert any(p.provider == "kie" and p.breaker == ops_pb2.BREAKER_STATE_OPEN for p in listed.providers)

        # Recovery: the provider behaves again and a probe passes.
        kie.faults.clear()
        status = await call(
            ops.health.CheckProviderHealth, ops_pb2.ProviderHealthCheckRequest(provider="kie")
        )
        assert status.ok and status.breaker == ops_pb2.BREAKER_STATE_CLOSED
        assert await ops.stream_types("breaker-kie") == ["ProviderCooledDown", "ProviderRecovered"]
        for rule in ("provider_down", "provider_failure_rate"):
            await ops.eventually(
                lambda rule=rule: ops.stream_types(f"alert-{rule}-kie"),
                lambda t: t == ["AlertRaised", "AlertResolved"],
            )
            # The alert list is a read model: it follows the stream a moment later.
            await ops.eventually(
                lambda rule=rule: ops.alerts_of(rule, "kie"),
                lambda alerts: [a.status for a in alerts] == [ops_pb2.ALERT_STATUS_RESOLVED],
            )
            [alert] = await ops.alerts_of(rule, "kie")
            assert alert.status == ops_pb2.ALERT_STATUS_RESOLVED and alert.HasField("resolved_at")

        served = await ops.settled((await ops.pipeline.generate("kie-nano-banana")).id)
        assert served.status != generation_pb2.FAILED and served.provider_slug == "kie"
        assert len(kie.requests_to(CREATE, "POST")) == calls + 1


async def test_an_open_breaker_closes_after_the_scheduled_probe_passes(
    pg_url, nats_url, monkeypatch, tmp_path
):
    env = {
        "AIGEN_BREAKER_MIN_ATTEMPTS": "3",
        "AIGEN_BREAKER_COOLDOWN_S": "0.5",
        "AIGEN_BREAKER_PROBE_S": "0.3",
    }
    async with ops_running(pg_url, nats_url, monkeypatch, tmp_path, env=env) as ops:
        catalog = ops.pipeline.catalog
        # A key the provider refuses: dispatches fail (401, the provider's side) and so do probes.
        await call(
            catalog.UpdateProviderApiKey,
            catalog_pb2.UpdateProviderApiKeyRequest(provider="kie", api_key="kie-revoked-key-00000000"),
        )
        for _ in range(3):
            failed = await ops.settled((await ops.pipeline.generate("kie-nano-banana")).id)
            assert failed.status == generation_pb2.FAILED and failed.error.code == "AUTH_FAILED"
        await ops.eventually(lambda: ops.stream_types("breaker-kie"), lambda t: t == ["ProviderCooledDown"])

        async def probes() -> list:
            return [c for c in await ops.stream("provider-kie") if c.trigger == "breaker_probe"]

        await ops.eventually(probes, lambda p: len(p) >= 2)
        assert not any(p.ok for p in await probes())
        assert await ops.stream_types("breaker-kie") == ["ProviderCooledDown"]  # failed probes keep it open

        # The operator fixes the key (back to the environment's); the next probe passes.
        await call(catalog.UpdateProviderApiKey, catalog_pb2.UpdateProviderApiKeyRequest(provider="kie"))
        await ops.eventually(
            lambda: ops.stream_types("breaker-kie"),
            lambda t: t == ["ProviderCooledDown", "ProviderRecovered"],
        )
        [_, recovered] = await ops.stream("breaker-kie")
        assert recovered.trigger == "breaker_probe"
        assert (await probes())[-1].ok


def _params(**values) -> Struct:
    s = Struct()
    s.update(values)
    return s


async def test_a_cooled_down_provider_fails_over_without_being_called(
    pg_url, nats_url, monkeypatch, tmp_path
):
    """The dispatcher reads the breaker from the log: no ops service needs to run for it."""
    env = {"AIGEN_BREAKER_CACHE_S": "0"}
    async with pipeline_running(pg_url, nats_url, monkeypatch, tmp_path, env=env) as pipeline:
        store = EventStore(pipeline.stack.runtimes["dispatcher"].db)
        cooled = ops_pb2.ProviderCooledDown(provider_slug="kie", reason="6 of the last 10 dispatches failed")
        await store.append(breaker_stream("kie"), ANY_VERSION, [to_new_event(cooled)])
        kie = pipeline.fakes["kie"]
        created = await pipeline.generate(
            "kie-kling-v2-master-text-to-video", prompt="a paper boat", parameters=_params(duration="5")
        )
        task = await pipeline.settled(created.id, timeout=60)
        assert task.provider_slug in ("tuzi", "pollo") and task.status != generation_pb2.FAILED
        assert not kie.requests_to(CREATE, "POST")
