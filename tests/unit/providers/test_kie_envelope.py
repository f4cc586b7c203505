"""Kie's envelope and error codes, classified without any I/O."""

from __future__ import annotations

import httpx
import pytest
from aigen.providers.base import HttpReply
from aigen.providers.kie.envelope import classify, code_of, is_policy_refusal, message_of, task_failure
from aigen.providers.kie.market import KieMarketAdapter
from aigen.providers.types import AdapterError, ErrorCode, ModelConfig, OutputType, ProviderConfig

KEY = "sk-kie-secret-0042"


@pytest.mark.parametrize(
    ("code", "message", "expected", "retryable"),
    [
        (401, "You do not have access permissions", ErrorCode.AUTH_FAILED, False),
        (402, "Credits insufficient", ErrorCode.INSUFFICIENT_CREDITS, False),
        (400, "bad params", ErrorCode.INVALID_REQUEST, False),
        (422, "The model field is required", ErrorCode.INVALID_REQUEST, False),
        (422, "recordInfo is null", ErrorCode.NOT_FOUND, False),
        (404, "task not found", ErrorCode.NOT_FOUND, False),
        (408, "upstream timeout", ErrorCode.TIMEOUT, True),
        (429, "slow down", ErrorCode.RATE_LIMITED, True),
        (433, "sub-key usage exceeds its limit", ErrorCode.RATE_LIMITED, False),
        (451, "could not fetch the image", ErrorCode.INVALID_INPUT_IMAGE, False),
        (455, "maintenance", ErrorCode.PROVIDER_UNAVAILABLE, True),
        (500, "server error", ErrorCode.PROVIDER_UNAVAILABLE, True),
        (501, "generation failed", ErrorCode.GENERATION_FAILED, False),
        (505, "feature disabled", ErrorCode.UNSUPPORTED, False),
        (550, "queue is full", ErrorCode.PROVIDER_UNAVAILABLE, True),
        (400, "Your prompt was flagged by the content policy", ErrorCode.CONTENT_POLICY, False),
        (422, "Your request was rejected by Flow (unsafe content)", ErrorCode.CONTENT_POLICY, False),
        (418, "teapot", ErrorCode.PROVIDER_BAD_RESPONSE, False),
    ],
)
def test_classify(code: int, message: str, expected: ErrorCode, retryable: bool) -> None:
    error = classify(code, message, retry_after=3.0)
    assert (error.code, error.retryable, error.provider_code) == (expected, retryable, str(code))
    assert message in error.message
    if code == 429:
        assert error.retry_after == 3.0


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("content policy violation", True),
        ("The prompt violates our safety policy", True),
        ("NSFW content detected", True),
        ("Inappropriate content detected", True),
        ("Image was flagged", True),
        ("Internal server error", False),
        ("the render node ran out of memory", False),
        ("", False),
    ],
)
def test_policy_words(text: str, policy: bool) -> None:
    assert is_policy_refusal(text) is policy


def test_task_failure_classes() -> None:
    assert task_failure("400", "content policy violation").code is ErrorCode.CONTENT_POLICY
    assert task_failure(451, "Failed to fetch the image").code is ErrorCode.INVALID_INPUT_IMAGE
    failed = task_failure("500", "Internal server error")
    assert (failed.code, failed.retryable, failed.provider_code) == (
        ErrorCode.GENERATION_FAILED,
        False,
        "500",
    )
    assert task_failure(None, "").message  # never an empty message


def test_envelope_fields() -> None:
    assert message_of({"msg": "a"}) == "a"
    assert message_of({"message": "b"}) == "b"
    assert message_of({}) == ""
    assert code_of({"code": "422"}) == 422
    assert code_of({"code": True}) is None
    assert code_of({}) is None


def adapter() -> KieMarketAdapter:
    model = ModelConfig(
        slug="kie-nano-banana",
        adapter_name="KieNanoBananaAdapter",
        output_type=OutputType.IMAGE,
        provider=ProviderConfig(slug="kie", api_endpoint="https://api.kie.ai", api_key=KEY),
        settings={"model": "google/nano-banana"},
    )
    return KieMarketAdapter(model, httpx.AsyncClient())


def reply(status: int, content: bytes, headers: dict[str, str] | None = None) -> HttpReply:
    return HttpReply(status, httpx.Headers(headers or {}), content)


def test_envelope_success_needs_body_code_200() -> None:
    body = adapter().envelope(reply(200, b'{"code":200,"msg":"success","data":{"taskId":"t"}}'))
    assert not isinstance(body, AdapterError)
    assert body["data"] == {"taskId": "t"}


def test_http_200_with_error_code_is_an_error() -> None:
    error = adapter().envelope(reply(200, b'{"code":402,"msg":"Credits insufficient"}'))
    assert isinstance(error, AdapterError)
    assert (error.code, error.http_status) == (ErrorCode.INSUFFICIENT_CREDITS, 200)


def test_http_error_with_success_body_is_still_an_error() -> None:
    error = adapter().envelope(reply(503, b'{"code":200,"msg":"success"}'))
    assert isinstance(error, AdapterError)
    assert error.code is ErrorCode.PROVIDER_UNAVAILABLE


def test_retry_after_header_is_kept() -> None:
    error = adapter().envelope(reply(429, b'{"code":429,"msg":"slow"}', {"Retry-After": "12"}))
    assert isinstance(error, AdapterError)
    assert (error.code, error.retry_after) == (ErrorCode.RATE_LIMITED, 12.0)


def test_html_error_page_is_classified_by_status() -> None:
    error = adapter().envelope(reply(502, b"<html>Bad Gateway</html>"))
    assert isinstance(error, AdapterError)
    assert (error.code, error.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, True)
    assert error.snippet is not None
    assert "Bad Gateway" in error.snippet


@pytest.mark.parametrize(
    "content", [b"<html>ok?</html>", b'{"code": 200, "da', b"[1,2]", b'{"msg":"no code"}']
)
def test_garbage_with_http_200_is_a_bad_response(content: bytes) -> None:
    error = adapter().envelope(reply(200, content))
    assert isinstance(error, AdapterError)
    assert error.code is ErrorCode.PROVIDER_BAD_RESPONSE
    assert error.snippet == content.decode()


def test_the_key_never_reaches_messages_or_snippets() -> None:
    leaky = f'{{"code":401,"msg":"key {KEY} is not valid"}}'.encode()
    error = adapter().envelope(reply(401, leaky))
    assert isinstance(error, AdapterError)
    assert KEY not in error.message
    assert KEY not in (error.snippet or "")
    long_garbage = b"<html>" + KEY.encode() + b"x" * 2000
    bad = adapter().envelope(reply(200, long_garbage))
    assert isinstance(bad, AdapterError)
    assert KEY not in (bad.snippet or "")
    assert len(bad.snippet or "") <= 501
