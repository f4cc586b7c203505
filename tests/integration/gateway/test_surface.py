"""Provider callbacks, live progress, result files, the admin API and the SDK, through the gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from aigen.client import AigenClient, AsyncAigenClient, BadRequest, Conflict, NotFound
from aigen.simulator.base import Script

from tests.integration.gateway.conftest import HAS_STUDIO, gateway_running

API = "/api/external/ai-generation"


async def test_provider_callback_through_the_gateway_and_replays_are_harmless(
    pg_url, nats_url, monkeypatch, tmp_path
):
    # The first check would come late: the callback must be what completes the task.
    env = {"AIGEN_POLL_INTERVAL_S": "30"}
    async with gateway_running(pg_url, nats_url, monkeypatch, tmp_path, env=env) as gw:
        kie = gw.pipeline.fakes["kie"]
        sent_callbacks: list[tuple[str, bytes, dict[str, str]]] = []
        send = kie.send_callback

        async def recording(url: str, body: bytes, headers: dict[str, str]) -> None:
            sent_callbacks.append((url, body, dict(headers)))
            await send(url, body, headers)

        monkeypatch.setattr(kie, "send_callback", recording)
        key = (await gw.create_key(name="callbacks"))["key"]
        made = await gw.as_key(
            key, "POST", API, json={"model_slug": "kie-nano-banana", "prompt": "x"}, params={"wait": 20}
        )
        assert made.json()["status"] == "SUCCESS"
        assert kie.requests_to("/api/v1/jobs/recordInfo") == []
        url, status = kie.callbacks_sent[0]
        assert status == 200
        path = httpx.URL(url).path
        assert path.startswith("/callbacks/kie/")
        sent = json.loads(kie.requests_to("/api/v1/jobs/createTask", "POST")[0].body)
        assert sent["callBackUrl"] == url
        # The provider sends it again: accepted as harmless, nothing changes.
        _, body, headers = sent_callbacks[0]
        replay = await gw.http.post(path, content=body, headers=headers)
        assert replay.status_code == 200
        assert replay.json() == {"taskId": made.json()["taskId"], "accepted": False}
        # A token that is not ours, or a body without the provider's signature, is refused.
        forged = await gw.http.post(path.rsplit(".", 1)[0] + ".0000", content=body, headers=headers)
        assert forged.status_code == 404
        assert forged.json()["code"] == "CALLBACK_TOKEN_UNKNOWN"
        unsigned = await gw.http.post(path, content=body)
        assert unsigned.status_code == 401
        events = await gw.admin("GET", f"/admin/tasks/{made.json()['taskId']}")
        assert events.json()["status"] == "SUCCESS"


async def test_server_sent_events_follow_a_task_to_its_end(gw):
    gw.pipeline.fakes["kie"].script = Script(polls_to_finish=3)
    key = (await gw.create_key(name="sse"))["key"]
    made = await gw.as_key(key, "POST", API, json={"model_slug": "kie-4o-image", "prompt": "x"})
    task_id = made.json()["taskId"]
    seen = []
    async with gw.http.stream("GET", f"{API}/{task_id}/events", headers={"X-API-Key": key}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    statuses = [s["status"] for s in seen]
    assert statuses[-1] == "SUCCESS"
    assert "PROCESSING" in statuses
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress)


async def test_result_files_need_a_valid_signature(gw):
    key = (await gw.create_key(name="files"))["key"]
    done = await gw.as_key(
        key, "POST", API, json={"model_slug": "local-image", "prompt": "a quiet bay"}, params={"wait": 30}
    )
    url = done.json()["results"][0]["url"]
    assert url.startswith(f"{gw.url}/files/")
    fetched = await gw.http.get(url)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.content.startswith(b"\x89PNG")
    assert len(fetched.content) == done.json()["results"][0]["size"]
    tampered = url.replace("sig=", "sig=A")
    refused = await gw.http.get(tampered)
    assert refused.status_code == 403
    assert refused.json()["code"] == "FILE_URL_INVALID"
    other_key = httpx.URL(url).copy_with(path="/files/ai-generation/somebody-else/0.png")
    assert (await gw.http.get(str(other_key))).status_code == 403


async def test_admin_catalog_providers_and_tasks(gw):
    assert (await gw.http.get("/admin/providers")).status_code == 401
    wrong = await gw.http.get("/admin/providers", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "ADMIN_TOKEN_INVALID"
    providers = (await gw.admin("GET", "/admin/providers")).json()["providers"]
    kie = next(p for p in providers if p["slug"] == "kie")
    assert kie["apiKeySource"] == "environment"
    assert kie["apiKeyMasked"].startswith("••••")
    stored = await gw.admin("PUT", "/admin/providers/kie/api-key", json={"api_key": "sim-kie-key-0001"})
    assert stored.status_code == 200
    assert stored.json()["apiKeySource"] == "stored"
    assert "sim-kie-key-0001" not in stored.text
    health = await gw.admin("POST", "/admin/providers/kie/health")
    assert health.status_code == 200, health.text
    assert health.json()["ok"] is True
    assert (await gw.admin("POST", "/admin/providers/nope/health")).status_code == 404
    off = await gw.admin("PATCH", "/admin/models/kie-4o-image", json={"active": False})
    assert off.json()["active"] is False
    created = await gw.create_key(name="catalog")
    key = created["key"]
    listed = (await gw.as_key(key, "GET", f"{API}/models")).json()["models"]
    assert "kie-4o-image" not in {m["slug"] for m in listed}
    refused = await gw.as_key(key, "POST", API, json={"model_slug": "kie-4o-image", "prompt": "x"})
    assert refused.status_code == 409
    assert refused.json()["code"] == "MODEL_INACTIVE"
    await gw.admin("PATCH", "/admin/models/kie-4o-image", json={"active": True})
    # Services cache the catalog for a few seconds: the model comes back shortly.
    made = await gw.eventually(
        lambda: gw.as_key(
            key, "POST", API, json={"model_slug": "kie-4o-image", "prompt": "x"}, params={"wait": 20}
        ),
        lambda r: r.status_code == 200,
    )
    task_id = made.json()["taskId"]
    seen = (await gw.admin("GET", f"/admin/tasks/{task_id}")).json()
    assert seen["owner"] == created["owner"] == created["id"]
    assert seen["status"] == "SUCCESS"
    assert task_id in (await gw.admin("GET", "/admin/tasks", params={"status": "SUCCESS"})).text
    deleted = await gw.admin("DELETE", f"/admin/tasks/{task_id}")
    assert deleted.json()["deletedAt"]


@pytest.mark.skipif(not HAS_STUDIO, reason="the Studio service is not in this tree")
async def test_studio_pass_through(pg_url, nats_url, monkeypatch, tmp_path):
    async with gateway_running(pg_url, nats_url, monkeypatch, tmp_path, studio=True) as gw:
        project = await gw.admin(
            "POST", "/admin/studio/CreateProject", json={"slug": "harbour", "name": "Harbour"}
        )
        assert project.status_code == 200, project.text
        assert project.json()["slug"] == "harbour"
        listed = await gw.admin("POST", "/admin/studio/ListProjects", json={})
        assert [p["slug"] for p in listed.json()["projects"]] == ["harbour"]
        bad = await gw.admin("POST", "/admin/studio/CreateProject", json={"slug": 5, "colour": "red"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "body"
        missing = await gw.admin("POST", "/admin/studio/GetProject", json={"id": "nope"})
        assert missing.status_code == 404


async def test_sdk_generate_wait_download_and_errors(gw, tmp_path: Path):
    created = await gw.create_key(name="sdk")
    async with AsyncAigenClient(gw.url, created["key"]) as client:
        models = await client.list_models(output_type="IMAGE")
        assert any(m.slug == "local-image" for m in models)
        quote = await client.quote("kie-4o-image", "x", number_of_outputs=2)
        assert str(quote.usd) == "0.035"
        task = await client.generate("local-image", "a lighthouse", parameters={"width": 320, "height": 240})
        progress = [t async for t in client.watch(task)]
        assert progress[-1].succeeded
        done = await client.wait_for(task, timeout=30)
        files = await client.download_all(done, tmp_path / "out")
        assert len(files) == len(done.results) == 1
        assert files[0].suffix == ".png"
        assert files[0].read_bytes().startswith(b"\x89PNG")
        assert done.cost is not None
        assert str(done.cost.quoted_usd) == "0"
        with pytest.raises(NotFound) as missing:
            await client.get_task("nope")
        assert missing.value.code == "TASK_NOT_FOUND"
        with pytest.raises(BadRequest) as invalid:
            await client.generate("kie-4o-image", "x", parameters={"size": "7:3"})
        assert invalid.value.errors[0].field == "parameters.size"
        page = await client.list_tasks(status=["SUCCESS"])
        assert [t.id for t in page.tasks] == [task.id]


async def test_sync_sdk_in_a_thread(gw, tmp_path: Path):
    created = await gw.create_key(name="sync sdk", max_concurrent=5)

    def flow() -> tuple[str, list[str], list[Path], str, str]:
        with AigenClient(gw.url, created["key"]) as client:
            task = client.generate("local-image", "a dune", parameters={"width": 320, "height": 240}, wait=30)
            statuses = [t.status for t in client.watch(task)]
            files = client.download_all(client.wait_for(task, timeout=30), tmp_path / "sync")
            key_id = client.usage().key_id
            refused = ""
            try:
                client.cancel_task(task)
            except Conflict as exc:
                refused = exc.code
            return task.status, statuses, files, refused, key_id

    status, statuses, files, refused, key_id = await asyncio.to_thread(flow)
    assert status == "SUCCESS"
    assert statuses == ["SUCCESS"]  # a finished task's stream holds its last state only
    assert files[0].read_bytes().startswith(b"\x89PNG")
    assert refused == "TASK_NOT_CANCELLABLE"
    assert key_id == created["id"]
