"""Kie error answers map onto our error classes; retries follow Retry-After; garbage never raises."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aigen.providers.base import HttpTimeouts, make_http_client
from aigen.providers.retry import RetryPolicy, with_retries
from aigen.providers.types import AdapterResult, ErrorCode, GenerationRequest, Outcome
from aigen.simulator.base import FaultKind
from aigen.simulator.kie import KieFake
from aigen.simulator.serving import serve_asgi

from tests.integration.providers.kie_harness import (
    API_KEY,
    MODELS,
    PROMPT,
    FakeHost,
    adapter_for,
    sample_request,
)

NANO = "kie-nano-banana"


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


class Sleeps:
    """A stand-in for asyncio.sleep that only remembers how long it was asked to wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def creates(fake: KieFake) -> int:
    return sum(1 for r in fake.requests if r.method == "POST")


@pytest.mark.parametrize(
    ("slug", "code", "http_status", "expected", "retryable"),
    [
        (NANO, 400, 200, ErrorCode.INVALID_REQUEST, False),
        (NANO, 402, 200, ErrorCode.INSUFFICIENT_CREDITS, False),
        (NANO, 404, 200, ErrorCode.NOT_FOUND, False),
        (NANO, 422, 200, ErrorCode.INVALID_REQUEST, False),
        (NANO, 429, 429, ErrorCode.RATE_LIMITED, True),
        (NANO, 433, 200, ErrorCode.RATE_LIMITED, False),
        (NANO, 455, 200, ErrorCode.PROVIDER_UNAVAILABLE, True),
        (NANO, 500, 500, ErrorCode.PROVIDER_UNAVAILABLE, True),
        (NANO, 501, 200, ErrorCode.GENERATION_FAILED, False),
        (NANO, 505, 200, ErrorCode.UNSUPPORTED, False),
        ("kie-4o-image", 451, 200, ErrorCode.INVALID_INPUT_IMAGE, False),
        ("kie-4o-image", 550, 200, ErrorCode.PROVIDER_UNAVAILABLE, True),
        ("kie-veo-3-1", 401, 401, ErrorCode.AUTH_FAILED, False),
        ("kie-runway", 455, 200, ErrorCode.PROVIDER_UNAVAILABLE, True),
    ],
)
async def test_kie_codes_map_to_error_classes(
    slug: str,
    code: int,
    http_status: int,
    expected: ErrorCode,
    retryable: bool,
    host: FakeHost,
    http: httpx.AsyncClient,
) -> None:
    fake = host.install()
    fake.queue_error(code, f"kie says {code}", http_status=http_status)
    result = await adapter_for(slug, fake, http).dispatch(sample_request(MODELS[slug], fake))
    assert result.outcome is Outcome.ERROR
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == (expected, retryable)
    assert result.error.provider_code == str(code)
    assert f"kie says {code}" in result.error.message
    assert result.error.http_status == http_status


