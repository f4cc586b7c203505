"""Kie status checks walk each family's state machine to success (real media) and to failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from aigen.providers.base import make_http_client
from aigen.providers.types import ErrorCode, GenerationRequest, Outcome, OutputType, ProviderCost
from aigen.simulator.serving import serve_asgi

from tests.integration.providers.kie_harness import (
    CALLABLE,
    MODELS,
    PROMPT,
    FakeHost,
    adapter_for,
    download,
    image_url,
    is_real_media,
    poll_until_done,
    sample_request,
)

# Each family's words for a task that is still running, in the order the fake walks them.
RUNNING_STATES = {
    "KieImageAdapter": ["GENERATING"] * 3,
    "KieRunwayAdapter": ["wait", "queueing", "generating"],
    "KieRunwayExtendAdapter": ["wait", "queueing", "generating"],
}
SUCCESS_FLAG_FAMILIES = {
    "KieFluxKontextAdapter",
    "KieMidjourneyAdapter",
    "KieVeo3Adapter",
    "KieVeo31Adapter",
    "KieVeo31ExtendAdapter",
}
MARKET_CREDITS = {  # what the fake charges (kie.md §10), reported back as consumeCredits
    "kie-nano-banana": 4,
    "kie-kling-v2-master-image-to-video": 160,
    "kie-seedream-v4": 3.5,
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


def running_states(adapter_name: str) -> list[str]:
    if adapter_name in RUNNING_STATES:
        return RUNNING_STATES[adapter_name]
    if adapter_name in SUCCESS_FLAG_FAMILIES:
        return ["successFlag=0"] * 3
    return ["waiting", "queuing", "generating"]


@pytest.mark.parametrize("slug", CALLABLE)
async def test_status_walks_to_success_with_real_media(
    slug: str, host: FakeHost, http: httpx.AsyncClient
) -> None:
    model = MODELS[slug]
    fake = host.install()
    fake.script.polls_to_finish = 4
    adapter = adapter_for(slug, fake, http)
    created = await adapter.dispatch(sample_request(model, fake))
    assert created.provider_task_id is not None, created.error

    seen = await poll_until_done(adapter, created.provider_task_id)

    assert [r.outcome for r in seen] == [Outcome.PROCESSING] * 3 + [Outcome.SUCCESS]
    assert [r.provider_state for r in seen[:3]] == running_states(model.adapter)
    done = seen[-1]
    assert done.provider_task_id == created.provider_task_id
    assert done.progress == 1.0
    expected_count = 4 if slug == "kie-midjourney" else model.outputs.default
    assert len(done.results) == expected_count
    for item in done.results:
        assert item.type is OutputType(model.output_type)
        assert item.url is not None
        assert item.url.startswith(fake.base_url)
        data, content_type = await download(http, item.url)
        assert is_real_media(data, item.type), item.url
        assert content_type.split("/")[0] == item.type.value.lower()
    if model.adapter.startswith("KieRunway"):
        assert done.results[0].extra["cover_url"].endswith(".png")
    status_paths = {r.path for r in fake.requests if r.method == "GET"}
    assert len(status_paths) == 1
    assert all(r.query == {"taskId": created.provider_task_id} for r in fake.requests if r.method == "GET")


@pytest.mark.parametrize("slug", CALLABLE)
async def test_status_surfaces_the_provider_failure(
    slug: str, host: FakeHost, http: httpx.AsyncClient
) -> None:
    fake = host.install()
    fake.script.outcome = "fail"
    fake.script.fail_message = "the render node ran out of memory"
    adapter = adapter_for(slug, fake, http)
    created = await adapter.dispatch(sample_request(MODELS[slug], fake))
    assert created.provider_task_id is not None, created.error

    failed = (await poll_until_done(adapter, created.provider_task_id))[-1]

    assert failed.outcome is Outcome.ERROR
    assert failed.provider_task_id == created.provider_task_id
    assert failed.error is not None
    assert failed.error.code is ErrorCode.GENERATION_FAILED
    assert "the render node ran out of memory" in failed.error.message
    assert not failed.error.retryable


@pytest.mark.parametrize(
    "slug",
    ["kie-nano-banana", "kie-4o-image", "kie-flux-kontext", "kie-midjourney", "kie-veo-3-1", "kie-runway"],
)
async def test_content_policy_failures_are_classified(
    slug: str, host: FakeHost, http: httpx.AsyncClient
) -> None:
    fake = host.install()
    fake.faults.add("content_policy", scope="create")
    adapter = adapter_for(slug, fake, http)
    created = await adapter.dispatch(sample_request(MODELS[slug], fake))
    assert created.provider_task_id is not None, created.error

    failed = (await poll_until_done(adapter, created.provider_task_id))[-1]

    assert failed.error is not None
    assert failed.error.code is ErrorCode.CONTENT_POLICY
    assert not failed.error.retryable


async def test_4o_progress_rises(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    fake.script.polls_to_finish = 4
    adapter = adapter_for("kie-4o-image", fake, http)
    created = await adapter.dispatch(GenerationRequest(prompt=PROMPT, parameters={"size": "1:1"}))
    assert created.provider_task_id is not None
    seen = await poll_until_done(adapter, created.provider_task_id)
    assert [r.progress for r in seen] == [0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize(("slug", "credits"), MARKET_CREDITS.items())
async def test_market_success_reports_credits(
    slug: str, credits: float, host: FakeHost, http: httpx.AsyncClient
) -> None:
    fake = host.install()
    adapter = adapter_for(slug, fake, http)
    created = await adapter.dispatch(sample_request(MODELS[slug], fake))
    assert created.provider_task_id is not None
    done = (await poll_until_done(adapter, created.provider_task_id))[-1]
    assert done.cost == ProviderCost(credits, "credits")


async def test_veo_result_urls_given_as_a_string(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    fake.veo_urls_as_string = True
    adapter = adapter_for("kie-veo-3-1", fake, http)
    created = await adapter.dispatch(sample_request(MODELS["kie-veo-3-1"], fake))
    assert created.provider_task_id is not None
    done = (await poll_until_done(adapter, created.provider_task_id))[-1]
    assert done.outcome is Outcome.SUCCESS
    assert [r.url for r in done.results] == [fake.media_url("mp4", f"{created.provider_task_id}_0")]
    assert done.results[0].extra["resolution"] == "720p"


async def test_veo_extension_returns_the_whole_clip(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    adapter = adapter_for("kie-veo-3-1-extend", fake, http)
    created = await adapter.dispatch(sample_request(MODELS["kie-veo-3-1-extend"], fake))
    assert created.provider_task_id is not None
    done = (await poll_until_done(adapter, created.provider_task_id))[-1]
    assert [r.url for r in done.results] == [fake.media_url("mp4", f"{created.provider_task_id}_full")]
    assert done.results[0].extra["segment_urls"] == [fake.media_url("mp4", f"{created.provider_task_id}_0")]


async def test_midjourney_video_results_are_videos(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    adapter = adapter_for("kie-midjourney", fake, http)
    params = {"taskType": "mj_video", "videoBatchSize": 2, "motion": "high"}
    created = await adapter.dispatch(
        GenerationRequest(prompt=PROMPT, input_images=[image_url(fake, 0)], parameters=params)
    )
    assert created.provider_task_id is not None, created.error
    done = (await poll_until_done(adapter, created.provider_task_id))[-1]
    assert [r.type for r in done.results] == [OutputType.VIDEO, OutputType.VIDEO]


@pytest.mark.parametrize(
    "slug", ["kie-nano-banana", "kie-4o-image", "kie-veo-3", "kie-runway", "kie-midjourney"]
)
async def test_unknown_task_is_not_found(slug: str, host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    result = await adapter_for(slug, fake, http).check_status("task_does_not_exist")
    assert result.error is not None
    assert result.error.code is ErrorCode.NOT_FOUND
    assert result.provider_task_id == "task_does_not_exist"


async def test_overlapping_checks_of_one_task_are_recorded(host: FakeHost, http: httpx.AsyncClient) -> None:
    fake = host.install()
    fake.script.polls_to_finish = 10
    adapter = adapter_for("kie-nano-banana", fake, http)
    created = await adapter.dispatch(sample_request(MODELS["kie-nano-banana"], fake))
    assert created.provider_task_id is not None
    fake.latency = 0.05
    await asyncio.gather(*(adapter.check_status(created.provider_task_id) for _ in range(3)))
    assert fake.max_overlap[created.provider_task_id] >= 2
