"""Kie adapters send exactly the documented request for every model in kie.yaml."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aigen.providers.base import make_http_client
from aigen.providers.types import ErrorCode, GenerationRequest, Outcome
from aigen.simulator.base import media_bytes
from aigen.simulator.serving import serve_asgi

from tests.integration.providers.kie_harness import (
    API_KEY,
    CALLABLE,
    MODELS,
    PROMPT,
    SORA_LINK,
    FakeHost,
    adapter_for,
    image_url,
    png_data_url,
    sample_request,
)

P = PROMPT
I0 = "<input image 0>"
PARENT = "<parent task>"
MARKET = "/api/v1/jobs/createTask"


def market(model: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return MARKET, {"model": model, "input": fields}


# The documented wire form of each model with its field defaults (kie.md sections 3 to 8).
EXPECTED: dict[str, tuple[str, dict[str, Any]]] = {
    "kie-4o-image": (
        "/api/v1/gpt4o-image/generate",
        {
            "prompt": P,
            "size": "1:1",
            "isEnhance": False,
            "enableFallback": False,
            "fallbackModel": "FLUX_MAX",
            "nVariants": 1,
        },
    ),
    "kie-flux-kontext": (
        "/api/v1/flux/kontext/generate",
        {
            "prompt": P,
            "model": "flux-kontext-pro",
            "aspectRatio": "16:9",
            "outputFormat": "jpeg",
            "enableTranslation": True,
            "promptUpsampling": False,
            "safetyTolerance": 2,
        },
    ),
    "kie-midjourney": (
        "/api/v1/mj/generate",
        {
            "prompt": P,
            "taskType": "mj_txt2img",
            "speed": "fast",
            "aspectRatio": "1:1",
            "version": "7",
            "stylization": 100,
            "weirdness": 0,
            "variety": 0,
            "enableTranslation": False,
        },
    ),
    "kie-sora-2": market(
        "sora-2-text-to-video", prompt=P, aspect_ratio="landscape", n_frames="10", remove_watermark=True
    ),
    "kie-sora-2-image-to-video": market(
        "sora-2-image-to-video",
        prompt=P,
        image_urls=[I0],
        aspect_ratio="landscape",
        n_frames="10",
        remove_watermark=True,
    ),
    "kie-sora-2-pro": market(
        "sora-2-pro-text-to-video",
        prompt=P,
        aspect_ratio="landscape",
        n_frames="10",
        size="standard",
        remove_watermark=True,
    ),
    "kie-sora-2-pro-image-to-video": market(
        "sora-2-pro-image-to-video",
        prompt=P,
        image_urls=[I0],
        aspect_ratio="landscape",
        n_frames="10",
        size="standard",
        remove_watermark=True,
    ),
    "kie-veo-3": (
        "/api/v1/veo/generate",
        {"prompt": P, "model": "veo3_fast", "aspectRatio": "16:9", "enableTranslation": True},
    ),
    "kie-veo-3-1": (
        "/api/v1/veo/generate",
        {
            "prompt": P,
            "model": "veo3_fast",
            "aspectRatio": "16:9",
            "resolution": "720p",
            "duration": 8,
            "enableTranslation": True,
        },
    ),
    "kie-veo-3-1-extend": ("/api/v1/veo/extend", {"prompt": P, "taskId": PARENT, "model": "fast"}),
    "kie-nano-banana": market("google/nano-banana", prompt=P, aspect_ratio="1:1", output_format="png"),
    "kie-nano-banana-edit": market(
        "google/nano-banana-edit", prompt=P, image_urls=[I0], aspect_ratio="1:1", output_format="png"
    ),
    "kie-nano-banana-upscale": market("nano-banana-upscale", image=I0, scale=2, face_enhance=False),
    "kie-seedream-v4": market(
        "bytedance/seedream-v4-text-to-image",
        prompt=P,
        image_size="square_hd",
        image_resolution="1K",
        max_images=1,
    ),
    "kie-seedream-v4-edit": market(
        "bytedance/seedream-v4-edit",
        prompt=P,
        image_urls=[I0],
        image_size="square_hd",
        image_resolution="1K",
        max_images=1,
    ),
    "kie-qwen-image-edit": market(
        "qwen/image-edit",
        prompt=P,
        image_url=I0,
        image_size="landscape_4_3",
        num_images="1",
        acceleration="none",
        num_inference_steps=25,
        guidance_scale=4,
        output_format="png",
        enable_safety_checker=True,
    ),
    "kie-sora-watermark-remover": market("sora-watermark-remover", video_url=SORA_LINK),
    "kie-kling-v2-master-image-to-video": market(
        "kling/v2-1-master-image-to-video", prompt=P, image_url=I0, duration="5", cfg_scale=0.5
    ),
    "kie-kling-v2-master-text-to-video": market(
        "kling/v2-1-master-text-to-video", prompt=P, duration="5", aspect_ratio="16:9", cfg_scale=0.5
    ),
    "kie-kling-v2-standard": market(
        "kling/v2-1-standard", prompt=P, image_url=I0, duration="5", cfg_scale=0.5
    ),
    "kie-kling-v2-pro": market("kling/v2-1-pro", prompt=P, image_url=I0, duration="5", cfg_scale=0.5),
    "kie-kling-v2-5-turbo-pro": market(
        "kling/v2-5-turbo-image-to-video-pro", prompt=P, image_url=I0, duration="5", cfg_scale=0.5
    ),
    "kie-kling-v2-5-turbo-text-to-video-pro": market(
        "kling/v2-5-turbo-text-to-video-pro", prompt=P, duration="5", aspect_ratio="16:9", cfg_scale=0.5
    ),
    "kie-wan-2-2-a14b-text-to-video-turbo": market(
        "wan/2-2-a14b-text-to-video-turbo",
        prompt=P,
        resolution="720p",
        aspect_ratio="16:9",
        enable_prompt_expansion=False,
        seed=0,
        acceleration="none",
    ),
    "kie-wan-2-2-a14b-image-to-video-turbo": market(
        "wan/2-2-a14b-image-to-video-turbo",
        prompt=P,
        image_url=I0,
        resolution="720p",
        enable_prompt_expansion=False,
        seed=0,
        acceleration="none",
    ),
    "kie-wan-2-5-text-to-video": market(
        "wan/2-5-text-to-video",
        prompt=P,
        duration="5",
        aspect_ratio="16:9",
        resolution="720p",
        enable_prompt_expansion=False,
    ),
    "kie-wan-2-5-image-to-video": market(
        "wan/2-5-image-to-video",
        prompt=P,
        image_url=I0,
        duration="5",
        resolution="720p",
        enable_prompt_expansion=False,
    ),
    "kie-bytedance-v1-pro-text-to-video": market(
        "bytedance/v1-pro-text-to-video",
        prompt=P,
        aspect_ratio="16:9",
        resolution="720p",
        duration="5",
        camera_fixed=False,
        seed=-1,
        enable_safety_checker=True,
    ),
    "kie-bytedance-v1-pro-image-to-video": market(
        "bytedance/v1-pro-image-to-video",
        prompt=P,
        image_url=I0,
        resolution="720p",
        duration="5",
        camera_fixed=False,
        seed=-1,
        enable_safety_checker=True,
    ),
    "kie-runway": (
        "/api/v1/runway/generate",
        {"prompt": P, "duration": 5, "quality": "720p", "aspectRatio": "16:9", "waterMark": ""},
    ),
    "kie-runway-extend": (
        "/api/v1/runway/extend",
        {"prompt": P, "taskId": PARENT, "quality": "720p", "waterMark": ""},
    ),
}


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


def resolve(value: Any, replacements: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: resolve(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, replacements) for v in value]
    return replacements.get(value, value) if isinstance(value, str) else value


def test_every_callable_model_has_an_expected_request() -> None:
    assert sorted(EXPECTED) == sorted(CALLABLE)


@pytest.mark.parametrize("slug", CALLABLE)
async def test_dispatch_sends_the_documented_request(
    slug: str, host: FakeHost, http: httpx.AsyncClient
) -> None:
    fake = host.install()
    request = sample_request(MODELS[slug], fake, callback_url=host.callback_url)
    result = await adapter_for(slug, fake, http).dispatch(request)

    assert result.outcome is Outcome.PROCESSING, result.error
    assert result.provider_task_id in fake.tasks
    assert len(fake.requests) == 1
    sent = fake.requests[0]
    path, body = EXPECTED[slug]
    replacements = {I0: image_url(fake, 0), PARENT: str(request.parameters.get("taskId", ""))}
    assert (sent.method, sent.path) == ("POST", path)
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {**resolve(body, replacements), "callBackUrl": host.callback_url}


async def test_no_callback_url_is_sent_without_one(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    request = sample_request(MODELS["kie-nano-banana"], fake)
    result = await adapter_for("kie-nano-banana", fake, http).dispatch(request)
    assert result.outcome is Outcome.PROCESSING
    assert "callBackUrl" not in fake.requests[0].json


async def test_outputs_go_to_the_count_parameter(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    adapter = adapter_for("kie-4o-image", fake, http)
    result = await adapter.dispatch(
        GenerationRequest(prompt=P, number_of_outputs=4, parameters={"size": "3:2"})
    )
    assert result.outcome is Outcome.PROCESSING
    assert fake.requests[0].json == {"prompt": P, "size": "3:2", "nVariants": 4}

    seedream = adapter_for("kie-seedream-v4", fake, http)
    await seedream.dispatch(GenerationRequest(prompt=P, number_of_outputs=3))
    assert fake.requests[1].json["input"]["max_images"] == 3


async def test_second_image_becomes_the_end_frame(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    images = [image_url(fake, 0), image_url(fake, 1)]
    result = await adapter_for("kie-kling-v2-pro", fake, http).dispatch(
        GenerationRequest(prompt=P, input_images=images, parameters={"duration": "10"})
    )
    assert result.outcome is Outcome.PROCESSING, result.error
    assert fake.requests[0].json["input"] == {
        "prompt": P,
        "image_url": images[0],
        "tail_image_url": images[1],
        "duration": "10",
    }


async def test_midjourney_with_an_image_runs_image_to_image(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    adapter = adapter_for("kie-midjourney", fake, http)
    params = {"taskType": "mj_txt2img", "speed": "turbo", "videoBatchSize": 2, "motion": "low"}
    result = await adapter.dispatch(
        GenerationRequest(prompt=P, input_images=[image_url(fake, 0)], parameters=params)
    )
    assert result.outcome is Outcome.PROCESSING, result.error
    body = fake.requests[0].json
    assert body["taskType"] == "mj_img2img"
    assert body["fileUrls"] == [image_url(fake, 0)]
    assert "videoBatchSize" not in body
    assert "motion" not in body

    video = {"taskType": "mj_video", "speed": "fast", "videoBatchSize": 2, "motion": "low"}
    await adapter.dispatch(GenerationRequest(prompt=P, input_images=[image_url(fake, 0)], parameters=video))
    body = fake.requests[1].json
    assert "speed" not in body
    assert (body["videoBatchSize"], body["motion"]) == (2, "low")


async def test_data_url_images_are_uploaded_first(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    adapter = adapter_for("kie-nano-banana-edit", fake, http)
    request = GenerationRequest(prompt=P, input_images=[png_data_url(), image_url(fake, 1)])
    result = await adapter.dispatch(request)

    assert result.outcome is Outcome.PROCESSING, result.error
    upload, create = fake.requests
    assert (upload.method, upload.path) == ("POST", "/api/file-base64-upload")
    assert upload.headers["authorization"] == f"Bearer {API_KEY}"
    assert upload.json["base64Data"] == png_data_url()
    assert upload.json["uploadPath"]
    uploaded_url = create.json["input"]["image_urls"][0]
    assert uploaded_url.startswith(fake.base_url + "/uploads/")
    assert create.json["input"]["image_urls"][1] == image_url(fake, 1)
    downloaded = await http.get(uploaded_url)
    assert downloaded.content == media_bytes("png")


async def test_upload_failure_stops_before_the_create(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    fake.queue_error(500, "storage is down", scope="any", http_status=500)
    result = await adapter_for("kie-nano-banana-edit", fake, http).dispatch(
        GenerationRequest(prompt=P, input_images=[png_data_url()])
    )
    assert result.outcome is Outcome.ERROR
    assert result.error is not None
    assert result.error.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert "upload of input_images[0]" in result.error.message
    assert [r.path for r in fake.requests] == ["/api/file-base64-upload"]


def _gif_data_url() -> str:
    return "data:image/gif;base64," + base64.b64encode(b"GIF89a" + b"\x00" * 20).decode()


@pytest.mark.parametrize(
    ("slug", "images", "reason"),
    [
        ("kie-nano-banana-edit", [], "at least 1"),
        ("kie-qwen-image-edit", ["https://example.org/a.png", "https://example.org/b.png"], "at most 1"),
        ("kie-nano-banana-edit", ["ftp://example.org/a.png"], "http(s) URL"),
        ("kie-nano-banana-edit", ["data:image/png;base64,not base64!"], "base64"),
        ("kie-nano-banana-edit", ["data:text/plain;base64,aGVsbG8="], "not a PNG"),
        ("kie-kling-v2-standard", [_gif_data_url()], "not accepted"),
        ("kie-nano-banana", ["https://example.org/a.png"], "at most 0"),
    ],
)
async def test_bad_input_images_are_refused_before_any_call(
    slug: str, images: list[str], reason: str, host: FakeHost, http: httpx.AsyncClient
) -> None:
    fake = host.install()
    result = await adapter_for(slug, fake, http).dispatch(GenerationRequest(prompt=P, input_images=images))
    assert result.outcome is Outcome.ERROR
    assert result.error is not None
    assert result.error.code is ErrorCode.INVALID_INPUT_IMAGE
    assert not result.error.retryable
    assert reason in result.error.message
    assert fake.requests == []


async def test_plain_sora_is_unsupported_and_calls_nothing(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    adapter = adapter_for("kie-sora", fake, http)
    result = await adapter.dispatch(GenerationRequest(prompt=P))
    assert result.outcome is Outcome.ERROR
    assert result.error is not None
    assert result.error.code is ErrorCode.UNSUPPORTED
    assert "Sora 2" in result.error.message
    status = await adapter.check_status("anything")
    assert status.error is not None
    assert status.error.code is ErrorCode.UNSUPPORTED
    assert fake.requests == []


async def test_missing_key_calls_nothing(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    adapter = adapter_for("kie-runway", fake, http, api_key="")
    result = await adapter.dispatch(
        GenerationRequest(prompt=P, parameters={"duration": 5, "quality": "720p"})
    )
    assert result.error is not None
    assert result.error.code is ErrorCode.MISSING_API_KEY
    assert "AI_PROVIDER_KIE_API_KEY" in result.error.message
    assert fake.requests == []
