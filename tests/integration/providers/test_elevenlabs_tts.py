"""ElevenLabs adapter against the ElevenLabs fake over real HTTP (elevenlabs-tts)."""

from __future__ import annotations

import pytest
from aigen.providers.retry import RetryPolicy, with_retries
from aigen.providers.types import ErrorCode, Outcome, OutputType
from aigen.simulator.base import media_bytes
from aigen.simulator.elevenlabs import ElevenLabsFake

from tests.integration.providers.fake_harness import PNG_DATA_URL, Sleeps, adapter_for, request, served

SLUG = "elevenlabs-tts"


async def test_speech_request_puts_voice_in_path_format_in_query_and_settings_nested() -> None:
    fake = ElevenLabsFake()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        result = await adapter.dispatch(
            request(
                SLUG,
                "Hello there",
                params={"stability": 0.5, "similarity_boost": 0.75, "use_speaker_boost": True},
            )
        )
    assert result.outcome is Outcome.SUCCESS, result.error
    (audio,) = result.results
    assert audio.type is OutputType.AUDIO
    assert audio.data == media_bytes("mp3")
    assert audio.content_type == "audio/mpeg"
    assert result.cost is not None
    assert result.cost.amount == len("Hello there")
    (sent,) = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb")
    assert sent.query == {"output_format": "mp3_44100_128"}
    assert sent.headers["xi-api-key"] == "test-key"
    assert "authorization" not in sent.headers
    assert sent.json == {
        "text": "Hello there",
        "model_id": "eleven_multilingual_v2",
        "voice_settings": {"stability": 0.5, "similarity_boost": 0.75, "use_speaker_boost": True},
    }


async def test_flash_model_costs_half_a_credit_per_character_and_other_voice() -> None:
    fake = ElevenLabsFake()
    async with served(fake) as http:
        result = await adapter_for(SLUG, fake, http).dispatch(
            request(
                SLUG,
                "x" * 10,
                params={"model_id": "eleven_flash_v2_5", "voice_id": "21m00Tcm4TlvDq8ikWAM", "speed": 1.1},
            )
        )
    assert result.outcome is Outcome.SUCCESS
    assert result.cost is not None
    assert result.cost.amount == 5
    sent = fake.requests[0]
    assert sent.path.endswith("/21m00Tcm4TlvDq8ikWAM")
    assert sent.json["voice_settings"] == {"speed": 1.1}


@pytest.mark.parametrize(
    ("setup", "params", "code"),
    [
        ("unknown_voice", {"voice_id": "nobody"}, ErrorCode.INVALID_REQUEST),
        ("no_quota", {}, ErrorCode.INSUFFICIENT_CREDITS),
        ("wrong_key", {}, ErrorCode.AUTH_FAILED),
        ("bad_setting", {"stability": 1.5}, ErrorCode.INVALID_REQUEST),
    ],
)
async def test_refusals_are_classified_and_never_retried(
    setup: str, params: dict[str, object], code: ErrorCode
) -> None:
    fake = ElevenLabsFake()
    if setup == "no_quota":
        fake.balance = 3
    sleeps = Sleeps()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http, api_key="wrong" if setup == "wrong_key" else None)
        result = await with_retries(
            lambda: adapter.dispatch(request(SLUG, "Hello there", params=params)), RetryPolicy(), sleep=sleeps
        )
    assert result.error is not None
    assert result.error.code is code
    assert not result.error.retryable
    assert len(fake.requests) == 1
    assert sleeps.delays == []
    if setup == "bad_setting":
        assert "voice_settings.stability" in result.error.message


@pytest.mark.parametrize(
    ("status_word", "code"),
    [
        ("too_many_concurrent_requests", ErrorCode.RATE_LIMITED),
        ("system_busy", ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
async def test_busy_answers_are_retried_after_the_hint(status_word: str, code: ErrorCode) -> None:
    fake = ElevenLabsFake()
    fake.rate_limit_status = status_word
    fake.faults.add("rate_limit", scope="create", retry_after=3)
    sleeps = Sleeps()
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        first = await adapter.dispatch(request(SLUG))
        assert first.error is not None
        assert first.error.code is code
        assert first.error.retryable
        assert first.error.provider_code == status_word
        fake.faults.add("rate_limit", scope="create", retry_after=3)
        result = await with_retries(lambda: adapter.dispatch(request(SLUG)), RetryPolicy(), sleep=sleeps)
    assert result.outcome is Outcome.SUCCESS
    assert sleeps.delays == [3.0]


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("server_error", ErrorCode.PROVIDER_UNAVAILABLE),
        ("html", ErrorCode.PROVIDER_BAD_RESPONSE),
        ("malformed", ErrorCode.PROVIDER_BAD_RESPONSE),
    ],
)
async def test_server_errors_and_non_audio_answers(fault: str, code: ErrorCode) -> None:
    fake = ElevenLabsFake()
    fake.faults.add(fault, scope="create")  # type: ignore[arg-type]
    async with served(fake) as http:
        result = await adapter_for(SLUG, fake, http).dispatch(request(SLUG))
    assert result.error is not None
    assert result.error.code is code
    if code is ErrorCode.PROVIDER_BAD_RESPONSE:
        assert result.error.snippet


async def test_images_are_refused_without_calling_out() -> None:
    fake = ElevenLabsFake()
    async with served(fake) as http:
        result = await adapter_for(SLUG, fake, http).dispatch(request(SLUG, input_images=[PNG_DATA_URL]))
    assert result.error is not None
    assert result.error.code is ErrorCode.INVALID_INPUT_IMAGE
    assert fake.requests == []


async def test_health_reports_characters_left() -> None:
    fake = ElevenLabsFake()
    fake.balance = 1234
    async with served(fake) as http:
        adapter = adapter_for(SLUG, fake, http)
        health = await adapter.health()
        fake.faults.add("low_balance")
        low = await adapter.health()
    assert health.ok
    assert health.balance == 1234
    assert health.balance_unit == "characters"
    assert low.balance == 5
    assert fake.requests[0].path == "/v1/user/subscription"
