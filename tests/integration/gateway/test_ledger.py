"""The billing ledger over the whole task lifecycle: hold, release, settle, late charge; totals;
the read model equals a rebuild from the log."""

from __future__ import annotations

from decimal import Decimal

from aigen.eventstore.mapper import decode
from aigen.eventstore.store import EventStore
from aigen.projections.runner import ProjectionRunner
from aigen.simulator.base import Script

from services.gateway.projection import LedgerProjection
from tests.integration.gateway.conftest import gateway_running

API = "/api/external/ai-generation"


async def ledger_task(gw, task_id: str, state: str) -> dict:
    reply = await gw.eventually(
        lambda: gw.admin("GET", "/admin/ledger/tasks"),
        lambda r: any(t["taskId"] == task_id and t["state"] == state for t in r.json()["tasks"]),
    )
    return next(t for t in reply.json()["tasks"] if t["taskId"] == task_id)


async def ledger_events(gw, key_id: str) -> list[str]:
    store = EventStore(gw.gateway.db)
    return [type(decode(e)).__name__ for e in await store.read_stream(f"ledger-{key_id}")]


async def test_success_settles_at_the_providers_reported_cost(gw):
    key = await gw.create_key(name="settle", budget_usd="10")
    made = await gw.as_key(
        key["key"],
        "POST",
        API,
        json={"model_slug": "kie-nano-banana", "prompt": "a reef"},
        params={"wait": 30},
    )
    task = made.json()
    assert task["status"] == "SUCCESS"
    assert task["cost"]["chargedUsd"]
    row = await ledger_task(gw, task["taskId"], "settled")
    assert row["basis"] == "provider"
    assert Decimal(row["chargedUsd"]) == Decimal(task["cost"]["chargedUsd"])
    assert row["heldUsd"] == "0"
    assert row["quotedUsd"] == task["cost"]["quotedUsd"]
    assert await ledger_events(gw, key["id"]) == ["HoldPlaced", "ChargeSettled"]
    usage = (await gw.as_key(key["key"], "GET", "/api/external/usage")).json()
    assert usage["openUsd"] == "0"
    assert Decimal(usage["periodChargedUsd"]) == Decimal(task["cost"]["chargedUsd"])


async def test_failure_before_any_charge_releases_the_hold(gw):
    gw.pipeline.fakes["kie"].script = Script(polls_to_finish=1, outcome="fail", fail_message="no dreams left")
    key = await gw.create_key(name="release", budget_usd="1")
    made = await gw.as_key(
        key["key"], "POST", API, json={"model_slug": "kie-nano-banana", "prompt": "x"}, params={"wait": 30}
    )
    assert made.json()["status"] == "FAILED"
    assert "no dreams left" in made.json()["error"]["message"]
    row = await ledger_task(gw, made.json()["taskId"], "released")
    assert row["chargedUsd"] == "0"
    assert row["heldUsd"] == "0"
    assert await ledger_events(gw, key["id"]) == ["HoldPlaced", "HoldReleased"]
    usage = (await gw.as_key(key["key"], "GET", "/api/external/usage")).json()
    assert usage["openUsd"] == "0"
    assert usage["periodChargedUsd"] == "0"
    assert usage["remainingUsd"] == "1"


async def test_late_success_after_timeout_is_charged_again_visibly(pg_url, nats_url, monkeypatch, tmp_path):
    env = {"AIGEN_POLL_MAX_DURATION_S": "0.6", "AIGEN_POLL_RECONCILE_AFTER_S": "1.0"}
    async with gateway_running(pg_url, nats_url, monkeypatch, tmp_path, env=env) as gw:
        gw.pipeline.fakes["kie"].script = Script(seconds_to_finish=1.2)
        key = await gw.create_key(name="late")
        made = await gw.as_key(key["key"], "POST", API, json={"model_slug": "kie-nano-banana", "prompt": "x"})
        task_id = made.json()["taskId"]
        await gw.eventually(
            lambda: gw.as_key(key["key"], "GET", f"{API}/{task_id}"),
            lambda r: r.json()["status"] == "SUCCESS",
        )
        row = await gw.eventually(
            lambda: gw.admin("GET", "/admin/ledger/tasks"),
            lambda r: any(t["taskId"] == task_id and t["late"] for t in r.json()["tasks"]),
        )
        row = next(t for t in row.json()["tasks"] if t["taskId"] == task_id)
        assert row["state"] == "released"
        assert Decimal(row["chargedUsd"]) > 0
        assert await ledger_events(gw, key["id"]) == ["HoldPlaced", "HoldReleased", "LateChargeRecorded"]
        totals = (
            await gw.admin("GET", "/admin/ledger", params={"group_by": "key", "key_id": key["id"]})
        ).json()
        assert totals["totals"][0]["lateChargedUsd"] == row["chargedUsd"]
        assert totals["totals"][0]["chargedUsd"] == row["chargedUsd"]


async def test_totals_by_key_model_shot_and_day_and_a_rebuild_equals_the_live_model(gw):
    a = await gw.create_key(name="a")
    b = await gw.create_key(name="b")
    ids = []
    for key, model in ((a, "kie-4o-image"), (a, "kie-4o-image"), (a, "local-image"), (b, "kie-4o-image")):
        reply = await gw.as_key(
            key["key"], "POST", API, json={"model_slug": model, "prompt": "p"}, params={"wait": 30}
        )
        assert reply.json()["status"] == "SUCCESS", reply.text
        ids.append(reply.json()["taskId"])
    still = {"model_slug": "kie-4o-image", "prompt": "studio still", "shot_id": "shot-7"}
    admin_made = await gw.admin("POST", "/admin/tasks", json=still, params={"wait": 30})
    assert admin_made.json()["status"] == "SUCCESS"
    for task_id in [*ids, admin_made.json()["taskId"]]:
        await ledger_task(gw, task_id, "settled")

    by_key = {
        t["group"]: t
        for t in (await gw.admin("GET", "/admin/ledger", params={"group_by": "key"})).json()["totals"]
    }
    assert by_key[a["id"]]["tasks"] == 3
    assert by_key[a["id"]]["chargedUsd"] == "0.06"
    assert by_key[b["id"]]["chargedUsd"] == "0.03"
    assert by_key[""]["chargedUsd"] == "0.03"
    by_model = {
        t["group"]: t
        for t in (
            await gw.admin("GET", "/admin/ledger", params={"group_by": "model", "key_id": a["id"]})
        ).json()["totals"]
    }
    assert by_model["kie-4o-image"]["tasks"] == 2
    assert by_model["local-image"]["chargedUsd"] == "0"
    by_shot = (
        await gw.admin("GET", "/admin/ledger", params={"group_by": "shot", "shot_id": "shot-7"})
    ).json()
    assert by_shot["totals"] == [
        {**by_shot["totals"][0], "group": "shot-7", "tasks": 1, "chargedUsd": "0.03"}
    ]
    by_day = (await gw.admin("GET", "/admin/ledger", params={"group_by": "day"})).json()
    assert len(by_day["totals"]) == 1
    assert by_day["summary"]["chargedUsd"] == "0.12"

    async def snapshot() -> list[tuple]:
        async with gw.gateway.db.connection() as conn:
            entries = await (await conn.execute("SELECT * FROM ledger_entries ORDER BY position")).fetchall()
            tasks = await (await conn.execute("SELECT * FROM ledger_tasks ORDER BY task_id")).fetchall()
        return [*entries, *tasks]

    live = await snapshot()
    await ProjectionRunner(gw.gateway.db, LedgerProjection()).rebuild()
    assert await snapshot() == live
