"""local-video end to end: real H.264 MP4s of the requested size and duration, with honest progress."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aigen.providers.types import Outcome, OutputType
from PIL import ImageStat

from tests.integration.providers.local_harness import (
    Finished,
    LocalService,
    data_url,
    ffprobe,
    frame_at,
    local_service,
    picture,
)

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 40), (30, 40, 220)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[LocalService]:
    async with local_service(tmp_path / "local") as svc:
        yield svc


async def fetch_video(service: LocalService, done: Finished, tmp_path: Path) -> Path:
    assert done.result.outcome is Outcome.SUCCESS, done.result.error
    (item,) = done.result.results
    assert item.type is OutputType.VIDEO
    assert item.content_type == "video/mp4"
    assert item.url is not None
    target = tmp_path / "out.mp4"
    await service.download(item.url, target)
    return target


def assert_h264(video: Path, size: tuple[int, int], duration: float) -> None:
    probe = ffprobe(video)
    (stream,) = [s for s in probe["streams"] if s["codec_type"] == "video"]
    assert stream["codec_name"] == "h264"
    assert (stream["width"], stream["height"]) == size
    assert stream["pix_fmt"] == "yuv420p"  # what every browser and phone plays
    assert abs(float(probe["format"]["duration"]) - duration) <= 0.2


def dominant(video: Path, seconds: float) -> tuple[float, float, float]:
    r, g, b = ImageStat.Stat(frame_at(video, seconds)).mean
    return r, g, b


async def test_without_images_it_moves_over_a_picture_of_the_prompt(
    service: LocalService, tmp_path: Path
) -> None:
    done = await service.run(
        "local-video", "Snow falling on cedars", duration=1.5, width=320, height=180, fps=12
    )

    video = await fetch_video(service, done, tmp_path)
    assert_h264(video, (320, 180), 1.5)
    assert done.result.results[0].extra["images"] == 0


async def test_one_image_gets_a_pan_at_a_named_resolution(service: LocalService, tmp_path: Path) -> None:
    image = data_url(picture((400, 300), RED))
    done = await service.run(
        "local-video",
        "",
        images=[image],
        duration=2,
        resolution="480p",
        aspect_ratio="1:1",
        motion="pan-right",
    )

    video = await fetch_video(service, done, tmp_path)
    assert_h264(video, (480, 480), 2.0)
    r, g, b = dominant(video, 1.0)
    assert r > 150 > max(g, b)  # the frame shows the input image


async def test_several_images_become_a_cross_faded_slideshow(service: LocalService, tmp_path: Path) -> None:
    # One image arrives as a URL the service downloads (one of its own outputs), two as data URLs.
    drawn = await service.run("local-image", "a green field", width=160, height=90, show_text=False)
    green_url = drawn.result.results[0].url
    assert green_url is not None
    images = [
        data_url(picture((320, 180), RED)),
        green_url,
        data_url(picture((200, 200), BLUE, "JPEG"), "image/jpeg"),
    ]

    done = await service.run(
        "local-video",
        "three shots",
        images=images,
        duration=3,
        width=256,
        height=144,
        fps=12,
        transition="dissolve",
    )

    video = await fetch_video(service, done, tmp_path)
    assert_h264(video, (256, 144), 3.0)
    first, last = dominant(video, 0.1), dominant(video, 2.9)
    assert first[0] > 150 > max(first[1], first[2])  # starts on the red image
    assert last[2] > 150 > max(last[0], last[1])  # ends on the blue one
    assert done.result.results[0].extra["images"] == 3


@pytest.mark.parametrize(("duration", "fps"), [(1, 30), (2.5, 24), (1.3, 25)])
async def test_duration_is_what_was_asked(
    service: LocalService, tmp_path: Path, duration: float, fps: int
) -> None:
    images = [data_url(picture((64, 64), GREEN))] * 2
    done = await service.run(
        "local-video", "", images=images, duration=duration, width=128, height=128, fps=fps
    )

    video = await fetch_video(service, done, tmp_path)
    assert_h264(video, (128, 128), duration)


async def test_progress_rises_from_below_one_to_one(service: LocalService, tmp_path: Path) -> None:
    done = await service.run("local-video", "A slow dawn", duration=6, width=640, height=360, fps=30)

    await fetch_video(service, done, tmp_path)
    seen = done.progress
    assert seen[0] < 1
    assert any(0 < p < 1 for p in seen), seen  # reported while it ran, not only at the ends
    assert seen == sorted(seen), seen  # never goes backwards
    assert done.result.progress == 1.0
