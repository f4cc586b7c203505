"""Replicate adapter against the Replicate fake over real HTTP (replicate-flux, replicate-minimax)."""

from __future__ import annotations

import base64
import dataclasses
import json

import httpx
import pytest
from aigen.providers.retry import RetryPolicy, with_retries
from aigen.providers.types import CallbackRequest, ErrorCode, Outcome, OutputType
from aigen.simulator.base import Script, media_bytes
from aigen.simulator.replicate import ReplicateFake

from tests.integration.providers.fake_harness import (
    NOT_AN_IMAGE_DATA_URL,
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

SECRET = "whsec_" + base64.b64encode(b"replicate-test-signing-key").decode()


async def test_flux_dispatch_sends_the_documented_request_and_finishes_within_the_wait() -> None:
    fake = ReplicateFake(script=Script(polls_to_finish=0))
    async with served(fake) as http:
        adapter = adapter_for("replicate-flux", fake, http)
        result = await adapter.dispatch(
            request(
                "replicate-flux", number_of_outputs=2, params={"aspect_ratio": "16:9", "output_format": "png"}
            )
        )
        assert result.outcome is Outcome.SUCCESS, result.error
        assert len(result.results) == 2
        for item in result.results:
            assert item.type is OutputType.IMAGE
            assert item.url is not None
            assert await download(http, item.url) == media_bytes("png")

    (sent,) = fake.requests
    assert sent.method == "POST"
    assert sent.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert sent.headers["authorization"] == "Bearer test-key"
    assert sent.headers["prefer"] == "wait=30"
    body = sent.json
    assert set(body) == {"input"}  # no callback asked for, so no webhook fields
    assert body["input"] == {
        "prompt": "a red fox in snow",
        "aspect_ratio": "16:9",
        "output_format": "png",
        "output_quality": 80,
        "go_fast": True,
        "megapixels": "1",
        "num_outputs": 2,
    }
    assert isinstance(body["input"]["num_outputs"], int)  # not 2.0 after the protobuf Struct


async def test_prefer_wait_holds_until_a_quick_prediction_succeeds() -> None:
    fake = ReplicateFake(script=Script(seconds_to_finish=0.3))
    async with served(fake) as http:
        result = await adapter_for("replicate-flux", fake, http).dispatch(request("replicate-flux"))
    assert result.outcome is Outcome.SUCCESS
    assert result.provider_task_id


async def test_flux_walks_starting_processing_succeeded_with_log_progress() -> None:
    fake = ReplicateFake(script=Script(polls_to_finish=3))
    async with served(fake) as http:
        adapter = adapter_for("replicate-flux", fake, http)
        first = await adapter.dispatch(request("replicate-flux"))
        assert first.outcome is Outcome.PROCESSING
        assert first.provider_state == "starting"
        end, steps = await finish(adapter, first)
        assert [s.provider_state for s in steps] == ["starting", "starting", "processing", "succeeded"]
        processing = steps[2]
        assert processing.progress is not None
        assert 0 < processing.progress < 1
        assert end.outcome is Outcome.SUCCESS
        assert end.progress == 1.0
        assert await download(http, end.results[0].url or "") == media_bytes("png")
    gets = fake.requests_to(f"/v1/predictions/{first.provider_task_id}", "GET")
    assert len(gets) == 3
    assert all(g.headers["authorization"] == "Bearer test-key" for g in gets)


async def test_flux_pro_variant_sends_the_image_as_a_data_uri_and_reads_a_single_output() -> None:
    fake = ReplicateFake(script=Script(polls_to_finish=0))
    async with served(fake) as http:
        adapter = adapter_for("replicate-flux", fake, http)
        result = await adapter.dispatch(
            request("replicate-flux", input_images=[PNG_DATA_URL], params={"variant": "flux-1.1-pro"})
        )
    assert result.outcome is Outcome.SUCCESS, result.error
    assert len(result.results) == 1
    (sent,) = fake.requests
    assert sent.path == "/v1/models/black-forest-labs/flux-1.1-pro/predictions"
    sent_input = sent.json["input"]
    assert sent_input["image_prompt"] == PNG_DATA_URL
    assert "num_outputs" not in sent_input
    assert "go_fast" not in sent_input
    assert "variant" not in sent_input


async def test_minimax_video_from_first_frame_walks_to_a_real_mp4() -> None:
    fake = ReplicateFake(script=Script(polls_to_finish=2))
    async with served(fake) as http:
        adapter = adapter_for("replicate-minimax", fake, http)
        image_url = fake.media_url("png", "first-frame")
        first = await adapter.dispatch(request("replicate-minimax", "a cat walks", input_images=[image_url]))
        assert first.outcome is Outcome.PROCESSING
        end, _ = await finish(adapter, first)
        assert end.outcome is Outcome.SUCCESS
        (video,) = end.results
        assert video.type is OutputType.VIDEO
        assert await download(http, video.url or "") == media_bytes("mp4")
    create = fake.requests[0]
    assert create.path == "/v1/models/minimax/video-01/predictions"
    assert "prefer" not in create.headers
    assert create.json == {
        "input": {"prompt": "a cat walks", "prompt_optimizer": True, "first_frame_image": image_url}
    }


async def test_versioned_model_uses_the_predictions_route() -> None:
    fake = ReplicateFake(script=Script(polls_to_finish=0))
    version = next(iter(fake.versions))
    async with served(fake) as http:
        adapter = adapter_for("replicate-flux", fake, http)
        adapter.model = dataclasses.replace(adapter.model, settings={"version": version})
        result = await adapter.dispatch(request("replicate-flux"))
    assert result.outcome is Outcome.SUCCESS
    assert fake.requests[0].path == "/v1/predictions"
    assert fake.requests[0].json["version"] == version


@pytest.mark.parametrize(
    ("fault", "code", "message"),
    [
        ("fail", ErrorCode.GENERATION_FAILED, "generation failed in the fake"),
        ("content_policy", ErrorCode.CONTENT_POLICY, "NSFW"),
    ],
)
async def test_failed_prediction_surfaces_the_model_error(fault: str, code: ErrorCode, message: str) -> None:
    fake = ReplicateFake(script=Script(polls_to_finish=1))
    fake.faults.add(fault, scope="create")  # type: ignore[arg-type]
    async with served(fake) as http:
        adapter = adapter_for("replicate-flux", fake, http)
        end, _ = await finish(adapter, await adapter.dispatch(request("replicate-flux")))
    assert end.outcome is Outcome.ERROR
    assert end.error is not None
    assert end.error.code is code
    assert message in end.error.message
    assert not end.error.retryable
    assert end.provider_task_id


async def test_wrong_key_is_an_auth_failure_read_from_problem_json_and_not_retried() -> None:
    fake = ReplicateFake()
    sleeps = Sleeps()
    async with served(fake) as http:
        adapter = adapter_for("replicate-flux", fake, http, api_key="wrong")
        result = await with_retries(
            lambda: adapter.dispatch(request("replicate-flux")), RetryPolicy(), sleep=sleeps
        )
    assert result.error is not None
    assert result.error.code is ErrorCode.AUTH_FAILED
    assert "You did not pass a valid authentication token" in result.error.message
    assert result.error.http_status == 401
    assert len(fake.requests) == 1
    assert sleeps.delays == []


async def test_invalid_input_is_refused_with_the_problem_detail() -> None:
    fake = ReplicateFake()
    async with served(fake) as http:
        adapter = adapter_for("replicate-flux", fake, http)
        result = await adapter.dispatch(request("replicate-flux", params={"aspect_ratio": "7:3"}))
    assert result.error is not None
    assert result.error.code is ErrorCode.INVALID_REQUEST
    assert "aspect_ratio" in result.error.message
    assert not result.error.retryable


async def test_no_credit_is_insufficient_credits() -> None:
    fake = ReplicateFake()
    fake.balance = 0
    async with served(fake) as http:
        result = await adapter_for("replicate-flux", fake, http).dispatch(request("replicate-flux"))
    assert result.error is not None
    assert result.error.code is ErrorCode.INSUFFICIENT_CREDITS
    assert not result.error.retryable


async def test_throttling_is_retried_after_the_hinted_delay() -> None:
    fake = ReplicateFake(script=Script(polls_to_finish=0))
    fake.faults.add("rate_limit", scope="create", retry_after=7)
    sleeps = Sleeps()
    async with served(fake) as http:
        adapter = adapter_for("replicate-flux", fake, http)
        result = await with_retries(
            lambda: adapter.dispatch(request("replicate-flux")), RetryPolicy(), sleep=sleeps
        )
    assert result.outcome is Outcome.SUCCESS
    assert sleeps.delays == [7.0]
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("fault", "code", "retryable"),
    [
        ("server_error", ErrorCode.PROVIDER_UNAVAILABLE, True),
        ("malformed", ErrorCode.PROVIDER_BAD_RESPONSE, True),
        ("html", ErrorCode.PROVIDER_BAD_RESPONSE, True),
    ],
)
async def test_status_check_errors_are_classified(fault: str, code: ErrorCode, retryable: bool) -> None:
    fake = ReplicateFake(script=Script(polls_to_finish=3))
    async with served(fake) as http:
        adapter = adapter_for("replicate-flux", fake, http)
        first = await adapter.dispatch(request("replicate-flux"))
        fake.faults.add(fault, scope="status")  # type: ignore[arg-type]
        result = await adapter.check_status(first.provider_task_id or "")
    assert result.error is not None
    assert result.error.code is code
    assert result.error.retryable is retryable
    assert result.provider_task_id == first.provider_task_id
    if code is ErrorCode.PROVIDER_BAD_RESPONSE:
        assert result.error.snippet
        assert "test-key" not in result.error.snippet


