"""Serving the local provider over real HTTP and driving its adapter, for the local provider tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aigen.providers.local import LocalAdapter
from aigen.providers.local.models import MODELS, Kind
from aigen.providers.local.service import create_app
from aigen.providers.types import (
    AdapterResult,
    GenerationRequest,
    ModelConfig,
    Outcome,
    OutputType,
    ProviderConfig,
)
from aigen.simulator.serving import serve_asgi
from PIL import Image, ImageDraw
from starlette.applications import Starlette

OUTPUT_TYPES = {Kind.IMAGE: OutputType.IMAGE, Kind.SPEECH: OutputType.AUDIO, Kind.VIDEO: OutputType.VIDEO}


@dataclass
class Finished:
    result: AdapterResult
    progress: list[float] = field(default_factory=list)  # every progress seen while it ran


@dataclass
class LocalService:
    url: str
    app: Starlette
    http: httpx.AsyncClient

    def adapter(self, slug: str) -> LocalAdapter:
        model = ModelConfig(
            slug=slug,
            adapter_name="LocalAdapter",
            output_type=OUTPUT_TYPES[MODELS[slug].kind] if slug in MODELS else OutputType.IMAGE,
            provider=ProviderConfig("local", self.url),
        )
        return LocalAdapter(model, self.http)

    async def run(
        self,
        slug: str,
        prompt: str = "",
        *,
        images: Sequence[str] = (),
        outputs: int = 1,
        reference: str | None = None,
        timeout: float = 60.0,
        **parameters: Any,
    ) -> Finished:
        """Dispatch, then check status every 20 ms until the job is done."""
        adapter = self.adapter(slug)
        request = GenerationRequest(prompt, tuple(images), outputs, parameters, reference=reference)
        result = await adapter.dispatch(request)
        finished = Finished(result)
        async with asyncio.timeout(timeout):
            while result.outcome is Outcome.PROCESSING:
                assert result.progress is not None
                finished.progress.append(result.progress)
                await asyncio.sleep(0.02)
                assert result.provider_task_id is not None
                result = await adapter.check_status(result.provider_task_id)
        finished.result = result
        return finished

    async def download(self, url: str, target: Path | None = None) -> bytes:
        response = await self.http.get(url)
        assert response.status_code == 200, response.text
        if target is not None:
            target.write_bytes(response.content)
        return response.content


@contextlib.asynccontextmanager
async def local_service(data_dir: Path, **options: Any) -> AsyncIterator[LocalService]:
    app = create_app(data_dir, **options)
    async with serve_asgi(app) as url, httpx.AsyncClient(timeout=30) as http:
        try:
            yield LocalService(url, app, http)
        finally:
            await app.state.runner.close()


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    probe: dict[str, Any] = json.loads(out.stdout)
    return probe


def frame_at(video: Path, seconds: float) -> Image.Image:
    out = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-ss",
            f"{seconds}",
            "-i",
            str(video),
            "-frames:v",
            "1",
            "-f",
            "image2pipe",
            "-c:v",
            "png",
            "-",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return Image.open(io.BytesIO(out.stdout)).convert("RGB")


def picture(size: tuple[int, int], colour: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    """A mostly single-coloured test picture, with a stripe so it is not a flat field."""
    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).rectangle((0, size[1] // 2 - 4, size[0], size[1] // 2 + 4), fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
