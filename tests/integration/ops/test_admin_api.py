"""Operations through the gateway's admin API and the `aigen` CLI: provider health (recorded),
the error log and its counts, alerts and their rules."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import quote

from aigen.bus.consumer import record_dead_letter
from aigen.cli.main import app
from aigen.simulator.base import Script
from typer.testing import CliRunner

from tests.integration.gateway.conftest import ADMIN_TOKEN, gw

__all__ = ["gw"]  # the gateway harness fixture, with the ops service among its services

runner = CliRunner()


async def aigen(gw, tmp_path: Path, *args: str):
    env = {
        "AIGEN_GATEWAY_URL": gw.url,
        "AIGEN_CONFIG": str(tmp_path / "no-config.toml"),
        "AIGEN_HOME": str(tmp_path / "no-home"),
        "AIGEN_ADMIN_TOKEN": ADMIN_TOKEN,
        "COLUMNS": "200",
    }
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


async def test_provider_health_is_recorded_and_listed(gw, tmp_path):
    gw.pipeline.fakes["kie"].balance = 1234
    checked = await gw.admin("POST", "/admin/providers/kie/health")
    assert checked.status_code == 200, checked.text
    body = checked.json()
    assert body["ok"] and body["balance"] == 1234 and body["breaker"] == "closed"

    listed = await gw.eventually(
        lambda: gw.admin("GET", "/admin/provider-health"),
        lambda r: any(p["provider"] == "kie" for p in r.json()["providers"]),
    )
    [kie] = [p for p in listed.json()["providers"] if p["provider"] == "kie"]
    assert kie["trigger"] == "on_demand" and kie["balance"] == 1234

    shown = await aigen(gw, tmp_path, "providers", "status")
    assert shown.exit_code == 0, shown.output
    assert "kie" in shown.output and "1234 credits" in shown.output and "closed" in shown.output
    health = await aigen(gw, tmp_path, "providers", "health", "kie", "--json")
    assert health.exit_code == 0 and json.loads(health.output)["ok"] is True
    assert (await gw.admin("POST", "/admin/providers/nobody/health")).status_code == 404


async def test_error_log_and_counts(gw, tmp_path):
    gw.pipeline.fakes["kie"].script = Script(polls_to_finish=1, outcome="fail", fail_message="no dreams left")
    gw.pipeline.fakes["kie"].faults.add("rate_limit", scope="create", retry_after=0.1)
    created = await gw.pipeline.generate("kie-nano-banana")
    await gw.pipeline.settled(created.id)

    found = await gw.eventually(
        lambda: gw.admin("GET", "/admin/errors", params={"task_id": created.id}),
        lambda r: len(r.json()["errors"]) >= 2,
    )
    kinds = {(e["kind"], e["code"]) for e in found.json()["errors"]}
    assert ("adapter", "RATE_LIMITED") in kinds and ("task_failure", "GENERATION_FAILED") in kinds
    failures = await gw.admin("GET", "/admin/errors", params={"kind": "task_failure", "provider": "kie"})
    assert {e["kind"] for e in failures.json()["errors"]} == {"task_failure"}
    counts = (await gw.admin("GET", "/admin/errors/counts", params={"provider": "kie"})).json()["counts"]
    assert {"RATE_LIMITED", "GENERATION_FAILED"} <= {c["code"] for c in counts}
    bad = await gw.admin("GET", "/admin/errors", params={"provider": "Not A Slug"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "provider"

    listed = await aigen(gw, tmp_path, "errors", "list", "--task", created.id)
    assert listed.exit_code == 0, listed.output
    assert "no dreams left" in listed.output and "RATE_LIMITED" in listed.output
    counted = await aigen(gw, tmp_path, "errors", "counts", "--provider", "kie", "--since", "1h", "--json")
    assert counted.exit_code == 0 and {c["code"] for c in json.loads(counted.output)} >= {"RATE_LIMITED"}


async def test_alerts_rules_and_one_alert(gw, tmp_path):
    db = gw.pipeline.stack.runtimes["ops"].db
    await record_dead_letter(db, "poll_jobs", "task-x", None, 10, "processing failed on every claim", b"{}")
    listed = await gw.eventually(
        lambda: gw.admin("GET", "/admin/alerts", params={"status": "open"}),
        lambda r: any(a["rule"] == "dead_letters" for a in r.json()["alerts"]),
        timeout=30,
    )
    [alert] = [a for a in listed.json()["alerts"] if a["rule"] == "dead_letters"]
    assert alert["subject"] == "poll_jobs" and alert["status"] == "open"

    one = await gw.admin("GET", f"/admin/alerts/{quote(alert['id'], safe='')}")
    assert one.status_code == 200 and one.json()["id"] == alert["id"]
    deliveries = await gw.admin("GET", f"/admin/alerts/{quote(alert['id'], safe='')}/deliveries")
    assert deliveries.json() == {"deliveries": []}  # no webhooks configured
    assert (await gw.admin("GET", "/admin/alerts/alert-nope-x%231")).status_code == 404
    rules = (await gw.admin("GET", "/admin/alert-rules")).json()["rules"]
    assert {r["name"] for r in rules} >= {"provider_down", "task_stuck", "low_balance"}

    shown = await aigen(gw, tmp_path, "alerts", "list", "--open")
    assert shown.exit_code == 0 and "dead_letters" in shown.output and "poll_jobs" in shown.output
    detail = await aigen(gw, tmp_path, "alerts", "show", alert["id"])
    assert detail.exit_code == 0 and "dead-lettered" in detail.output
    assert (await aigen(gw, tmp_path, "alerts", "rules")).exit_code == 0