async def test_a_provider_that_hangs_is_a_retryable_timeout() -> None:
    fake = ReplicateFake()
    fake.faults.add("timeout", scope="create", hold_seconds=1.0)
    async with served(fake, timeout=0.2) as http:
        adapter = adapter_for("replicate-minimax", fake, http)
        result = await adapter.dispatch(request("replicate-minimax"))
    assert result.error is not None
    assert result.error.code is ErrorCode.TIMEOUT
    assert result.error.retryable


async def test_unknown_prediction_is_not_found() -> None:
    fake = ReplicateFake()
    async with served(fake) as http:
        result = await adapter_for("replicate-flux", fake, http).check_status("nope")
    assert result.error is not None
    assert result.error.code is ErrorCode.NOT_FOUND
    assert result.provider_task_id == "nope"


async def test_bad_input_image_is_refused_before_any_call() -> None:
    fake = ReplicateFake()
    async with served(fake) as http:
        adapter = adapter_for("replicate-flux", fake, http)
        not_image = await adapter.dispatch(request("replicate-flux", input_images=[NOT_AN_IMAGE_DATA_URL]))
        too_many = await adapter.dispatch(
            request("replicate-flux", input_images=[PNG_DATA_URL, PNG_DATA_URL])
        )
    for result in (not_image, too_many):
        assert result.error is not None
        assert result.error.code is ErrorCode.INVALID_INPUT_IMAGE
    assert fake.requests == []


