"""Callbacks the Kie fake POSTs, signed like Kie's, parsed by each family's adapter."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from aigen.providers.base import make_http_client
from aigen.providers.types import CallbackRequest, ErrorCode, Outcome, OutputType
from aigen.simulator.serving import serve_asgi

from tests.integration.providers.kie_harness import (
    MODELS,
    FakeHost,
    adapter_for,
    download,
    is_real_media,
    poll_until_done,
    sample_request,
)

SECRET = "whk_9b1d0c2e4f"
FAMILIES = [
    "kie-nano-banana",
    "kie-4o-image",
    "kie-flux-kontext",
    "kie-midjourney",
    "kie-veo-3-1",
    "kie-runway",
]


@pytest.fixture(scope="module")
async def host() -> AsyncIterator[FakeHost]:
    host = FakeHost()
    async with serve_asgi(host) as url:
        host.base_url = url
        yield host


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client() as client:
        yield client


async def callback_for(slug: str, host: FakeHost, http: httpx.AsyncClient, **script: str) -> CallbackRequest:
    """Dispatch with a callback URL and return the callback the fake sent when the task ended."""
    fake = host.install(callback_secret=SECRET)
    for key, value in script.items():
        setattr(fake.script, key, value)
    adapter = adapter_for(slug, fake, http)
    created = await adapter.dispatch(sample_request(MODELS[slug], fake, callback_url=host.callback_url))
    assert created.outcome is Outcome.PROCESSING, created.error
    return (await host.sink.wait(1))[0]


def expected_signature(task_id: str, timestamp: str, key: str = SECRET) -> str:
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@pytest.mark.parametrize("slug", FAMILIES)
async def test_success_callback_matches_the_polled_result(
    slug: str, host: FakeHost, http: httpx.AsyncClient
) -> None:
    callback = await callback_for(slug, host, http)
    adapter = adapter_for(slug, host.fake, http, provider_settings={"webhook_hmac_key": SECRET})

    parsed = adapter.parse_callback(callback)

    assert parsed.outcome is Outcome.SUCCESS, parsed.error
    assert parsed.provider_task_id is not None
    polled = (await poll_until_done(adapter, parsed.provider_task_id))[-1]
    assert [r.url for r in parsed.results] == [r.url for r in polled.results]
    for item in parsed.results:
        assert item.url is not None
        data, _ = await download(http, item.url)
        assert is_real_media(data, item.type)
    if slug == "kie-runway":
        assert parsed.results[0].type is OutputType.VIDEO
        assert parsed.results[0].extra["cover_url"].endswith(".png")


@pytest.mark.parametrize("slug", FAMILIES)
async def test_failure_callback_surfaces_the_message(
    slug: str, host: FakeHost, http: httpx.AsyncClient
) -> None:
    callback = await callback_for(slug, host, http, outcome="fail", fail_message="upstream model crashed")
    adapter = adapter_for(slug, host.fake, http, provider_settings={"webhook_hmac_key": SECRET})
    parsed = adapter.parse_callback(callback)
    assert parsed.outcome is Outcome.ERROR
    assert parsed.provider_task_id is not None
    assert parsed.error is not None
    assert parsed.error.code is ErrorCode.GENERATION_FAILED
    assert "upstream model crashed" in parsed.error.message


@pytest.mark.parametrize("slug", ["kie-4o-image", "kie-veo-3-1", "kie-runway", "kie-nano-banana"])
async def test_policy_callback_is_content_policy(slug: str, host: FakeHost, http: httpx.AsyncClient) -> None:
    callback = await callback_for(slug, host, http, outcome="content_policy")
    adapter = adapter_for(slug, host.fake, http)
    parsed = adapter.parse_callback(callback)
    assert parsed.error is not None
    assert (parsed.error.code, parsed.error.retryable) == (ErrorCode.CONTENT_POLICY, False)


async def test_the_fake_signs_like_kie(host: FakeHost, http: httpx.AsyncClient) -> None:
    callback = await callback_for("kie-veo-3-1", host, http)
    task_id = json.loads(callback.body)["data"]["taskId"]
    timestamp = callback.headers["x-webhook-timestamp"]
    assert callback.headers["x-webhook-signature"] == expected_signature(task_id, timestamp)


async def test_runway_callbacks_name_the_task_in_snake_case(host: FakeHost, http: httpx.AsyncClient) -> None:
    callback = await callback_for("kie-runway", host, http)
    data = json.loads(callback.body)["data"]
    timestamp = callback.headers["x-webhook-timestamp"]
    assert callback.headers["x-webhook-signature"] == expected_signature(data["task_id"], timestamp)


@pytest.mark.parametrize("slug", FAMILIES)
async def test_forged_signatures_are_rejected(slug: str, host: FakeHost, http: httpx.AsyncClient) -> None:
    callback = await callback_for(slug, host, http)
    adapter = adapter_for(slug, host.fake, http, provider_settings={"webhook_hmac_key": SECRET})
    timestamp = callback.headers["x-webhook-timestamp"]
    forged_headers = {**callback.headers, "x-webhook-signature": expected_signature("other", timestamp)}
    unsigned_headers = {
        k: v for k, v in callback.headers.items() if k not in ("x-webhook-signature", "x-webhook-timestamp")
    }
    for bad in (
        dataclasses.replace(callback, headers=forged_headers),
        dataclasses.replace(callback, headers=unsigned_headers),
        dataclasses.replace(
            callback, headers={**callback.headers, "x-webhook-timestamp": str(int(timestamp) + 1)}
        ),
    ):
        parsed = adapter.parse_callback(bad)
        assert parsed.outcome is Outcome.ERROR
        assert parsed.error is not None
        assert parsed.error.code is ErrorCode.CALLBACK_REJECTED
        assert not parsed.error.retryable


async def test_signature_cannot_be_moved_to_another_task(host: FakeHost, http: httpx.AsyncClient) -> None:
    callback = await callback_for("kie-nano-banana", host, http)
    adapter = adapter_for("kie-nano-banana", host.fake, http, provider_settings={"webhook_hmac_key": SECRET})
    body = json.loads(callback.body)
    body["data"]["taskId"] = "task_google_someone_else"
    moved = dataclasses.replace(callback, body=json.dumps(body).encode())
    parsed = adapter.parse_callback(moved)
    assert parsed.error is not None
    assert parsed.error.code is ErrorCode.CALLBACK_REJECTED


async def test_a_different_key_rejects(host: FakeHost, http: httpx.AsyncClient) -> None:
    callback = await callback_for("kie-midjourney", host, http)
    adapter = adapter_for("kie-midjourney", host.fake, http, provider_settings={"webhook_hmac_key": "not-it"})
    parsed = adapter.parse_callback(callback)
    assert parsed.error is not None
    assert parsed.error.code is ErrorCode.CALLBACK_REJECTED


async def test_without_a_key_unsigned_callbacks_are_accepted(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()  # no callback secret: Kie sends no signature headers
    adapter = adapter_for("kie-flux-kontext", fake, http)
    await adapter.dispatch(sample_request(MODELS["kie-flux-kontext"], fake, callback_url=host.callback_url))
    callback = (await host.sink.wait(1))[0]
    assert "x-webhook-signature" not in callback.headers
    assert adapter.parse_callback(callback).outcome is Outcome.SUCCESS


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1, 2]", b'{"code": 200, "msg": "ok"}', b""])
async def test_garbage_callbacks_are_bad_responses(
    body: bytes, host: FakeHost, http: httpx.AsyncClient
) -> None:
    fake = host.install()
    adapter = adapter_for("kie-nano-banana", fake, http)
    parsed = adapter.parse_callback(CallbackRequest(headers={}, body=body))
    assert parsed.error is not None
    assert parsed.error.code is ErrorCode.PROVIDER_BAD_RESPONSE


async def test_adapters_ask_for_callbacks(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    assert all(adapter_for(slug, fake, http).wants_callback() for slug in FAMILIES)
