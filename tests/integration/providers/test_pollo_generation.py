"""Pollo adapter against the Pollo fake over real HTTP (pollo-veo-3, pollo-kling)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aigen.providers.retry import RetryPolicy, with_retries
from aigen.providers.types import CallbackRequest, ErrorCode, Outcome, OutputType
from aigen.simulator.base import Script, media_bytes
from aigen.simulator.pollo import PolloFake

from tests.integration.providers.fake_harness import (
    NOT_AN_IMAGE_DATA_URL,
    PNG,
    PNG_DATA_URL,
    Sleeps,
    adapter_for,
    callback_sink,
    download,
    finish,
    forged,
    request,
    served,
)

VEO = "pollo-veo-3"
KLING = "pollo-kling"
SECRET = "pollo-webhook-secret"


async def test_veo3_create_then_waiting_processing_succeed_with_credits() -> None:
    fake = PolloFake(script=Script(polls_to_finish=3))
    async with served(fake) as http:
        adapter = adapter_for(VEO, fake, http)
        first = await adapter.dispatch(
            request(VEO, "drone shot over a misty forest", params={"resolution": "1080p"})
        )
        assert first.outcome is Outcome.PROCESSING
        assert first.provider_state == "waiting"
        end, steps = await finish(adapter, first)
        assert [s.provider_state for s in steps] == ["waiting", "waiting", "processing", "succeed"]
        assert end.outcome is Outcome.SUCCESS
        (video,) = end.results
        assert video.type is OutputType.VIDEO
        assert await download(http, video.url or "") == media_bytes("mp4")
        assert end.cost is not None
        assert end.cost.currency == "credits"
        assert end.cost.amount == 80
    create = fake.requests[0]
    assert (create.method, create.path) == ("POST", "/generation/google/veo3")
    assert create.headers["x-api-key"] == "test-key"
    assert "authorization" not in create.headers
    assert create.json == {
        "input": {
            "prompt": "drone shot over a misty forest",
            "length": 8,
            "aspectRatio": "16:9",
            "resolution": "1080p",
            "generateAudio": True,
        }
    }
    assert fake.requests[1].path == f"/generation/{first.provider_task_id}/status"


async def test_kling_data_url_is_uploaded_through_signed_url_and_aspect_ratio_left_out() -> None:
    fake = PolloFake(script=Script(polls_to_finish=1))
    async with served(fake) as http:
        adapter = adapter_for(KLING, fake, http)
        first = await adapter.dispatch(request(KLING, "she turns and smiles", input_images=[PNG_DATA_URL]))
        assert first.outcome is Outcome.PROCESSING, first.error
        end, _ = await finish(adapter, first)
    assert end.outcome is Outcome.SUCCESS
    sign, put, create = fake.requests[:3]
    assert (sign.method, sign.path) == ("POST", "/file/sign")
    assert sign.json["action"] == "putObject"
    assert sign.json["type"] == "image/png"
    assert put.method == "PUT"
    assert put.path.startswith("/upload/")
    assert "x-api-key" not in put.headers  # the key never travels to storage
    ((content_type, data),) = fake.uploads.values()
    assert (content_type, data) == ("image/png", PNG)
    assert create.path == "/generation/kling-ai/kling-v2"
    sent = create.json["input"]
    assert sent["image"].startswith(fake.base_url + "/files/upload-")
    assert "aspectRatio" not in sent
    assert sent["length"] == 5
    assert sent["strength"] == 50


async def test_https_image_url_is_passed_through_without_upload() -> None:
    fake = PolloFake()
    async with served(fake) as http:
        result = await adapter_for(KLING, fake, http).dispatch(
            request(KLING, input_images=["https://cdn.example/a.jpg"])
        )
    assert result.outcome is Outcome.PROCESSING
    assert [r.path for r in fake.requests] == ["/generation/kling-ai/kling-v2"]
    assert fake.requests[0].json["input"]["image"] == "https://cdn.example/a.jpg"


async def test_failed_generation_surfaces_fail_msg() -> None:
    fake = PolloFake(script=Script(polls_to_finish=2, fail_message="Video generation failed: upstream error"))
    fake.faults.add("fail", scope="create")
    async with served(fake) as http:
        adapter = adapter_for(VEO, fake, http)
        end, _ = await finish(adapter, await adapter.dispatch(request(VEO)))
    assert end.error is not None
    assert end.error.code is ErrorCode.GENERATION_FAILED
    assert "upstream error" in end.error.message
    assert end.cost is not None


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("no_credits", ErrorCode.INSUFFICIENT_CREDITS),
        ("wrong_key", ErrorCode.AUTH_FAILED),
        ("bad_input", ErrorCode.INVALID_REQUEST),
    ],
)
async def test_refusals_are_classified_and_not_retried(setup: str, code: ErrorCode) -> None:
    fake = PolloFake()
    if setup == "no_credits":
        fake.balance = 10
    sleeps = Sleeps()
    params = {"length": 7} if setup == "bad_input" else {}
    async with served(fake) as http:
        adapter = adapter_for(VEO, fake, http, api_key="pollo_wrong" if setup == "wrong_key" else None)
        result = await with_retries(
            lambda: adapter.dispatch(request(VEO, params=params)), RetryPolicy(), sleep=sleeps
        )
    assert result.error is not None
    assert result.error.code is code
    assert not result.error.retryable
    assert len(fake.requests) == 1
    assert sleeps.delays == []
    if setup == "bad_input":
        assert "input.length" in result.error.message
        assert result.error.provider_code == "BAD_REQUEST"
    if setup == "no_credits":
        assert result.error.provider_code == "FORBIDDEN"


async def test_rate_limit_is_retried_after_the_hint() -> None:
    fake = PolloFake()
    fake.faults.add("rate_limit", scope="create", retry_after=4)
    sleeps = Sleeps()
    async with served(fake) as http:
        adapter = adapter_for(VEO, fake, http)
        result = await with_retries(lambda: adapter.dispatch(request(VEO)), RetryPolicy(), sleep=sleeps)
    assert result.outcome is Outcome.PROCESSING
    assert sleeps.delays == [4.0]


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("server_error", ErrorCode.PROVIDER_UNAVAILABLE),
        ("malformed", ErrorCode.PROVIDER_BAD_RESPONSE),
        ("html", ErrorCode.PROVIDER_BAD_RESPONSE),
    ],
)
async def test_status_errors_and_garbage(fault: str, code: ErrorCode) -> None:
    fake = PolloFake(script=Script(polls_to_finish=3))
    async with served(fake) as http:
        adapter = adapter_for(VEO, fake, http)
        first = await adapter.dispatch(request(VEO))
        fake.faults.add(fault, scope="status")  # type: ignore[arg-type]
        result = await adapter.check_status(first.provider_task_id or "")
    assert result.error is not None
    assert result.error.code is code
    assert result.error.retryable
    assert result.provider_task_id == first.provider_task_id


async def test_unknown_task_is_not_found() -> None:
    fake = PolloFake()
    async with served(fake) as http:
        result = await adapter_for(VEO, fake, http).check_status("t_missing")
    assert result.error is not None
    assert result.error.code is ErrorCode.NOT_FOUND


async def test_missing_key_fails_before_any_call() -> None:
    fake = PolloFake()
    async with served(fake) as http:
        result = await adapter_for(VEO, fake, http, api_key="").dispatch(request(VEO))
    assert result.error is not None
    assert result.error.code is ErrorCode.MISSING_API_KEY
    assert "AI_PROVIDER_POLLO_API_KEY" in result.error.message
    assert fake.requests == []


async def test_bad_input_images_are_refused_before_any_call() -> None:
    fake = PolloFake()
    async with served(fake) as http:
        adapter = adapter_for(KLING, fake, http)
        results = [
            await adapter.dispatch(request(KLING, input_images=[NOT_AN_IMAGE_DATA_URL])),
            await adapter.dispatch(request(KLING, input_images=["ftp://cdn.example/a.png"])),
            await adapter.dispatch(request(KLING, input_images=[PNG_DATA_URL, PNG_DATA_URL])),
        ]
    for result in results:
        assert result.error is not None
        assert result.error.code is ErrorCode.INVALID_INPUT_IMAGE
    assert fake.requests == []


@pytest.mark.parametrize("scheme", ["docs", "hex"])
async def test_signed_webhook_is_verified_and_forgery_rejected(scheme: str) -> None:
    fake = PolloFake(script=Script(polls_to_finish=2), callback_secret=SECRET)
    fake.signature_scheme = scheme
    async with callback_sink() as sink, served(fake) as http:
        adapter = adapter_for(VEO, fake, http, provider_settings={"webhook_secret": SECRET})
        assert adapter.wants_callback()
        first = await adapter.dispatch(request(VEO, callback_url=sink.url))
        (callback,) = await sink.wait()
    assert fake.requests[0].json["webhookUrl"] == sink.url
    result = adapter.parse_callback(callback)
    assert result.outcome is Outcome.SUCCESS, result.error
    assert result.provider_task_id == first.provider_task_id
    assert result.results[0].url

    header = "x-webhook-signature" if scheme == "docs" else "x-signature"
    tampered = forged(callback, **{header: "v1,AAAA" if scheme == "docs" else "00" * 32})
    rejected = adapter.parse_callback(tampered)
    assert rejected.error is not None
    assert rejected.error.code is ErrorCode.CALLBACK_REJECTED
    unsigned = CallbackRequest(headers={"content-type": "application/json"}, body=callback.body)
    assert adapter.parse_callback(unsigned).error is not None


async def test_bare_status_callbacks() -> None:
    fake = PolloFake()
    async with served(fake) as http:
        adapter = adapter_for(VEO, fake, http)
    succeed = adapter.parse_callback(
        CallbackRequest(headers={}, body=json.dumps({"taskId": "t1", "status": "succeed"}).encode())
    )
    failed = adapter.parse_callback(
        CallbackRequest(
            headers={}, body=json.dumps({"taskId": "t1", "status": "failed", "failMsg": "nope"}).encode()
        )
    )
    garbage = adapter.parse_callback(CallbackRequest(headers={}, body=b"<html>"))
    # A bare "succeed" names no file: the poller asks for the status at once.
    assert succeed.outcome is Outcome.PROCESSING
    assert succeed.provider_task_id == "t1"
    assert failed.error is not None
    assert failed.error.code is ErrorCode.GENERATION_FAILED
    assert garbage.error is not None
    assert garbage.error.code is ErrorCode.PROVIDER_BAD_RESPONSE


async def test_health_reads_the_credit_balance() -> None:
    fake = PolloFake()
    fake.balance = 321
    async with served(fake) as http:
        adapter = adapter_for(KLING, fake, http)
        health = await adapter.health()
        fake.faults.add("low_balance")
        low = await adapter.health()
    assert health.ok
    assert health.balance == 321
    assert health.balance_unit == "credits"
    assert low.balance == 0.5
    assert {r.path for r in fake.requests} == {"/credit/balance"}


async def test_overlapping_status_checks_are_recorded_by_the_fake() -> None:
    fake = PolloFake(script=Script(polls_to_finish=5))
    async with served(fake) as http:
        adapter = adapter_for(VEO, fake, http)
        first = await adapter.dispatch(request(VEO))
        task_id = first.provider_task_id or ""
        fake.latency = 0.2
        await asyncio.gather(adapter.check_status(task_id), adapter.check_status(task_id))
    assert fake.max_overlap[task_id] == 2
