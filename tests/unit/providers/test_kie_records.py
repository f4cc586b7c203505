"""Each Kie family's status records and callbacks, in the shapes the docs show."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from aigen.providers.kie import ADAPTERS
from aigen.providers.kie.adapter import KieAdapter
from aigen.providers.kie.outcome import Phase, TaskView, result_type, to_result
from aigen.providers.kie.parsing import Malformed, url_list
from aigen.providers.types import (
    CallbackRequest,
    ErrorCode,
    ModelConfig,
    Outcome,
    OutputType,
    ProviderConfig,
    ProviderCost,
)


def adapter(name: str, output: OutputType = OutputType.IMAGE) -> KieAdapter:
    model = ModelConfig(
        slug="kie-test",
        adapter_name=name,
        output_type=output,
        provider=ProviderConfig(slug="kie", api_endpoint="https://api.kie.ai", api_key="k"),
        settings={"model": "m"},
    )
    cls = ADAPTERS[name]
    assert issubclass(cls, KieAdapter)
    return cls(model, httpx.AsyncClient())


def callback(body: dict[str, Any]) -> CallbackRequest:
    return CallbackRequest(headers={}, body=json.dumps(body).encode())


# --- market --------------------------------------------------------------------------------------

MARKET_SUCCESS = {
    "taskId": "task_google_1765178615729",
    "model": "google/nano-banana-edit",
    "state": "success",
    "param": '{"model":"google/nano-banana-edit","input":{}}',
    "resultJson": '{"resultUrls":["https://tempfile.aiquickdraw.com/a/out.png"]}',
    "failCode": "",
    "failMsg": "",
    "consumeCredits": 4,
    "createTime": 1698765400000,
}


@pytest.mark.parametrize("state", ["waiting", "queuing", "generating"])
def test_market_running(state: str) -> None:
    view = adapter("KieNanoBananaAdapter").read_record({"taskId": "t", "state": state, "resultJson": ""})
    assert (view.phase, view.state) == (Phase.RUNNING, state)


def test_market_success_reads_the_json_string() -> None:
    view = adapter("KieNanoBananaAdapter").read_record(MARKET_SUCCESS)
    assert view.phase is Phase.SUCCEEDED
    assert view.urls == ["https://tempfile.aiquickdraw.com/a/out.png"]
    assert view.credits == 4


def test_market_failure() -> None:
    view = adapter("KieSora2Adapter").read_record(
        {"state": "fail", "failCode": "500", "failMsg": "Internal server error", "resultJson": None}
    )
    assert (view.phase, view.fail_code, view.fail_message) == (Phase.FAILED, "500", "Internal server error")


@pytest.mark.parametrize(
    "record",
    [
        {"state": "success", "resultJson": "{not json"},
        {"state": "success", "resultJson": '{"resultUrls":[]}'},
        {"state": "success"},
        {"state": "exploded"},
        {"state": "success", "resultJson": '{"resultUrls": [3]}'},
    ],
)
def test_market_garbage_is_malformed(record: dict[str, Any]) -> None:
    with pytest.raises(Malformed):
        adapter("KieNanoBananaAdapter").read_record(record)


def test_market_callbacks() -> None:
    kling = adapter("KieKlingV25TurboProAdapter", OutputType.VIDEO)
    ok = kling.parse_callback(
        callback(
            {
                "code": 200,
                "msg": "Playground task completed successfully.",
                "data": {
                    "taskId": "e98962",
                    "model": "kling/v2-5-turbo-image-to-video-pro",
                    "state": "success",
                    "resultJson": '{"resultUrls":["https://x/out.mp4"]}',
                    "failCode": None,
                    "failMsg": None,
                    "costTime": 8,
                    "consumeCredits": 100,
                    "remainedCredits": 2510330,
                },
            }
        )
    )
    assert ok.outcome is Outcome.SUCCESS
    assert ok.provider_task_id == "e98962"
    assert [(r.type, r.url) for r in ok.results] == [(OutputType.VIDEO, "https://x/out.mp4")]
    assert ok.cost == ProviderCost(100, "credits")
    failed = kling.parse_callback(
        callback(
            {
                "code": 501,
                "msg": "Playground task failed.",
                "data": {
                    "taskId": "bd3a37",
                    "state": "fail",
                    "failCode": "500",
                    "failMsg": "Internal server error",
                },
            }
        )
    )
    assert failed.error is not None
    assert failed.error.code is ErrorCode.GENERATION_FAILED
    assert failed.cost is None


# --- 4o Image ------------------------------------------------------------------------------------


def test_4o_progress_is_a_string() -> None:
    view = adapter("KieImageAdapter").read_record(
        {"taskId": "t", "successFlag": 0, "status": "GENERATING", "progress": "0.48", "response": None}
    )
    assert (view.phase, view.progress, view.state) == (Phase.RUNNING, 0.48, "GENERATING")


@pytest.mark.parametrize("key", ["resultUrls", "result_urls"])
def test_4o_success_either_spelling(key: str) -> None:
    view = adapter("KieImageAdapter").read_record(
        {"successFlag": 1, "status": "SUCCESS", "response": {key: ["https://x/1.png", "https://x/2.png"]}}
    )
    assert view.urls == ["https://x/1.png", "https://x/2.png"]


def test_4o_policy_failure() -> None:
    result = to_result(
        adapter("KieImageAdapter").read_record(
            {
                "successFlag": 2,
                "status": "GENERATE_FAILED",
                "errorCode": 400,
                "errorMessage": "content policy violation",
            }
        ),
        "t",
        OutputType.IMAGE,
    )
    assert result.error is not None
    assert result.error.code is ErrorCode.CONTENT_POLICY


def test_4o_callbacks() -> None:
    a = adapter("KieImageAdapter")
    ok = a.parse_callback(
        callback(
            {
                "code": 200,
                "msg": "success",
                "data": {"taskId": "t", "info": {"result_urls": ["https://x/a.png"]}},
            }
        )
    )
    assert [r.url for r in ok.results] == ["https://x/a.png"]
    refused = a.parse_callback(
        callback(
            {
                "code": 400,
                "msg": "Your content was flagged by OpenAI's content policy",
                "data": {"taskId": "t", "info": None},
            }
        )
    )
    assert refused.error is not None
    assert refused.error.code is ErrorCode.CONTENT_POLICY
    fetch = a.parse_callback(
        callback({"code": 451, "msg": "Failed to download filesUrl", "data": {"taskId": "t"}})
    )
    assert fetch.error is not None
    assert fetch.error.code is ErrorCode.INVALID_INPUT_IMAGE


# --- Flux, Midjourney ----------------------------------------------------------------------------


def test_flux_prefers_kies_copy() -> None:
    view = adapter("KieFluxKontextAdapter").read_record(
        {
            "successFlag": 1,
            "response": {
                "originImageUrl": "https://bfl/origin.jpg",
                "resultImageUrl": "https://kie/result.jpg",
            },
        }
    )
    assert view.urls == ["https://kie/result.jpg"]
    assert view.extra == {"origin_url": "https://bfl/origin.jpg"}


def test_flux_top_level_fallback_and_callback() -> None:
    a = adapter("KieFluxKontextAdapter")
    assert a.read_record({"successFlag": 1, "response": None, "resultImageUrl": "https://k/r.png"}).urls == [
        "https://k/r.png"
    ]
    ok = a.parse_callback(
        callback(
            {
                "code": 200,
                "msg": "BFL image generated successfully",
                "data": {
                    "taskId": "t",
                    "info": {"originImageUrl": "https://o", "resultImageUrl": "https://r.png"},
                },
            }
        )
    )
    assert [r.url for r in ok.results] == ["https://r.png"]
    failed = a.parse_callback(
        callback({"code": 501, "msg": "Generation failed", "data": {"taskId": "t", "info": {}}})
    )
    assert failed.error is not None
    assert failed.error.provider_code == "501"


def test_midjourney_wraps_each_url() -> None:
    view = adapter("KieMidjourneyAdapter").read_record(
        {
            "taskType": "mj_txt2img",
            "successFlag": 1,
            "resultInfoJson": {
                "resultUrls": [{"resultUrl": "https://t/a_0_0.jpeg"}, {"resultUrl": "https://t/a_0_1.jpeg"}]
            },
        }
    )
    assert view.urls == ["https://t/a_0_0.jpeg", "https://t/a_0_1.jpeg"]
    flat = adapter("KieMidjourneyAdapter").parse_callback(
        callback(
            {
                "code": 200,
                "msg": "success",
                "data": {"taskId": "t", "resultUrls": ["https://a.png", "https://b.png"]},
            }
        )
    )
    assert len(flat.results) == 2


@pytest.mark.parametrize("flag", [2, 3])
def test_success_flag_failures(flag: int) -> None:
    for name in ("KieFluxKontextAdapter", "KieMidjourneyAdapter", "KieVeo31Adapter", "KieImageAdapter"):
        view = adapter(name).read_record({"successFlag": flag, "errorCode": 500, "errorMessage": "boom"})
        assert (view.phase, view.fail_message, view.fail_code) == (Phase.FAILED, "boom", "500")


@pytest.mark.parametrize(
    "name", ["KieFluxKontextAdapter", "KieMidjourneyAdapter", "KieVeo3Adapter", "KieImageAdapter"]
)
def test_unknown_success_flag_is_malformed(name: str) -> None:
    with pytest.raises(Malformed):
        adapter(name).read_record({"successFlag": 9})


# --- Veo, Runway ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "urls",
    [["http://x/video1.mp4"], '["http://x/video1.mp4"]', "[http://x/video1.mp4]", "http://x/video1.mp4"],
)
def test_veo_result_urls_any_shape(urls: Any) -> None:
    view = adapter("KieVeo3Adapter", OutputType.VIDEO).read_record(
        {"successFlag": 1, "response": {"resultUrls": urls, "resolution": "1080p"}}
    )
    assert view.urls == ["http://x/video1.mp4"]
    assert view.extra == {"resolution": "1080p"}


def test_veo_callbacks() -> None:
    a = adapter("KieVeo31Adapter", OutputType.VIDEO)
    ok = a.parse_callback(
        callback(
            {
                "code": 200,
                "msg": "Veo3.1 video generated successfully.",
                "data": {
                    "taskId": "veo_task_1",
                    "info": {
                        "resultUrls": ["https://v/1.mp4"],
                        "originUrls": ["https://o"],
                        "resolution": "1080p",
                    },
                    "fallbackFlag": False,
                },
            }
        )
    )
    assert [(r.type, r.url) for r in ok.results] == [(OutputType.VIDEO, "https://v/1.mp4")]
    rejected = a.parse_callback(
        callback({"code": 422, "msg": "Your request was rejected by Flow", "data": {"taskId": "v"}})
    )
    assert rejected.error is not None
    assert rejected.error.code is ErrorCode.GENERATION_FAILED


@pytest.mark.parametrize("state", ["wait", "queueing", "generating"])
def test_runway_running(state: str) -> None:
    assert adapter("KieRunwayAdapter", OutputType.VIDEO).read_record({"state": state}).phase is Phase.RUNNING


def test_runway_success_failure_and_expiry() -> None:
    a = adapter("KieRunwayAdapter", OutputType.VIDEO)
    view = a.read_record(
        {
            "state": "success",
            "videoInfo": {"videoId": "v", "videoUrl": "https://k/x.mp4", "imageUrl": "https://m/x.png"},
            "expireFlag": 0,
        }
    )
    assert (view.urls, view.extra) == (["https://k/x.mp4"], {"cover_url": "https://m/x.png"})
    assert (
        a.read_record({"state": "success", "videoInfo": {"videoUrl": "https://k"}, "expireFlag": 1}).phase
        is Phase.FAILED
    )
    failed = a.read_record({"state": "fail", "failCode": 400, "failMsg": "Inappropriate content detected"})
    error = to_result(failed, "t", OutputType.VIDEO).error
    assert error is not None
    assert error.code is ErrorCode.CONTENT_POLICY


def test_runway_callbacks_are_snake_case() -> None:
    a = adapter("KieRunwayExtendAdapter", OutputType.VIDEO)
    ok = a.parse_callback(
        callback(
            {
                "code": 200,
                "msg": "All generated successfully.",
                "data": {
                    "task_id": "ee60",
                    "video_id": "48",
                    "video_url": "https://k/x.mp4",
                    "image_url": "https://m/x.png",
                },
            }
        )
    )
    assert ok.provider_task_id == "ee60"
    assert ok.results[0].extra == {"cover_url": "https://m/x.png"}
    failed = a.parse_callback(
        callback({"code": 400, "msg": "prompt exceeds 2048 characters", "data": {"task_id": "ee60"}})
    )
    assert failed.error is not None
    assert failed.provider_task_id == "ee60"


# --- shared --------------------------------------------------------------------------------------


def test_url_list_shapes() -> None:
    assert url_list(None, "x") == []
    assert url_list("", "x") == []
    assert url_list(["a", " b "], "x") == ["a", "b"]
    assert url_list("['a', 'b']", "x") == ["a", "b"]
    with pytest.raises(Malformed):
        url_list(42, "x")


def test_result_types_follow_the_extension() -> None:
    assert result_type("https://x/a.mp4?sig=1", OutputType.IMAGE) == (OutputType.VIDEO, "video/mp4")
    assert result_type("https://x/a.jpeg", OutputType.VIDEO) == (OutputType.IMAGE, "image/jpeg")
    assert result_type("https://x/download", OutputType.VIDEO) == (OutputType.VIDEO, None)


def test_running_view_becomes_processing() -> None:
    result = to_result(TaskView(Phase.RUNNING, "generating", progress=1.7), "t", OutputType.IMAGE)
    assert (result.outcome, result.progress, result.provider_task_id) == (Outcome.PROCESSING, 1.0, "t")