async def test_http_200_with_an_error_code_is_an_error(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    result = await adapter_for(NANO, fake, http).dispatch(
        GenerationRequest(prompt=PROMPT, parameters={"aspect_ratio": "7:5"})
    )
    assert result.error is not None
    assert result.error.code is ErrorCode.INVALID_REQUEST
    assert result.error.http_status == 200
    assert "aspect_ratio" in result.error.message


async def test_wrong_key_is_an_auth_error_without_the_key(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    wrong = "kie-wrong-key-0000"
    result = await adapter_for(NANO, fake, http, api_key=wrong).dispatch(sample_request(MODELS[NANO], fake))
    assert result.error is not None
    assert result.error.code is ErrorCode.AUTH_FAILED
    assert "access permissions" in result.error.message
    assert wrong not in result.error.message
    assert wrong not in (result.error.snippet or "")
    assert fake.requests[0].headers["authorization"] == f"Bearer {wrong}"


async def test_low_balance_is_insufficient_credits(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    fake.balance = 3  # Nano Banana costs 4 credits
    result = await adapter_for(NANO, fake, http).dispatch(sample_request(MODELS[NANO], fake))
    assert result.error is not None
    assert result.error.code is ErrorCode.INSUFFICIENT_CREDITS


async def test_unfetchable_input_image_is_451(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    result = await adapter_for("kie-runway", fake, http).dispatch(
        GenerationRequest(
            prompt=PROMPT,
            input_images=["https://images.invalid/cat.png"],
            parameters={"duration": 5, "quality": "720p"},
        )
    )
    assert result.error is not None
    assert (result.error.code, result.error.provider_code) == (ErrorCode.INVALID_INPUT_IMAGE, "451")


async def test_content_policy_refusal_at_create(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    fake.queue_error(400, "Your prompt violates the content policy")
    result = await adapter_for("kie-veo-3", fake, http).dispatch(sample_request(MODELS["kie-veo-3"], fake))
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == (ErrorCode.CONTENT_POLICY, False)


async def test_rate_limit_waits_for_retry_after(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    fake.faults.add("rate_limit", scope="create", retry_after=7)
    adapter = adapter_for(NANO, fake, http)
    sleeps = Sleeps()

    result = await with_retries(
        lambda: adapter.dispatch(sample_request(MODELS[NANO], fake)), RetryPolicy(), sleep=sleeps
    )

    assert result.outcome is Outcome.PROCESSING
    assert sleeps.delays == [7.0]
    assert creates(fake) == 2


async def test_status_rate_limit_is_retried_too(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    adapter = adapter_for("kie-midjourney", fake, http)
    created = await adapter.dispatch(sample_request(MODELS["kie-midjourney"], fake))
    assert created.provider_task_id is not None
    fake.faults.add("rate_limit", scope="status", retry_after=2)
    sleeps = Sleeps()
    result = await with_retries(
        lambda: adapter.check_status(str(created.provider_task_id)), RetryPolicy(), sleep=sleeps
    )
    assert result.outcome is Outcome.PROCESSING
    assert sleeps.delays == [2.0]


@pytest.mark.parametrize("code", [455, 500, 550])
async def test_unavailable_is_retried_with_backoff(
    code: int, host: FakeHost, http: httpx.AsyncClient
) -> None:
    fake = host.install()
    fake.queue_error(code, "try again later", times=2)
    adapter = adapter_for("kie-4o-image", fake, http)
    sleeps = Sleeps()
    result = await with_retries(
        lambda: adapter.dispatch(sample_request(MODELS["kie-4o-image"], fake)), RetryPolicy(), sleep=sleeps
    )
    assert result.outcome is Outcome.PROCESSING
    assert len(sleeps.delays) == 2
    assert creates(fake) == 3


@pytest.mark.parametrize("code", [400, 402, 422, 433, 501, 505])
async def test_non_retryable_errors_are_not_retried(
    code: int, host: FakeHost, http: httpx.AsyncClient
) -> None:
    fake = host.install()
    fake.queue_error(code, "no")
    adapter = adapter_for(NANO, fake, http)
    sleeps = Sleeps()
    result = await with_retries(
        lambda: adapter.dispatch(sample_request(MODELS[NANO], fake)),
        RetryPolicy(max_attempts=5),
        sleep=sleeps,
    )
    assert result.outcome is Outcome.ERROR
    assert sleeps.delays == []
    assert creates(fake) == 1


def assert_bad_response(result: AdapterResult, fragment: str) -> None:
    assert result.outcome is Outcome.ERROR
    assert result.error is not None
    assert result.error.code is ErrorCode.PROVIDER_BAD_RESPONSE
    assert result.error.snippet is not None
    assert fragment in result.error.snippet
    assert API_KEY not in result.error.snippet


@pytest.mark.parametrize(("kind", "fragment"), [("malformed", '{"code": 200'), ("html", "<html>")])
@pytest.mark.parametrize(
    "slug", [NANO, "kie-4o-image", "kie-flux-kontext", "kie-midjourney", "kie-veo-3", "kie-runway"]
)
async def test_garbage_at_create(
    kind: FaultKind, fragment: str, slug: str, host: FakeHost, http: httpx.AsyncClient
) -> None:
    fake = host.install()
    fake.faults.add(kind, scope="create")
    result = await adapter_for(slug, fake, http).dispatch(sample_request(MODELS[slug], fake))
    assert_bad_response(result, fragment)


@pytest.mark.parametrize("kind", ["malformed", "html"])
async def test_garbage_at_status(kind: FaultKind, host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    adapter = adapter_for(NANO, fake, http)
    created = await adapter.dispatch(sample_request(MODELS[NANO], fake))
    assert created.provider_task_id is not None
    fake.faults.add(kind, scope="status")
    result = await adapter.check_status(created.provider_task_id)
    assert_bad_response(result, "<html>" if kind == "html" else '{"code"')
    assert result.provider_task_id == created.provider_task_id


async def test_success_envelope_without_task_id(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    fake.queue_error(200, "success")  # code 200, but no data at all
    result = await adapter_for("kie-runway", fake, http).dispatch(sample_request(MODELS["kie-runway"], fake))
    assert_bad_response(result, '"code":200')
    assert result.error is not None
    assert "taskId" in result.error.message


async def test_status_record_missing_its_data(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    fake.queue_error(200, "success", scope="status")
    result = await adapter_for("kie-veo-3", fake, http).check_status("veo_task_x")
    assert_bad_response(result, '"code":200')


async def test_timeout_is_a_retryable_error(host: FakeHost) -> None:
    fake = host.install()
    fake.faults.add("timeout", scope="create", hold_seconds=1.0)
    async with make_http_client(HttpTimeouts(connect=1.0, total=0.2)) as quick:
        result = await adapter_for(NANO, fake, quick).dispatch(sample_request(MODELS[NANO], fake))
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == (ErrorCode.TIMEOUT, True)


async def test_unreachable_provider_is_a_connection_error(http: httpx.AsyncClient) -> None:
    fake = KieFake(api_key=API_KEY)
    fake.base_url = "http://127.0.0.1:9"  # discard port: nothing listens
    result = await adapter_for(NANO, fake, http).dispatch(GenerationRequest(prompt=PROMPT))
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == (ErrorCode.CONNECTION_FAILED, True)
