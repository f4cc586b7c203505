"""Alert rules against the real pipeline: low balance, stuck tasks, dead letters, lag, budget; and
how alerts leave the system: NATS (`aigen.alerts.<rule>`) and retried Slack-compatible webhooks."""

from __future__ import annotations

import json

import pytest
from aigen import errors
from aigen.bus.connection import connect as connect_nats
from aigen.bus.consumer import decode_envelope, record_dead_letter
from aigen.grpcx.client import call
from aigen.simulator.serving import serve_asgi
from aigen.v1 import generation_pb2, ops_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse

from tests.integration.ops.conftest import ops_running


async def test_low_balance_raises_the_balance_alert_from_scheduled_checks(
    pg_url, nats_url, monkeypatch, tmp_path
):
    env = {"AIGEN_OPS_HEALTH_INTERVAL_S": "0.5", "AIGEN_ALERT_LOW_BALANCE": "kie=100,*=0"}
    async with ops_running(pg_url, nats_url, monkeypatch, tmp_path, env=env) as ops:
        kie = ops.pipeline.fakes["kie"]
        kie.balance = 42
        [alert] = await ops.eventually(lambda: ops.alerts_of("low_balance", "kie"), lambda a: len(a) == 1)
        assert alert.status == ops_pb2.ALERT_STATUS_OPEN
        assert alert.value == 42 and alert.threshold == 100 and "42 credits" in alert.summary
        checks = await ops.stream("provider-kie")
        assert checks and checks[-1].balance == 42 and checks[-1].trigger == "scheduled"
        listed = await call(ops.health.ListProviderHealth, ops_pb2.ListProviderHealthRequest())
        kie_status = next(p for p in listed.providers if p.provider == "kie")
        assert kie_status.ok and kie_status.balance == 42 and kie_status.balance_unit == "credits"

        kie.balance = 10_000  # topped up
        await ops.eventually(
            lambda: ops.alerts_of("low_balance", "kie"),
            lambda a: a[0].status == ops_pb2.ALERT_STATUS_RESOLVED,
        )
        assert await ops.stream_types("alert-low_balance-kie") == ["AlertRaised", "AlertResolved"]


async def test_on_demand_check_records_the_answer_and_refuses_bad_input(ops):
    kie = ops.pipeline.fakes["kie"]
    kie.faults.add("auth", scope="any")
    status = await call(ops.health.CheckProviderHealth, ops_pb2.ProviderHealthCheckRequest(provider="kie"))
    assert not status.ok and status.consecutive_failures == 1 and status.trigger == "on_demand"
    again = await call(ops.health.CheckProviderHealth, ops_pb2.ProviderHealthCheckRequest(provider="kie"))
    assert again.ok and again.consecutive_failures == 0 and again.balance > 0
    assert [c.ok for c in await ops.stream("provider-kie")] == [False, True]
    with pytest.raises(errors.InvalidArgument) as bad:
        await call(ops.health.CheckProviderHealth, ops_pb2.ProviderHealthCheckRequest(provider=""))
    assert bad.value.violations[0].field == "provider"
    with pytest.raises(errors.InvalidArgument):
        await call(ops.health.CheckProviderHealth, ops_pb2.ProviderHealthCheckRequest(provider="Not A Slug!"))
    with pytest.raises(errors.NotFound):
        await call(ops.health.CheckProviderHealth, ops_pb2.ProviderHealthCheckRequest(provider="nobody"))


async def test_a_task_nobody_polls_raises_the_stuck_alert(pg_url, nats_url, monkeypatch, tmp_path):
    # No poller runs: the task sits at the provider past its polling deadline.
    env = {"AIGEN_POLL_MAX_DURATION_S": "1", "AIGEN_ALERT_STUCK_GRACE_S": "0.5"}
    async with ops_running(
        pg_url, nats_url, monkeypatch, tmp_path, env=env, services=("catalog", "dispatcher", "ops")
    ) as ops:
        created = await ops.pipeline.generate("kie-nano-banana")
        await ops.pipeline.wait_for(created.id, lambda t: t.status == generation_pb2.PROCESSING)
        [alert] = await ops.eventually(lambda: ops.alerts_of("task_stuck", "kie"), lambda a: len(a) == 1)
        assert alert.details["task_ids"] == created.id and alert.value == 1
        assert created.id in alert.summary and "processing" in alert.summary
        await ops.rounds(3)
        assert await ops.stream_types("alert-task_stuck-kie") == ["AlertRaised"]

        # Once the task ends, the alert resolves.
        await call(ops.pipeline.generation.DeleteTask, generation_pb2.DeleteTaskRequest(id=created.id))
        await ops.eventually(
            lambda: ops.alerts_of("task_stuck", "kie"), lambda a: a[0].status == ops_pb2.ALERT_STATUS_RESOLVED
        )


async def test_dead_letters_raise_an_alert(ops):
    db = ops.pipeline.stack.runtimes["ops"].db
    await record_dead_letter(db, "poll_jobs", "task-x", None, 10, "processing failed on every claim", b"{}")
    [alert] = await ops.eventually(lambda: ops.alerts_of("dead_letters", "poll_jobs"), lambda a: len(a) == 1)
    assert alert.value == 1 and "poll_jobs" in alert.summary


