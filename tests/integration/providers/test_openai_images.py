"""OpenAI Images adapter against the OpenAI fake over real HTTP (openai-dall-e)."""

from __future__ import annotations

import pytest
from aigen.providers.retry import RetryPolicy, with_retries
from aigen.providers.types import ErrorCode, Outcome
from aigen.simulator.base import media_bytes
from aigen.simulator.openai import OpenAIFake, parse_multipart

from tests.integration.providers.fake_harness import (
    NOT_AN_IMAGE_DATA_URL,
    PNG,
    PNG_DATA_URL,
    Sleeps,
    adapter_for,
    download,
    request,
    served,
)

SLUG = "openai-dall-e"


async def test_dall_e_3_generation_sends_the_documented_body_and_returns_a_downloadable_url() -> None:
    fake = OpenAIFake()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        result = await adapter.dispatch(
            request(
                SLUG, "lighthouse at dusk", params={"size": "1792x1024", "quality": "hd", "style": "natural"}
            )
        )
        assert result.outcome is Outcome.SUCCESS, result.error
        (image,) = result.results
        assert image.url is not None
        assert image.data is None
        assert await download(http, image.url) == media_bytes("png")
        assert "lighthouse at dusk" in image.extra["revised_prompt"]
    (sent,) = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/images/generations")
    assert sent.headers["authorization"] == "Bearer test-key"
    assert sent.json == {
        "model": "dall-e-3",
        "prompt": "lighthouse at dusk",
        "n": 1,
        "size": "1792x1024",
        "quality": "hd",
        "style": "natural",
        "response_format": "url",
    }


async def test_base64_results_become_bytes() -> None:
    fake = OpenAIFake()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        result = await adapter.dispatch(
            request(
                SLUG,
                number_of_outputs=3,
                params={"model": "dall-e-2", "size": "256x256", "response_format": "b64_json"},
            )
        )
    assert result.outcome is Outcome.SUCCESS, result.error
    assert len(result.results) == 3
    for item in result.results:
        assert item.data == PNG
        assert item.content_type == "image/png"
        assert item.url is None
    assert fake.requests[0].json["n"] == 3
    assert "style" not in fake.requests[0].json


async def test_gpt_image_leaves_out_dall_e_fields_and_keeps_usage() -> None:
    fake = OpenAIFake()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        result = await adapter.dispatch(
            request(
                SLUG,
                "sticker of a cat",
                params={
                    "model": "gpt-image-1",
                    "quality": "low",
                    "background": "transparent",
                    "output_format": "png",
                },
            )
        )
    assert result.outcome is Outcome.SUCCESS, result.error
    (image,) = result.results
    assert image.data == PNG
    assert image.extra["usage"]["total_tokens"] > 0
    sent = fake.requests[0].json
    assert "response_format" not in sent
    assert "style" not in sent
    assert sent["background"] == "transparent"


async def test_edits_upload_every_image_as_multipart() -> None:
    fake = OpenAIFake()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        hosted = fake.media_url("png", "reference")
        result = await adapter.dispatch(
            request(
                SLUG, "make it blue", input_images=[PNG_DATA_URL, hosted], params={"model": "gpt-image-1"}
            )
        )
    assert result.outcome is Outcome.SUCCESS, result.error
    (sent,) = fake.requests
    assert sent.path == "/v1/images/edits"
    assert sent.headers["content-type"].startswith("multipart/form-data")
    fields, files = parse_multipart(sent.headers["content-type"], sent.body)
    assert fields["model"] == "gpt-image-1"
    assert fields["prompt"] == "make it blue"
    assert fields["n"] == "1"
    assert "response_format" not in fields
    assert "style" not in fields
    assert [(name, data) for name, _, data in files] == [("image[]", PNG), ("image[]", PNG)]


async def test_dall_e_2_edit_sends_one_image_field() -> None:
    fake = OpenAIFake()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        result = await adapter.dispatch(
            request(
                SLUG,
                "add a hat",
                input_images=[PNG_DATA_URL],
                params={"model": "dall-e-2", "size": "512x512"},
            )
        )
    assert result.outcome is Outcome.SUCCESS, result.error
    fields, files = parse_multipart(fake.requests[0].headers["content-type"], fake.requests[0].body)
    assert [name for name, _, _ in files] == ["image"]
    assert fields["response_format"] == "url"


async def test_dall_e_3_cannot_edit_and_nothing_is_sent() -> None:
    fake = OpenAIFake()
    async with served(fake) as http:
        result = await adapter_for(SLUG, fake, http).dispatch(request(SLUG, input_images=[PNG_DATA_URL]))
    assert result.error is not None
    assert result.error.code is ErrorCode.INVALID_REQUEST
    assert fake.requests == []