async def test_signed_webhook_completes_the_task_and_forgeries_are_rejected() -> None:
    fake = ReplicateFake(script=Script(polls_to_finish=2), callback_secret=SECRET)
    async with callback_sink() as sink, served(fake) as http:
        adapter = adapter_for("replicate-minimax", fake, http, provider_settings={"webhook_secret": SECRET})
        assert adapter.wants_callback()
        first = await adapter.dispatch(request("replicate-minimax", callback_url=sink.url))
        assert first.outcome is Outcome.PROCESSING
        (callback,) = await sink.wait()
    body = fake.requests[0].json
    assert body["webhook"] == sink.url
    assert body["webhook_events_filter"] == ["completed"]

    result = adapter.parse_callback(callback)
    assert result.outcome is Outcome.SUCCESS
    assert result.provider_task_id == first.provider_task_id
    assert result.results[0].type is OutputType.VIDEO

    bad_signature = "v1," + base64.b64encode(b"x" * 32).decode()
    for rejected in (
        forged(callback, **{"webhook-signature": bad_signature}),
        forged(callback, **{"webhook-id": "msg_other"}),
        type(callback)(headers={}, body=callback.body),
        type(callback)(headers=callback.headers, body=callback.body.replace(b"succeeded", b"failed")),
    ):
        outcome = adapter.parse_callback(rejected)
        assert outcome.error is not None
        assert outcome.error.code is ErrorCode.CALLBACK_REJECTED


async def test_webhook_without_a_configured_secret_is_read_as_is() -> None:
    fake = ReplicateFake()
    async with served(fake) as http:
        adapter = adapter_for("replicate-flux", fake, http)
        payload = {"id": "p1", "status": "failed", "error": "CUDA out of memory", "output": None}
        result = adapter.parse_callback(CallbackRequest(headers={}, body=json.dumps(payload).encode()))
    assert result.error is not None
    assert result.error.code is ErrorCode.GENERATION_FAILED
    assert "CUDA out of memory" in result.error.message


async def test_health_reads_the_account_without_creating_anything() -> None:
    fake = ReplicateFake()
    async with served(fake) as http:
        ok = await adapter_for("replicate-flux", fake, http).health()
        bad = await adapter_for("replicate-flux", fake, http, api_key="wrong").health()
    assert ok.ok
    assert not bad.ok
    assert {r.path for r in fake.requests} == {"/v1/account"}


async def test_connection_refused_is_retryable() -> None:
    fake = ReplicateFake()
    fake.base_url = "http://127.0.0.1:9"  # nothing listens on the discard port
    async with httpx.AsyncClient(timeout=2) as http:
        result = await adapter_for("replicate-flux", fake, http).dispatch(request("replicate-flux"))
    assert result.error is not None
    assert result.error.code is ErrorCode.CONNECTION_FAILED
    assert result.error.retryable
