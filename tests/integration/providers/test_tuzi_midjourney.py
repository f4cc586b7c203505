"""TuZi Midjourney adapter against the TuZi fake over real HTTP (tuzi-midjourney)."""

from __future__ import annotations

import pytest
from aigen.providers.retry import RetryPolicy, with_retries
from aigen.providers.types import ErrorCode, Outcome, OutputType
from aigen.simulator.base import Script, media_bytes
from aigen.simulator.tuzi import TuziFake

from tests.integration.providers.fake_harness import (
    NOT_AN_IMAGE_DATA_URL,
    PNG_DATA_URL,
    Sleeps,
    adapter_for,
    download,
    finish,
    request,
    served,
)

SLUG = "tuzi-midjourney"


async def test_imagine_sends_flags_in_the_prompt_and_walks_to_four_images() -> None:
    fake = TuziFake(script=Script(polls_to_finish=3))
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        first = await adapter.dispatch(
            request(SLUG, "a knight in rain", params={"aspect_ratio": "16:9", "mode": "FAST", "stylize": 250})
        )
        assert first.outcome is Outcome.PROCESSING, first.error
        assert first.provider_task_id
        assert first.provider_task_id.isdigit()
        end, steps = await finish(adapter, first)
        assert [s.provider_state for s in steps] == ["code 1", "SUBMITTED", "IN_PROGRESS", "SUCCESS"]
        assert steps[2].progress is not None
        assert 0 < steps[2].progress < 1
        assert end.outcome is Outcome.SUCCESS
        assert len(end.results) == 4
        for item in end.results:
            assert item.type is OutputType.IMAGE
            assert await download(http, item.url or "") == media_bytes("png")
        assert end.results[0].extra["grid_url"].endswith("-grid.png")
        assert any("upsample::1" in b for b in end.results[0].extra["buttons"])
    submit = fake.requests[0]
    assert (submit.method, submit.path) == ("POST", "/mj/submit/imagine")
    assert submit.headers["authorization"] == "Bearer test-key"
    assert submit.headers["mj-api-secret"] == "test-key"
    assert submit.json == {
        "prompt": "a knight in rain --ar 16:9 --v 7 --s 250",
        "base64Array": [],
        "botType": "MID_JOURNEY",
        "accountFilter": {"modes": ["FAST"]},
    }
    assert {r.path for r in fake.requests[1:]} == {f"/mj/task/{first.provider_task_id}/fetch"}


async def test_reference_images_become_data_uris_and_niji_drops_the_version_flag() -> None:
    fake = TuziFake()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        hosted = fake.media_url("png", "reference")
        result = await adapter.dispatch(
            request(
                SLUG,
                "a cat --ar 2:3",
                input_images=[hosted, PNG_DATA_URL],
                params={"botType": "NIJI_JOURNEY"},
            )
        )
    assert result.outcome is Outcome.PROCESSING, result.error
    body = fake.requests[0].json
    assert body["base64Array"] == [PNG_DATA_URL, PNG_DATA_URL]
    assert body["prompt"] == "a cat --ar 2:3"  # the user's own --ar wins, Niji takes no --v
    assert body["botType"] == "NIJI_JOURNEY"


@pytest.mark.parametrize("code", [21, 22])
async def test_existing_or_queued_submissions_are_accepted(code: int) -> None:
    fake = TuziFake()
    fake.mj_submit_codes = [code]
    async with served(fake) as http:
        result = await adapter_for(SLUG, fake, http).dispatch(request(SLUG))
    assert result.outcome is Outcome.PROCESSING
    assert result.provider_task_id


@pytest.mark.parametrize(
    ("code", "error_code"),
    [
        (23, ErrorCode.PROVIDER_UNAVAILABLE),
        (9, ErrorCode.PROVIDER_UNAVAILABLE),
        (30, ErrorCode.RATE_LIMITED),
        (4, ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
async def test_busy_submit_codes_are_retried(code: int, error_code: ErrorCode) -> None:
    fake = TuziFake()
    fake.mj_submit_codes = [code]
    sleeps = Sleeps()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        first = await adapter.dispatch(request(SLUG))
        assert first.error is not None
        assert first.error.code is error_code
        assert first.error.retryable
        assert first.error.provider_code == str(code)
        fake.mj_submit_codes = [code]
        result = await with_retries(
            lambda: adapter.dispatch(request(SLUG)), RetryPolicy(base_delay=0.1), sleep=sleeps
        )
    assert result.outcome is Outcome.PROCESSING
    assert len(sleeps.delays) == 1


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("banned", ErrorCode.CONTENT_POLICY),
        ("quota", ErrorCode.INSUFFICIENT_CREDITS),
        ("blank", ErrorCode.INVALID_REQUEST),
        ("wrong_key", ErrorCode.AUTH_FAILED),
    ],
)
async def test_refusals_are_classified_and_not_retried(setup: str, code: ErrorCode) -> None:
    fake = TuziFake()
    if setup == "quota":
        fake.balance = 0
    prompt = {"banned": "gore everywhere", "blank": "   "}.get(setup, "a castle")
    sleeps = Sleeps()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http, api_key="sk-wrong" if setup == "wrong_key" else None)
        result = await with_retries(
            lambda: adapter.dispatch(request(SLUG, prompt)), RetryPolicy(), sleep=sleeps
        )
    assert result.error is not None
    assert result.error.code is code
    assert not result.error.retryable
    assert len(fake.requests) == 1
    assert sleeps.delays == []
    if setup == "banned":
        assert "gore" in result.error.message
        assert result.error.provider_code == "24"


async def test_failed_task_surfaces_fail_reason() -> None:
    fake = TuziFake(script=Script(polls_to_finish=2, fail_message="Midjourney upstream timed out"))
    fake.faults.add("fail", scope="create")
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        end, _ = await finish(adapter, await adapter.dispatch(request(SLUG)))
    assert end.error is not None
    assert end.error.code is ErrorCode.GENERATION_FAILED
    assert "upstream timed out" in end.error.message


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("rate_limit", ErrorCode.RATE_LIMITED),
        ("server_error", ErrorCode.PROVIDER_UNAVAILABLE),
        ("malformed", ErrorCode.PROVIDER_BAD_RESPONSE),
        ("html", ErrorCode.PROVIDER_BAD_RESPONSE),
    ],
)
async def test_fetch_errors_and_garbage(fault: str, code: ErrorCode) -> None:
    fake = TuziFake(script=Script(polls_to_finish=3))
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        first = await adapter.dispatch(request(SLUG))
        fake.faults.add(fault, scope="status")  # type: ignore[arg-type]
        result = await adapter.check_status(first.provider_task_id or "")
    assert result.error is not None
    assert result.error.code is code
    assert result.error.retryable
    assert result.provider_task_id == first.provider_task_id


async def test_unknown_task_is_not_found_and_bad_images_never_leave() -> None:
    fake = TuziFake()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        refused = await adapter.dispatch(request(SLUG, input_images=[NOT_AN_IMAGE_DATA_URL]))
        too_many = await adapter.dispatch(request(SLUG, input_images=[PNG_DATA_URL] * 6))
        assert fake.requests == []
        missing = await adapter.check_status("123")
    for result in (refused, too_many):
        assert result.error is not None
        assert result.error.code is ErrorCode.INVALID_INPUT_IMAGE
    assert missing.error is not None
    assert missing.error.code is ErrorCode.NOT_FOUND
