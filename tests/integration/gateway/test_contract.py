"""The external REST contract through the real gateway, services, PostgreSQL, NATS and fakes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aigen.client import WebhookVerificationError, verify_webhook
from aigen.simulator.base import Script
from aigen.simulator.serving import serve_asgi

from tests.integration.gateway.receiver import WebhookReceiver

API = "/api/external/ai-generation"


def problem(reply, status: int, code: str) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    body = reply.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["detail"]
    return body


async def test_authentication_missing_unknown_expired_and_revoked_keys(gw):
    problem(
        await gw.http.post(API, json={"model_slug": "kie-4o-image", "prompt": "x"}), 401, "API_KEY_MISSING"
    )
    problem(await gw.as_key("not-a-key", "GET", f"{API}/models"), 401, "API_KEY_INVALID")
    created = await gw.create_key(name="soon expired")
    # Right shape, right id, wrong secret: still unknown.
    forged = created["key"][:-4] + ("AAAA" if not created["key"].endswith("AAAA") else "BBBB")
    problem(await gw.as_key(forged, "GET", f"{API}/models"), 401, "API_KEY_INVALID")
    assert (await gw.as_key(created["key"], "GET", f"{API}/models")).status_code == 200
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    changed = await gw.admin("PATCH", f"/admin/keys/{created['id']}", json={"expires_at": past})
    assert changed.status_code == 200
    assert changed.json()["state"] == "expired"
    problem(await gw.as_key(created["key"], "GET", f"{API}/models"), 401, "API_KEY_EXPIRED")
    other = await gw.create_key(name="to revoke")
    assert (await gw.admin("DELETE", f"/admin/keys/{other['id']}")).json()["state"] == "revoked"
    problem(await gw.as_key(other["key"], "GET", f"{API}/models"), 401, "API_KEY_REVOKED")
    # The secret is shown once: lists and reads show the prefix only.
    listed = (await gw.admin("GET", "/admin/keys")).json()["keys"]
    assert {k["prefix"] for k in listed} >= {f"aigen_{created['id']}", f"aigen_{other['id']}"}
    assert created["key"] not in (await gw.admin("GET", "/admin/keys")).text


async def test_not_found_unknown_model_unknown_task_and_another_owners_task(gw):
    alice = await gw.create_key(name="alice", owner="alice")
    bob = await gw.create_key(name="bob", owner="bob")
    problem(
        await gw.as_key(alice["key"], "POST", API, json={"model_slug": "no-such-model", "prompt": "x"}),
        404,
        "MODEL_NOT_FOUND",
    )
    problem(await gw.as_key(alice["key"], "GET", f"{API}/does-not-exist"), 404, "TASK_NOT_FOUND")
    made = await gw.as_key(
        alice["key"], "POST", API, json={"model_slug": "kie-nano-banana", "prompt": "a kite"}
    )
    assert made.status_code == 200, made.text
    task_id = made.json()["taskId"]
    assert (await gw.as_key(alice["key"], "GET", f"{API}/{task_id}")).status_code == 200
    problem(await gw.as_key(bob["key"], "GET", f"{API}/{task_id}"), 404, "TASK_NOT_FOUND")
    problem(await gw.as_key(bob["key"], "DELETE", f"{API}/{task_id}"), 404, "TASK_NOT_FOUND")
    problem(await gw.as_key(bob["key"], "GET", f"{API}/{task_id}/events"), 404, "TASK_NOT_FOUND")
    assert task_id not in (await gw.as_key(bob["key"], "GET", API)).text
    # A second key of the same owner sees the owner's tasks.
    alice2 = await gw.create_key(name="alice again", owner="alice")
    assert (await gw.as_key(alice2["key"], "GET", f"{API}/{task_id}")).status_code == 200


async def test_invalid_input_is_422_naming_each_field(gw):
    key = (await gw.create_key(name="validation"))["key"]
    body = problem(
        await gw.as_key(
            key,
            "POST",
            API,
            json={"model_slug": "kie-4o-image", "prompt": "x", "parameters": {"size": "7:3"}},
        ),
        422,
        "INVALID_ARGUMENT",
    )
    assert [e["field"] for e in body["errors"]] == ["parameters.size"]
    body = problem(
        await gw.as_key(key, "POST", API, json={"prompt": "x", "number_of_outputs": 0}),
        422,
        "INVALID_ARGUMENT",
    )
    assert {e["field"] for e in body["errors"]} == {"model_slug", "number_of_outputs"}
    body = problem(
        await gw.as_key(key, "POST", API, json={"model_slug": "kie-4o-image", "colour": "red"}),
        422,
        "INVALID_ARGUMENT",
    )
    assert body["errors"] == [{"field": "colour", "message": "is not a known field"}]
    body = problem(
        await gw.as_key(
            key, "POST", API, json={"model_slug": "kie-4o-image", "webhook_url": "ftp://example.com/x"}
        ),
        422,
        "INVALID_ARGUMENT",
    )
    assert body["errors"][0]["field"] == "webhook_url"
    body = problem(
        await gw.as_key(
            key, "POST", API, json={"model_slug": "kie-4o-image"}, headers={"Cancel-After": "soon"}
        ),
        422,
        "INVALID_ARGUMENT",
    )
    assert body["errors"][0]["field"] == "Cancel-After"
    malformed = await gw.as_key(
        key, "POST", API, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    problem(malformed, 400, "MALFORMED_JSON")


async def test_budget_holds_the_quote_and_refuses_with_402(gw):
    gw.pipeline.fakes["kie"].script = Script(polls_to_finish=10_000)  # tasks stay in flight, holding
    key = await gw.create_key(name="budget", budget_usd="0.05", budget_period="day")
    first = await gw.as_key(key["key"], "POST", API, json={"model_slug": "kie-4o-image", "prompt": "one"})
    assert first.status_code == 200
    assert first.json()["cost"]["quotedUsd"] == "0.03"
    body = problem(
        await gw.as_key(key["key"], "POST", API, json={"model_slug": "kie-4o-image", "prompt": "two"}),
        402,
        "BUDGET_EXCEEDED",
    )
    assert "$0.03" in body["detail"]
    assert "$0.05" in body["detail"]
    assert "resets" in body["detail"]
    usage = (await gw.as_key(key["key"], "GET", "/api/external/usage")).json()
    assert usage["openUsd"] == "0.03"
    assert usage["openTasks"] == 1
    assert usage["remainingUsd"] == "0.02"
    # Cancelling releases the hold (the provider charged nothing): the budget has room again.
    cancelled = await gw.as_key(key["key"], "DELETE", f"{API}/{first.json()['taskId']}")
    assert cancelled.json()["status"] == "CANCELLED"
    await gw.eventually(
        lambda: gw.as_key(key["key"], "GET", "/api/external/usage"), lambda r: r.json()["openTasks"] == 0
    )
    again = await gw.as_key(key["key"], "POST", API, json={"model_slug": "kie-4o-image", "prompt": "three"})
    assert again.status_code == 200, again.text


async def test_rate_limit_429_with_retry_after(gw):
    key = (await gw.create_key(name="slow", rate_per_minute=2))["key"]
    for _ in range(2):
        assert (await gw.as_key(key, "GET", f"{API}/models")).status_code == 200
    limited = await gw.as_key(key, "GET", f"{API}/models")
    body = problem(limited, 429, "RATE_LIMITED")
    assert int(limited.headers["Retry-After"]) >= 1
    assert body["retryAfter"] == int(limited.headers["Retry-After"])


async def test_concurrency_limit_429(gw):
    gw.pipeline.fakes["kie"].script = Script(polls_to_finish=10_000)
    key = (await gw.create_key(name="one at a time", max_concurrent=1))["key"]
    assert (
        await gw.as_key(key, "POST", API, json={"model_slug": "kie-nano-banana", "prompt": "a"})
    ).status_code == 200
    refused = await gw.as_key(key, "POST", API, json={"model_slug": "kie-nano-banana", "prompt": "b"})
    problem(refused, 429, "CONCURRENCY_LIMIT_REACHED")
    assert refused.headers["Retry-After"]


async def test_allowed_models_403_and_model_list_filtered(gw):
    key = (await gw.create_key(name="narrow", allowed_models=["local-image"]))["key"]
    problem(
        await gw.as_key(key, "POST", API, json={"model_slug": "kie-4o-image", "prompt": "x"}),
        403,
        "MODEL_NOT_ALLOWED",
    )
    models = (await gw.as_key(key, "GET", f"{API}/models")).json()["models"]
    assert [m["slug"] for m in models] == ["local-image"]
    fields = {f["key"]: f for f in models[0]["fields"]}
    assert fields["width"]["type"] == "number"
    assert "price" in models[0]


async def test_idempotent_replay_returns_the_same_task_and_another_body_is_422(gw):
    key = (await gw.create_key(name="idem", max_concurrent=50))["key"]
    body = {"model_slug": "kie-nano-banana", "prompt": "a paper crane"}
    headers = {"Idempotency-Key": "order-42"}
    replies = await asyncio.gather(
        *(gw.as_key(key, "POST", API, json=body, headers=headers) for _ in range(5))
    )
    assert {r.status_code for r in replies} == {200}
    assert len({r.json()["taskId"] for r in replies}) == 1
    other = problem(
        await gw.as_key(key, "POST", API, json={**body, "prompt": "a paper boat"}, headers=headers),
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert other["detail"]
    task_id = replies[0].json()["taskId"]
    await gw.eventually(
        lambda: gw.as_key(key, "GET", f"{API}/{task_id}"), lambda r: r.json()["status"] == "SUCCESS"
    )
    assert len(gw.pipeline.fakes["kie"].requests_to("/api/v1/jobs/createTask", "POST")) == 1
    # One task, one hold: the reservation of the replays was not counted again.
    usage = await gw.eventually(
        lambda: gw.as_key(key, "GET", "/api/external/usage"),
        lambda r: r.json()["openTasks"] == 0 and r.json()["summary"]["chargedUsd"] != "0",
    )
    assert usage.json()["summary"]["tasks"] == 1
    assert usage.json()["summary"]["chargedUsd"] == usage.json()["periodChargedUsd"]


async def test_webhook_is_signed_and_retried_after_the_receiver_fails_twice(gw):
    receiver = WebhookReceiver(statuses=[500, 500])
    async with serve_asgi(receiver) as hook_url:
        key = await gw.create_key(name="hooks")
        made = await gw.as_key(
            key["key"],
            "POST",
            API,
            json={
                "model_slug": "local-image",
                "prompt": "a harbour",
                "webhook_url": f"{hook_url}/hooks?token=abc",
            },
        )
        assert made.status_code == 200, made.text
        task_id = made.json()["taskId"]
        await gw.eventually(
            lambda: gw.admin("GET", f"/admin/tasks/{task_id}/webhooks"),
            lambda r: (
                any(d["eventType"] == "task.succeeded" for d in r.json()["deliveries"])
                and all(d["status"] == "delivered" for d in r.json()["deliveries"])
            ),
        )
    events = [verify_webhook(key["webhookSecret"], r.headers, r.body) for r in receiver.received]
    assert all(e.task_id == task_id for e in events)
    first_id = receiver.received[0].headers["webhook-id"]
    attempts_of_first = [r for r in receiver.received if r.headers["webhook-id"] == first_id]
    assert [r.answered for r in attempts_of_first] == [500, 500, 200]
    assert len({r.body for r in attempts_of_first}) == 1  # every attempt sends the same bytes
    succeeded = [e for e in events if e.type == "task.succeeded"]
    assert {e.id for e in succeeded}
    assert succeeded[0].status == "SUCCESS"
    assert succeeded[0].data["results"]
    deliveries = (await gw.admin("GET", f"/admin/tasks/{task_id}/webhooks")).json()["deliveries"]
    first = next(d for d in deliveries if d["id"] == first_id)
    assert [a["statusCode"] for a in first["attemptLog"]] == [500, 500, 200]
    assert "token" not in first["url"]  # the URL's query (maybe a secret) is not shown
    # Another key's secret does not verify these deliveries.
    stranger = await gw.create_key(name="stranger")
    with pytest.raises(WebhookVerificationError):
        verify_webhook(stranger["webhookSecret"], receiver.received[-1].headers, receiver.received[-1].body)


async def test_cancel_then_purge(gw):
    gw.pipeline.fakes["kie"].script = Script(polls_to_finish=10_000)
    key = (await gw.create_key(name="cancel"))["key"]
    task_id = (
        await gw.as_key(key, "POST", API, json={"model_slug": "kie-nano-banana", "prompt": "x"})
    ).json()["taskId"]
    cancelled = await gw.as_key(key, "DELETE", f"{API}/{task_id}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    assert cancelled.json()["error"]["code"] == "CANCELLED"
    problem(await gw.as_key(key, "DELETE", f"{API}/{task_id}"), 409, "TASK_NOT_CANCELLABLE")
    assert (await gw.as_key(key, "DELETE", f"{API}/{task_id}", params={"purge": "true"})).status_code == 200
    problem(await gw.as_key(key, "GET", f"{API}/{task_id}"), 404, "TASK_NOT_FOUND")
    assert task_id not in (await gw.as_key(key, "GET", API)).text


async def test_cancel_after_deadline_cancels_a_task_that_is_not_done(gw):
    gw.pipeline.fakes["kie"].script = Script(polls_to_finish=10_000)
    key = (await gw.create_key(name="deadline"))["key"]
    made = await gw.as_key(
        key, "POST", API, json={"model_slug": "kie-nano-banana", "prompt": "x"}, headers={"Cancel-After": "1"}
    )
    task = await gw.eventually(
        lambda: gw.as_key(key, "GET", f"{API}/{made.json()['taskId']}"),
        lambda r: r.json()["status"] != "PROCESSING" and r.json()["status"] != "PENDING",
    )
    assert task.json()["status"] == "CANCELLED"