async def test_a_stopped_projection_raises_a_critical_lag_alert(ops):
    db = ops.pipeline.stack.runtimes["ops"].db
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO checkpoints (name, position, state, error) "
            "VALUES ('projection:imaginary', 0, 'stalled', 'unknown event type')"
        )
    [alert] = await ops.eventually(
        lambda: ops.alerts_of("lag", "projection:imaginary"), lambda a: len(a) == 1
    )
    assert alert.severity == "critical" and "unknown event type" in alert.summary
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM checkpoints WHERE name = 'projection:imaginary'")
    await ops.eventually(
        lambda: ops.alerts_of("lag", "projection:imaginary"),
        lambda a: a[0].status == ops_pb2.ALERT_STATUS_RESOLVED,
    )


async def test_spend_near_the_budget_raises_the_budget_alert(pg_url, nats_url, monkeypatch, tmp_path):
    env = {"AIGEN_ALERT_BUDGET_USD": "0.05", "AIGEN_ALERT_BUDGET_FRACTION": "0.5"}
    async with ops_running(pg_url, nats_url, monkeypatch, tmp_path, env=env) as ops:
        assert not await ops.alerts_of("budget")
        created = await ops.pipeline.generate("kie-4o-image")  # quoted at $0.03
        await ops.settled(created.id)
        [alert] = await ops.eventually(lambda: ops.alerts_of("budget", "month"), lambda a: len(a) == 1)
        assert alert.value == pytest.approx(0.6) and alert.details["budget_usd"] == "0.05"


class Receiver:
    """A webhook endpoint that fails its first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict] = []
        self.calls = 0

    async def __call__(self, scope, receive, send) -> None:
        request = Request(scope, receive)
        self.calls += 1
        body = json.loads(await request.body())
        if self.calls <= self.failures:
            response = JSONResponse({"error": "not now"}, status_code=503)
        else:
            self.bodies.append(body)
            response = JSONResponse({"ok": True})
        await response(scope, receive, send)


async def test_alerts_go_to_nats_and_to_webhooks_with_retries(pg_url, nats_url, monkeypatch, tmp_path):
    receiver = Receiver(failures=1)
    async with serve_asgi(receiver) as receiver_url:
        env = {
            "AIGEN_ALERT_WEBHOOKS": f"{receiver_url}/services/T000/B000/hook-secret",
            "AIGEN_ALERT_WEBHOOK_SCHEDULE": "0.2,0.2,0.2",
        }
        async with ops_running(pg_url, nats_url, monkeypatch, tmp_path, env=env) as ops:
            topology = ops.pipeline.stack.runtimes["ops"].topology
            nc = await connect_nats(nats_url)
            try:
                sub = await nc.subscribe(topology.alert_subject("*"))
                db = ops.pipeline.stack.runtimes["ops"].db
                await record_dead_letter(db, "storage-completed", None, 7, 20, "max deliveries reached", None)
                msg = await sub.next_msg(timeout=20)
                envelope, message = decode_envelope(msg.data)
                assert msg.subject == topology.alert_subject("dead_letters")
                assert envelope.type == "aigen.v1.AlertRaised" and message.subject == "storage-completed"
                stored = await nc.jetstream().stream_info(topology.alerts_stream)
                assert stored.state.messages >= 1
            finally:
                await nc.close()

            async def bodies() -> list[dict]:
                return receiver.bodies

            await ops.eventually(bodies, lambda b: len(b) == 1)
            [body] = receiver.bodies
            assert body["text"].startswith(":warning: [WARNING] dead_letters")
            assert body["alert"]["status"] == "raised" and body["alert"]["subject"] == "storage-completed"
            assert receiver.calls == 2  # the first attempt was refused, the retry went through
            # The alert list is a read model: it may follow the delivery a moment later.
            [alert] = await ops.eventually(
                lambda: ops.alerts_of("dead_letters", "storage-completed"), lambda a: len(a) == 1
            )
            assert body["alert"]["id"] == alert.id
            deliveries = await call(
                ops.alerts.ListAlertDeliveries, ops_pb2.ListAlertDeliveriesRequest(alert_id=alert.id)
            )
            [delivery] = deliveries.deliveries
            assert delivery.status == "delivered" and delivery.attempts == 2 and delivery.event == "raised"
            assert "hook-secret" not in delivery.url  # the URL's secret path is never listed


async def test_alert_rules_are_listed_with_their_thresholds(ops):
    rules = await call(ops.alerts.ListAlertRules, ops_pb2.ListAlertRulesRequest())
    by = {r.name: r for r in rules.rules}
    assert set(by) == {
        "provider_failure_rate",
        "provider_down",
        "low_balance",
        "task_stuck",
        "lag",
        "dead_letters",
        "budget",
    }
    assert not by["budget"].enabled and "AIGEN_ALERT_BUDGET_USD" in by["budget"].threshold
    assert by["provider_down"].enabled
    with pytest.raises(errors.InvalidArgument) as bad:
        await call(ops.alerts.ListAlerts, ops_pb2.ListAlertsRequest(rule="made_up"))
    assert bad.value.violations[0].field == "rule"
    with pytest.raises(errors.NotFound):
        await call(ops.alerts.GetAlert, ops_pb2.GetAlertRequest(id="alert-nope-nope#1"))
