"""How each adapter reads its provider's answers, with canned replies (no network)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aigen.providers.base import BaseAdapter
from aigen.providers.elevenlabs import ElevenLabsTTSAdapter
from aigen.providers.openai import OpenAIImagesAdapter
from aigen.providers.pollo import PolloGenerationAdapter
from aigen.providers.replicate import ReplicatePredictionAdapter, progress_from_logs
from aigen.providers.tuzi.kling import TuziKlingAdapter, kling_error_code
from aigen.providers.tuzi.midjourney import TuziMidjourneyAdapter, parse_progress
from aigen.providers.types import (
    ErrorCode,
    GenerationRequest,
    ModelConfig,
    Outcome,
    OutputType,
    ProviderConfig,
)

KEY = "sk-very-secret-key-123"


def adapter(
    cls: type[BaseAdapter],
    handler: Callable[[httpx.Request], httpx.Response],
    settings: dict[str, Any] | None = None,
    output: OutputType = OutputType.IMAGE,
) -> BaseAdapter:
    config = ModelConfig(
        slug="m",
        adapter_name=cls.__name__,
        output_type=output,
        provider=ProviderConfig(slug="p", api_endpoint="https://provider.test", api_key=KEY),
        settings=settings or {},
    )
    return cls(config, httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def reply(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda _request: httpx.Response(status, content=content, headers=headers)


GEN = GenerationRequest(prompt="p")


async def test_openai_x_should_retry_overrides_the_status() -> None:
    no = await adapter(
        OpenAIImagesAdapter, reply(500, {"error": {"message": "x"}}, {"x-should-retry": "false"})
    ).dispatch(GEN)
    yes = await adapter(
        OpenAIImagesAdapter, reply(400, {"error": {"message": "x"}}, {"x-should-retry": "true"})
    ).dispatch(GEN)
    assert no.error is not None
    assert not no.error.retryable
    assert yes.error is not None
    assert yes.error.retryable


async def test_openai_conflict_is_retryable_and_billing_limit_is_not() -> None:
    conflict = await adapter(OpenAIImagesAdapter, reply(409, {"error": {"message": "busy"}})).dispatch(GEN)
    billing = await adapter(
        OpenAIImagesAdapter, reply(400, {"error": {"message": "limit", "code": "billing_hard_limit_reached"}})
    ).dispatch(GEN)
    assert conflict.error is not None
    assert conflict.error.retryable
    assert billing.error is not None
    assert billing.error.code is ErrorCode.INSUFFICIENT_CREDITS


async def test_an_echoed_key_never_reaches_the_snippet() -> None:
    result = await adapter(OpenAIImagesAdapter, reply(200, f"<html>key {KEY}</html>".encode())).dispatch(GEN)
    assert result.error is not None
    assert result.error.code is ErrorCode.PROVIDER_BAD_RESPONSE
    assert result.error.snippet is not None
    assert KEY not in result.error.snippet
    assert "***" in result.error.snippet


async def test_openai_empty_data_and_bad_base64_are_bad_responses() -> None:
    empty = await adapter(OpenAIImagesAdapter, reply(200, {"created": 1, "data": []})).dispatch(GEN)
    bad = await adapter(
        OpenAIImagesAdapter, reply(200, {"created": 1, "data": [{"b64_json": "%%%"}]})
    ).dispatch(GEN)
    for result in (empty, bad):
        assert result.error is not None
        assert result.error.code is ErrorCode.PROVIDER_BAD_RESPONSE


async def test_replicate_ratelimit_reset_is_the_fallback_hint() -> None:
    result = await adapter(
        ReplicatePredictionAdapter,
        reply(429, {"detail": "throttled"}, {"ratelimit-reset": "12"}),
        {"model": "a/b"},
    ).dispatch(GEN)
    assert result.error is not None
    assert result.error.code is ErrorCode.RATE_LIMITED
    assert result.error.retry_after == 12


async def test_replicate_succeeded_without_output_is_a_bad_response_and_canceled_is_cancelled() -> None:
    empty = await adapter(
        ReplicatePredictionAdapter, reply(200, {"id": "p", "status": "succeeded", "output": None})
    ).check_status("p")
    canceled = await adapter(
        ReplicatePredictionAdapter, reply(200, {"id": "p", "status": "canceled"})
    ).check_status("p")
    nested = await adapter(
        ReplicatePredictionAdapter, reply(200, {"id": "p", "status": "succeeded", "output": [["u1"], "u2"]})
    ).check_status("p")
    assert empty.error is not None
    assert empty.error.code is ErrorCode.PROVIDER_BAD_RESPONSE
    assert canceled.error is not None
    assert canceled.error.code is ErrorCode.CANCELLED
    assert [r.url for r in nested.results] == ["u1", "u2"]


def test_progress_parsers() -> None:
    logs = "Using seed: 1\n 25%|██▌       | 1/4 [00:00<00:01]\n 75%|███████▌  | 3/4 [00:01<00:00]\n"
    assert progress_from_logs(logs) == 0.75
    assert progress_from_logs("no bar here") is None
    assert progress_from_logs(None) is None
    assert parse_progress("45%") == 0.45
    assert parse_progress("") is None
    assert parse_progress(80) == 0.8


@pytest.mark.parametrize(
    ("code", "expected", "retryable"),
    [
        (1002, ErrorCode.AUTH_FAILED, False),
        (1101, ErrorCode.INSUFFICIENT_CREDITS, False),
        (1201, ErrorCode.INVALID_REQUEST, False),
        (1301, ErrorCode.CONTENT_POLICY, False),
        (1303, ErrorCode.RATE_LIMITED, True),
        (5000, ErrorCode.PROVIDER_UNAVAILABLE, True),
    ],
)
def test_kling_business_codes(code: int, expected: ErrorCode, retryable: bool) -> None:
    assert kling_error_code(code) == (expected, retryable)


async def test_kling_concurrency_limit_is_retryable_and_shape_less_answers_are_bad() -> None:
    busy = await adapter(
        TuziKlingAdapter, reply(429, {"code": 1303, "message": "parallel task over limit"})
    ).dispatch(GEN)
    shapeless = await adapter(TuziKlingAdapter, reply(200, {"hello": "world"})).dispatch(GEN)
    assert busy.error is not None
    assert busy.error.code is ErrorCode.RATE_LIMITED
    assert busy.error.retryable
    assert shapeless.error is not None
    assert shapeless.error.code is ErrorCode.PROVIDER_BAD_RESPONSE


async def test_kling_video_url_is_found_where_relay_versions_put_it() -> None:
    for body in (
        {"id": "t", "status": "completed", "video_url": "https://v/1.mp4"},
        {"id": "t", "status": "completed", "output": {"video_url": "https://v/1.mp4"}},
        {"task_id": "t", "status": "completed", "metadata": {"url": "https://v/1.mp4"}},
    ):
        result = await adapter(TuziKlingAdapter, reply(200, body), output=OutputType.VIDEO).check_status(
            "text2video:t"
        )
        assert result.outcome is Outcome.SUCCESS
        assert result.results[0].url == "https://v/1.mp4"


async def test_midjourney_task_without_status_is_pending_and_grid_only_is_one_image() -> None:
    pending = await adapter(TuziMidjourneyAdapter, reply(200, {"id": "1", "status": ""})).check_status("1")
    grid = await adapter(
        TuziMidjourneyAdapter, reply(200, {"id": "1", "status": "SUCCESS", "imageUrl": "https://g.png"})
    ).check_status("1")
    gone = await adapter(TuziMidjourneyAdapter, reply(200, b"null")).check_status("1")
    assert pending.outcome is Outcome.PROCESSING
    assert [r.url for r in grid.results] == ["https://g.png"]
    assert gone.error is not None
    assert gone.error.code is ErrorCode.NOT_FOUND


async def test_midjourney_numeric_task_id_is_coerced_to_text() -> None:
    result = await adapter(
        TuziMidjourneyAdapter, reply(200, {"code": 1, "description": "ok", "result": 1730621718151844})
    ).dispatch(GEN)
    assert result.provider_task_id == "1730621718151844"


async def test_elevenlabs_x_ratelimit_reset_and_validation_list() -> None:
    import time

    limited = await adapter(
        ElevenLabsTTSAdapter,
        reply(
            429,
            {"detail": {"status": "rate_limited", "message": "slow down"}},
            {"x-ratelimit-reset": str(time.time() + 30)},
        ),
        {"voice_id": "v"},
    ).dispatch(GEN)
    invalid = await adapter(
        ElevenLabsTTSAdapter,
        reply(422, {"detail": [{"loc": ["body", "text"], "msg": "Field required", "type": "missing"}]}),
        {"voice_id": "v"},
    ).dispatch(GEN)
    assert limited.error is not None
    assert limited.error.retry_after is not None
    assert 25 < limited.error.retry_after <= 30
    assert invalid.error is not None
    assert "body.text: Field required" in invalid.error.message


async def test_pollo_flat_answer_and_unknown_code_in_a_200() -> None:
    flat = await adapter(
        PolloGenerationAdapter, reply(200, {"taskId": "t9", "status": "waiting"}), {"path": "a/b"}
    ).dispatch(GEN)
    odd = await adapter(
        PolloGenerationAdapter, reply(200, {"code": "WEIRD", "message": "?"}), {"path": "a/b"}
    ).dispatch(GEN)
    assert flat.provider_task_id == "t9"
    assert odd.error is not None
    assert odd.error.code is ErrorCode.PROVIDER_BAD_RESPONSE
    assert not odd.error.retryable


async def test_pollo_generations_aggregate() -> None:
    def status(*states: str) -> dict[str, Any]:
        return {
            "code": "SUCCESS",
            "data": {
                "taskId": "t",
                "credit": 12.5,
                "generations": [
                    {
                        "id": str(i),
                        "status": s,
                        "url": f"https://v/{i}.mp4" if s == "succeed" else "",
                        "failMsg": "bad" if s == "failed" else "",
                        "mediaType": "video",
                    }
                    for i, s in enumerate(states)
                ],
            },
        }

    half = await adapter(PolloGenerationAdapter, reply(200, status("succeed", "processing"))).check_status(
        "t"
    )
    failed = await adapter(PolloGenerationAdapter, reply(200, status("succeed", "failed"))).check_status("t")
    done = await adapter(PolloGenerationAdapter, reply(200, status("succeed", "succeed"))).check_status("t")
    assert half.outcome is Outcome.PROCESSING
    assert half.progress == 0.5
    assert failed.error is not None
    assert failed.error.code is ErrorCode.GENERATION_FAILED
    assert done.outcome is Outcome.SUCCESS
    assert len(done.results) == 2
    assert done.cost is not None
    assert done.cost.amount == 12.5