@pytest.mark.parametrize(
    ("model", "provider_code"),
    [("gpt-image-1", "moderation_blocked"), ("dall-e-3", "content_policy_violation")],
)
async def test_safety_refusals_are_content_policy(model: str, provider_code: str) -> None:
    fake = OpenAIFake()
    fake.faults.add("content_policy", scope="create")
    sleeps = Sleeps()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        result = await with_retries(
            lambda: adapter.dispatch(request(SLUG, params={"model": model})), RetryPolicy(), sleep=sleeps
        )
    assert result.error is not None
    assert result.error.code is ErrorCode.CONTENT_POLICY
    assert result.error.provider_code == provider_code
    assert not result.error.retryable
    assert len(fake.requests) == 1
    assert sleeps.delays == []


async def test_validation_error_carries_the_provider_message() -> None:
    fake = OpenAIFake()
    async with served(fake) as http:
        result = await adapter_for(SLUG, fake, http).dispatch(request(SLUG, params={"size": "256x256"}))
    assert result.error is not None
    assert result.error.code is ErrorCode.INVALID_REQUEST
    assert "256x256" in result.error.message
    assert result.error.http_status == 400


async def test_wrong_key_is_auth_failed_and_the_snippet_holds_no_key() -> None:
    fake = OpenAIFake(api_key="sk-right-key-0000")
    async with served(fake) as http:
        result = await adapter_for(SLUG, fake, http, api_key="sk-wrong-secret-key-1234").dispatch(
            request(SLUG)
        )
    assert result.error is not None
    assert result.error.code is ErrorCode.AUTH_FAILED
    assert result.error.snippet is not None
    assert "sk-wrong-secret-key-1234" not in result.error.snippet


async def test_exhausted_quota_is_not_retried() -> None:
    fake = OpenAIFake()
    fake.balance = 0
    async with served(fake) as http:
        result = await adapter_for(SLUG, fake, http).dispatch(request(SLUG))
    assert result.error is not None
    assert result.error.code is ErrorCode.INSUFFICIENT_CREDITS
    assert result.error.http_status == 429
    assert not result.error.retryable


async def test_rate_limit_is_retried_after_retry_after_ms() -> None:
    fake = OpenAIFake()
    fake.faults.add("rate_limit", scope="create", retry_after=2.5)
    sleeps = Sleeps()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        result = await with_retries(lambda: adapter.dispatch(request(SLUG)), RetryPolicy(), sleep=sleeps)
    assert result.outcome is Outcome.SUCCESS
    assert sleeps.delays == [2.5]


@pytest.mark.parametrize(
    ("fault", "code", "retryable"),
    [
        ("server_error", ErrorCode.PROVIDER_UNAVAILABLE, True),
        ("malformed", ErrorCode.PROVIDER_BAD_RESPONSE, True),
        ("html", ErrorCode.PROVIDER_BAD_RESPONSE, True),
    ],
)
async def test_server_errors_and_garbage(fault: str, code: ErrorCode, retryable: bool) -> None:
    fake = OpenAIFake()
    fake.faults.add(fault, scope="create")  # type: ignore[arg-type]
    async with served(fake) as http:
        result = await adapter_for(SLUG, fake, http).dispatch(request(SLUG))
    assert result.error is not None
    assert result.error.code is code
    assert result.error.retryable is retryable
    if code is ErrorCode.PROVIDER_BAD_RESPONSE:
        assert result.error.snippet


async def test_bad_input_images_are_refused_before_any_call() -> None:
    fake = OpenAIFake()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        first = await adapter.dispatch(
            request(SLUG, input_images=[NOT_AN_IMAGE_DATA_URL], params={"model": "gpt-image-1"})
        )
        second = await adapter.dispatch(
            request(SLUG, input_images=["file:///etc/passwd"], params={"model": "gpt-image-1"})
        )
        # A URL whose download is not an image is refused too, after fetching it but before OpenAI.
        third = await adapter.dispatch(
            request(SLUG, input_images=[fake.media_url("mp3", "song")], params={"model": "gpt-image-1"})
        )
    for result in (first, second, third):
        assert result.error is not None
        assert result.error.code is ErrorCode.INVALID_INPUT_IMAGE
    assert fake.requests == []


async def test_synchronous_adapter_has_no_status_to_check_and_health_lists_models() -> None:
    fake = OpenAIFake()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        status = await adapter.check_status("x")
        health = await adapter.health()
    assert status.error is not None
    assert status.error.code is ErrorCode.UNSUPPORTED
    assert health.ok
    assert fake.requests[-1].path == "/v1/models"
    assert not adapter.wants_callback()
