"""TuZi Kling adapter against the TuZi fake over real HTTP (tuzi-kling), in both answer shapes."""

from __future__ import annotations

import base64

import pytest
from aigen.providers.retry import RetryPolicy, with_retries
from aigen.providers.types import ErrorCode, Outcome, OutputType
from aigen.simulator.base import Script, media_bytes
from aigen.simulator.tuzi import TuziFake

from tests.integration.providers.fake_harness import (
    NOT_AN_IMAGE_DATA_URL,
    PNG,
    PNG_DATA_URL,
    Sleeps,
    adapter_for,
    download,
    finish,
    request,
    served,
)

SLUG = "tuzi-kling"


async def test_text2video_sends_kling_official_format_and_walks_to_a_video() -> None:
    fake = TuziFake(script=Script(polls_to_finish=3))
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        first = await adapter.dispatch(request(SLUG, "astronaut walks", params={"negative_prompt": "blur"}))
        assert first.outcome is Outcome.PROCESSING, first.error
        assert first.provider_task_id
        assert first.provider_task_id.startswith("text2video:")
        end, steps = await finish(adapter, first)
        assert [s.provider_state for s in steps] == ["submitted", "submitted", "processing", "succeed"]
        assert end.outcome is Outcome.SUCCESS
        (video,) = end.results
        assert video.type is OutputType.VIDEO
        assert await download(http, video.url or "") == media_bytes("mp4")
    create = fake.requests[0]
    assert (create.method, create.path) == ("POST", "/kling/v1/videos/text2video")
    assert create.headers["authorization"] == "Bearer test-key"
    assert create.json == {
        "model_name": "kling-v2-master",
        "prompt": "astronaut walks",
        "negative_prompt": "blur",
        "duration": "5",
        "aspect_ratio": "16:9",
    }
    task_id = first.provider_task_id.split(":", 1)[1]
    assert {r.path for r in fake.requests[1:]} == {f"/kling/v1/videos/text2video/{task_id}"}


async def test_image2video_sends_raw_base64_and_polls_its_own_route() -> None:
    fake = TuziFake(script=Script(polls_to_finish=1))
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        first = await adapter.dispatch(
            request(SLUG, "she smiles", input_images=[PNG_DATA_URL], params={"duration": "10"})
        )
        assert first.provider_task_id
        assert first.provider_task_id.startswith("image2video:")
        end, _ = await finish(adapter, first)
    assert end.outcome is Outcome.SUCCESS
    body = fake.requests[0].json
    assert fake.requests[0].path == "/kling/v1/videos/image2video"
    assert base64.b64decode(body["image"]) == PNG
    assert "aspect_ratio" not in body
    assert body["duration"] == "10"
    assert fake.requests[1].path.startswith("/kling/v1/videos/image2video/")


async def test_openai_video_shape_from_a_relay_is_read_too() -> None:
    fake = TuziFake(script=Script(polls_to_finish=3))
    fake.kling_shape = "openai"
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        first = await adapter.dispatch(request(SLUG))
        end, steps = await finish(adapter, first)
        assert [s.provider_state for s in steps] == ["queued", "queued", "in_progress", "completed"]
        assert steps[2].progress is not None
        assert 0 < steps[2].progress < 1
        assert end.outcome is Outcome.SUCCESS
        assert await download(http, end.results[0].url or "") == media_bytes("mp4")


@pytest.mark.parametrize("shape", ["kling", "openai"])
async def test_failed_task_surfaces_the_message(shape: str) -> None:
    fake = TuziFake(script=Script(polls_to_finish=1, fail_message="Failure to pass the risk control system"))
    fake.kling_shape = shape  # type: ignore[assignment]
    fake.faults.add("fail", scope="create")
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        end, _ = await finish(adapter, await adapter.dispatch(request(SLUG)))
    assert end.error is not None
    assert "risk control" in end.error.message
    assert end.error.code is ErrorCode.CONTENT_POLICY
    assert not end.error.retryable


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("content_policy", ErrorCode.CONTENT_POLICY),
        ("no_balance", ErrorCode.INSUFFICIENT_CREDITS),
        ("bad_duration", ErrorCode.INVALID_REQUEST),
        ("wrong_key", ErrorCode.AUTH_FAILED),
    ],
)
async def test_refusals_are_classified_and_not_retried(setup: str, code: ErrorCode) -> None:
    fake = TuziFake()
    if setup == "content_policy":
        fake.faults.add("content_policy", scope="create")
    if setup == "no_balance":
        fake.balance = 0
    params = {"duration": "7"} if setup == "bad_duration" else {}
    sleeps = Sleeps()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http, api_key="sk-wrong" if setup == "wrong_key" else None)
        result = await with_retries(
            lambda: adapter.dispatch(request(SLUG, params=params)), RetryPolicy(), sleep=sleeps
        )
    assert result.error is not None
    assert result.error.code is code
    assert not result.error.retryable
    assert len(fake.requests) == 1
    assert sleeps.delays == []
    if setup == "no_balance":
        assert result.error.provider_code == "1102"
        assert result.error.http_status == 429


async def test_gateway_rate_limit_is_retried() -> None:
    fake = TuziFake()
    fake.faults.add("rate_limit", scope="create", retry_after=5)
    sleeps = Sleeps()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        result = await with_retries(lambda: adapter.dispatch(request(SLUG)), RetryPolicy(), sleep=sleeps)
    assert result.outcome is Outcome.PROCESSING
    assert sleeps.delays == [5.0]


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("server_error", ErrorCode.PROVIDER_UNAVAILABLE),
        ("malformed", ErrorCode.PROVIDER_BAD_RESPONSE),
        ("html", ErrorCode.PROVIDER_BAD_RESPONSE),
    ],
)
async def test_status_errors_and_garbage(fault: str, code: ErrorCode) -> None:
    fake = TuziFake(script=Script(polls_to_finish=3))
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        first = await adapter.dispatch(request(SLUG))
        fake.faults.add(fault, scope="status")  # type: ignore[arg-type]
        result = await adapter.check_status(first.provider_task_id or "")
    assert result.error is not None
    assert result.error.code is code
    assert result.error.retryable
    if code is ErrorCode.PROVIDER_BAD_RESPONSE:
        assert result.error.snippet


async def test_unknown_task_is_not_found_and_bad_images_never_leave() -> None:
    fake = TuziFake()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        refused = await adapter.dispatch(request(SLUG, input_images=[NOT_AN_IMAGE_DATA_URL]))
        assert fake.requests == []
        missing = await adapter.check_status("text2video:404")
    assert refused.error is not None
    assert refused.error.code is ErrorCode.INVALID_INPUT_IMAGE
    assert missing.error is not None
    assert missing.error.code is ErrorCode.NOT_FOUND


async def test_health_is_an_authenticated_model_list() -> None:
    fake = TuziFake()
    async with served(fake) as http:
        good = await adapter_for(SLUG, fake, http).health()
        bad = await adapter_for(SLUG, fake, http, api_key="sk-wrong").health()
    assert good.ok
    assert not bad.ok
    assert {r.path for r in fake.requests} == {"/v1/models"}
    assert not adapter_for(SLUG, fake, None).wants_callback()  # type: ignore[arg-type]
