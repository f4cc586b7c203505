"""Health (the credit balance) and the fake's own contract: Kie's error bodies and upload API."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aigen.providers.base import make_http_client
from aigen.simulator.base import media_bytes
from aigen.simulator.kie import KieFake
from aigen.simulator.serving import serve_asgi, serve_fake

from tests.integration.providers.kie_harness import API_KEY, FakeHost, adapter_for

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
async def host() -> AsyncIterator[FakeHost]:
    host = FakeHost()
    async with serve_asgi(host) as url:
        host.base_url = url
        yield host


@pytest.fixture
def fake(host: FakeHost) -> KieFake:
    return host.install()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client() as client:
        yield client


async def test_health_reads_the_balance_without_spending(http: httpx.AsyncClient) -> None:
    async with serve_fake(KieFake(api_key=API_KEY)) as fake:
        fake.balance = 1234
        health = await adapter_for("kie-veo-3", fake, http).health()
        assert health.ok
        assert (health.balance, health.balance_unit) == (1234, "credits")
        assert [(r.method, r.path) for r in fake.requests] == [("GET", "/api/v1/chat/credit")]
        assert fake.balance == 1234


async def test_health_reports_a_low_and_an_empty_balance(fake: KieFake, http: httpx.AsyncClient) -> None:
    adapter = adapter_for("kie-nano-banana", fake, http)
    fake.faults.add("low_balance")
    low = await adapter.health()
    assert (low.ok, low.balance) == (True, 2)
    fake.balance = 0
    empty = await adapter.health()
    assert not empty.ok
    assert "no credits" in empty.message


async def test_health_with_a_wrong_key(fake: KieFake, http: httpx.AsyncClient) -> None:
    health = await adapter_for("kie-runway", fake, http, api_key="nope-nope").health()
    assert not health.ok
    assert "401" in health.message
    assert "nope-nope" not in health.message


async def test_health_without_a_key_calls_nothing(fake: KieFake, http: httpx.AsyncClient) -> None:
    health = await adapter_for("kie-runway", fake, http, api_key="").health()
    assert not health.ok
    assert fake.requests == []


async def post(
    http: httpx.AsyncClient, fake: KieFake, path: str, body: Any, key: str = API_KEY
) -> httpx.Response:
    return await http.post(fake.base_url + path, json=body, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"input": {"prompt": "x"}}, "model is required"),
        ({"model": "google/nano-banana"}, "input is required"),
        ({"model": "made-up/model", "input": {}}, "not supported"),
        ({"model": "google/nano-banana", "input": {}}, "input.prompt is required"),
        (
            {"model": "google/nano-banana", "input": {"prompt": "x", "aspect_ratio": "7:5"}},
            "input.aspect_ratio",
        ),
        (
            {
                "model": "kling/v2-1-standard",
                "input": {"prompt": "x", "image_url": "https://a/b.png", "duration": 5},
            },
            "duration",
        ),
        (
            {"model": "sora-watermark-remover", "input": {"video_url": "https://example.org/v.mp4"}},
            "sora.chatgpt.com",
        ),
    ],
)
async def test_market_validation_answers_in_kie_envelope(
    body: dict[str, Any], fragment: str, fake: KieFake, http: httpx.AsyncClient
) -> None:
    response = await post(http, fake, "/api/v1/jobs/createTask", body)
    assert response.status_code == 200  # Kie puts the real status in the body
    answer = response.json()
    assert answer["code"] == 422
    assert fragment in answer["msg"]
    assert fake.tasks == {}


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/api/v1/gpt4o-image/generate", {"prompt": "x"}, "size is required"),
        ("/api/v1/gpt4o-image/generate", {"size": "1:1"}, "prompt is required"),
        ("/api/v1/gpt4o-image/generate", {"size": "1:1", "prompt": "x", "nVariants": 3}, "nVariants"),
        (
            "/api/v1/flux/kontext/generate",
            {"prompt": "x", "inputImage": "https://a/b.png", "safetyTolerance": 5},
            "0 and 2",
        ),
        ("/api/v1/mj/generate", {"prompt": "x"}, "taskType is required"),
        ("/api/v1/mj/generate", {"prompt": "x", "taskType": "mj_img2img"}, "fileUrls is required"),
        (
            "/api/v1/veo/generate",
            {
                "prompt": "x",
                "model": "veo3",
                "generationType": "REFERENCE_2_VIDEO",
                "imageUrls": ["https://a/b.png"],
            },
            "veo3_fast",
        ),
        ("/api/v1/veo/extend", {"prompt": "x", "taskId": "veo_task_unknown"}, "Veo API"),
        (
            "/api/v1/runway/generate",
            {"prompt": "x", "duration": 10, "quality": "1080p", "aspectRatio": "16:9"},
            "1080p",
        ),
        (
            "/api/v1/runway/generate",
            {"prompt": "x", "duration": 5, "quality": "720p"},
            "aspectRatio is required",
        ),
        ("/api/v1/runway/extend", {"prompt": "x", "taskId": "nope", "quality": "720p"}, "Runway video"),
    ],
)
async def test_dedicated_apis_validate_like_kie(
    path: str, body: dict[str, Any], fragment: str, fake: KieFake, http: httpx.AsyncClient
) -> None:
    answer = (await post(http, fake, path, body)).json()
    assert answer["code"] == 422
    assert fragment in answer["msg"]


async def test_wrong_key_gets_kies_401_body(fake: KieFake, http: httpx.AsyncClient) -> None:
    response = await post(http, fake, "/api/v1/jobs/createTask", {}, key="wrong")
    assert response.status_code == 401
    assert response.json() == {"code": 401, "msg": "You do not have access permissions"}


async def test_rate_limit_fault_answers_with_retry_after(fake: KieFake, http: httpx.AsyncClient) -> None:
    fake.faults.add("rate_limit", retry_after=3)
    response = await post(http, fake, "/api/v1/veo/generate", {"prompt": "x"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["code"] == 429


async def test_base64_upload_stores_and_serves_the_file(fake: KieFake, http: httpx.AsyncClient) -> None:
    png = media_bytes("png")
    raw = base64.b64encode(png).decode()
    answer = (
        await post(
            http,
            fake,
            "/api/file-base64-upload",
            {"base64Data": raw, "uploadPath": "in", "fileName": "a.png"},
        )
    ).json()
    assert (answer["success"], answer["code"]) == (True, 200)
    assert answer["data"]["filePath"] == "in/a.png"
    assert answer["data"]["mimeType"] == "image/png"
    assert (await http.get(answer["data"]["downloadUrl"])).content == png


async def test_upload_errors_use_the_upload_envelope(fake: KieFake, http: httpx.AsyncClient) -> None:
    missing = (await post(http, fake, "/api/file-base64-upload", {"base64Data": "aGk="})).json()
    assert missing == {"success": False, "code": 400, "msg": "Missing required parameter: uploadPath"}
    broken = (
        await post(http, fake, "/api/file-base64-upload", {"base64Data": "%%%", "uploadPath": "x"})
    ).json()
    assert broken["code"] == 400
    assert "Base64 decoding failed" in broken["msg"]
    denied = await post(http, fake, "/api/file-base64-upload", {}, key="wrong")
    assert denied.status_code == 401
    assert denied.json()["msg"] == "Authentication failed: Invalid API Key"


async def test_url_and_stream_uploads(fake: KieFake, http: httpx.AsyncClient) -> None:
    source = fake.media_url("png", "remote")
    by_url = (await post(http, fake, "/api/file-url-upload", {"fileUrl": source, "uploadPath": "u"})).json()
    assert by_url["data"]["mimeType"] == "image/png"
    streamed = await http.post(
        fake.base_url + "/api/file-stream-upload",
        headers=AUTH,
        files={"file": ("clip.mp4", media_bytes("mp4"), "video/mp4")},
        data={"uploadPath": "videos", "fileName": "clip.mp4"},
    )
    answer = streamed.json()
    assert answer["data"]["filePath"] == "videos/clip.mp4"
    assert (await http.get(answer["data"]["downloadUrl"])).content == media_bytes("mp4")
