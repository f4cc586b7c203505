"""local-image end to end: adapter → HTTP → Pillow → a PNG served back, byte-identical on repeat."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aigen.providers.types import Outcome, OutputType
from PIL import Image

from tests.integration.providers.local_harness import LocalService, local_service


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[LocalService]:
    async with local_service(tmp_path) as svc:
        yield svc


async def test_png_has_requested_size_and_repeats_byte_for_byte(service: LocalService) -> None:
    params: dict[str, Any] = {"width": 256, "height": 160, "style": "geometric", "seed": 5}
    first = await service.run("local-image", "A lighthouse at dusk, 灯塔", **params)
    second = await service.run("local-image", "A lighthouse at dusk, 灯塔", **params)

    assert first.result.outcome is Outcome.SUCCESS, first.result.error
    assert second.result.outcome is Outcome.SUCCESS, second.result.error
    assert first.result.provider_task_id != second.result.provider_task_id  # two jobs, one picture
    (item,) = first.result.results
    assert item.type is OutputType.IMAGE
    assert item.content_type == "image/png"
    assert item.url is not None
    assert item.url.startswith(service.url + "/v1/files/")  # absolute, on the service's own address
    png = await service.download(item.url)
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (256, 160))
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 100  # a composition, not a flat fill

    assert second.result.results[0].url is not None
    assert await service.download(second.result.results[0].url) == png


async def test_each_output_is_the_picture_of_the_next_seed(service: LocalService) -> None:
    many = await service.run("local-image", "Harbour lights", outputs=3, width=128, height=96, seed=10)
    single = await service.run("local-image", "Harbour lights", width=128, height=96, seed=11)

    assert many.result.outcome is Outcome.SUCCESS, many.result.error
    pictures = [await service.download(item.url or "") for item in many.result.results]
    assert len(pictures) == 3
    assert len(set(pictures)) == 3
    assert [item.extra["seed"] for item in many.result.results] == [10, 11, 12]
    assert all(Image.open(io.BytesIO(p)).size == (128, 96) for p in pictures)
    assert await service.download(single.result.results[0].url or "") == pictures[1]


async def test_prompt_style_and_seed_each_change_the_picture(service: LocalService) -> None:
    async def png(prompt: str, **params: Any) -> bytes:
        done = await service.run("local-image", prompt, width=96, height=96, **params)
        assert done.result.outcome is Outcome.SUCCESS, done.result.error
        return await service.download(done.result.results[0].url or "")

    base = await png("a cat", style="waves", seed=1)
    assert await png("a dog", style="waves", seed=1) != base
    assert await png("a cat", style="bokeh", seed=1) != base
    assert await png("a cat", style="waves", seed=2) != base
    assert await png("a cat", style="waves", seed=1, show_text=False) != base
