"""The three engines: a job's checked request in, finished files in the output folder out.

Pillow work runs in a thread and programs run as subprocesses, so the event loop stays free.
Files are written in the job's work folder and moved into the output folder when complete: a
file that can be served is always whole.
"""

from __future__ import annotations

import asyncio
import os
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from aigen.providers.local import artwork, motion
from aigen.providers.local.models import (
    MODELS,
    SEED_MAX,
    ImageSettings,
    Kind,
    image_settings,
    speech_settings,
    video_settings,
)
from aigen.providers.local.process import Progress, ToolError, run_program
from aigen.providers.local.tools import ESPEAK, FFMPEG, Toolbox

CONTENT_TYPES = {"png": "image/png", "mp4": "video/mp4", "mp3": "audio/mpeg", "wav": "audio/wav"}


class EngineError(RuntimeError):
    """A job that cannot be rendered; the message is shown to the person who asked."""


@dataclass(frozen=True)
class RenderRequest:
    model: str
    prompt: str
    number_of_outputs: int
    parameters: Mapping[str, Any]  # checked, defaults applied
    inputs: Sequence[Path] = ()  # decoded input images, in order


@dataclass(frozen=True)
class Produced:
    name: str  # file name inside the output folder
    content_type: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workspace:
    job_id: str
    work_dir: Path  # scratch space of this job
    files_dir: Path  # where finished files are served from
    tools: Toolbox
    time_limit: float  # seconds one program may run
    on_progress: Progress

    def output_name(self, index: int, ext: str) -> str:
        return f"{self.job_id}-{index}.{ext}"

    def publish(self, scratch: Path, index: int, ext: str, extra: Mapping[str, Any]) -> Produced:
        name = self.output_name(index, ext)
        os.replace(scratch, self.files_dir / name)
        return Produced(name, CONTENT_TYPES[ext], extra)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


async def make_images(ws: Workspace, request: RenderRequest) -> list[Produced]:
    base = image_settings(request.parameters)
    produced = []
    for index in range(request.number_of_outputs):
        # Each output is its own picture: the seed steps on, so output i of seed s is the
        # picture a single request with seed s+i would give.
        settings = replace(base, seed=(base.seed + index) % (SEED_MAX + 1))
        png = await asyncio.to_thread(artwork.render_png, request.prompt, settings)
        scratch = ws.work_dir / f"image-{index}.png"
        await asyncio.to_thread(_write, scratch, png)
        extra = {"width": settings.width, "height": settings.height, "seed": settings.seed}
        produced.append(ws.publish(scratch, index, "png", extra))
        ws.on_progress(0.99 * (index + 1) / request.number_of_outputs)
    return produced


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        rate = audio.getframerate()
        return audio.getnframes() / rate if rate else 0.0


async def make_speech(ws: Workspace, request: RenderRequest) -> list[Produced]:
    settings = speech_settings(request.parameters)
    text = ws.work_dir / "text.txt"
    await asyncio.to_thread(_write, text, request.prompt.encode())
    spoken = ws.work_dir / "spoken.wav"
    ws.on_progress(0.05)
    await run_program(
        [
            ws.tools.path(ESPEAK),
            "-b",
            "1",  # the text file is UTF-8
            "-v",
            f"{settings.voice}+{settings.variant}",
            "-s",
            str(settings.speed),
            "-p",
            str(settings.pitch),
            "-f",
            str(text),
            "-w",
            str(spoken),
        ],
        time_limit=ws.time_limit,
    )
    seconds = await asyncio.to_thread(_wav_seconds, spoken)
    if seconds <= 0:
        raise EngineError("the text produced no speech (is it only punctuation?)")
    ws.on_progress(0.5)
    ext = settings.output_format
    codec = ["-c:a", "libmp3lame", "-q:a", "4"] if ext == "mp3" else ["-c:a", "pcm_s16le"]
    encoded = ws.work_dir / f"speech.{ext}"
    await run_program(
        [
            ws.tools.path(FFMPEG),
            *motion.PROGRESS_FLAGS,
            *("-i", str(spoken), *codec, str(encoded)),
        ],
        time_limit=ws.time_limit,
        duration=seconds,
        on_progress=lambda p: ws.on_progress(0.5 + 0.5 * p),
    )
    extra = {"duration_s": round(seconds, 3), "voice": settings.voice, "characters": len(request.prompt)}
    return [ws.publish(encoded, 0, ext, extra)]


def _prepare_source(source: Path, size: tuple[int, int], target: Path) -> None:
    """Crop an input image to the video's shape (covering it, centred) at the working size."""
    with Image.open(source) as opened:
        upright = ImageOps.exif_transpose(opened).convert("RGB")
    ImageOps.fit(upright, size, Image.Resampling.LANCZOS).save(target, format="PNG", compress_level=1)


def _render_source(prompt: str, settings: ImageSettings, target: Path) -> None:
    artwork.render(prompt, settings).save(target, format="PNG", compress_level=1)


async def make_video(ws: Workspace, request: RenderRequest) -> list[Produced]:
    settings = video_settings(request.parameters)
    size = motion.source_size(settings)
    sources: list[Path] = []
    if request.inputs:
        for index, path in enumerate(request.inputs):
            target = ws.work_dir / f"source-{index}.png"
            await asyncio.to_thread(_prepare_source, path, size, target)
            sources.append(target)
            ws.on_progress(0.1 * (index + 1) / len(request.inputs))
    else:
        target = ws.work_dir / "source-0.png"
        frame = ImageSettings(size[0], size[1], settings.style, True, settings.seed, motion.CROP_MARGIN)
        await asyncio.to_thread(_render_source, request.prompt, frame, target)
        sources.append(target)
        ws.on_progress(0.1)
    encoded = ws.work_dir / "video.mp4"
    await run_program(
        motion.ffmpeg_command(ws.tools.path(FFMPEG), sources, encoded, settings),
        time_limit=ws.time_limit,
        duration=settings.frames / settings.fps,
        on_progress=lambda p: ws.on_progress(0.1 + 0.9 * p),
    )
    extra = {
        "width": settings.width,
        "height": settings.height,
        "fps": settings.fps,
        "duration_s": settings.frames / settings.fps,
        "images": len(request.inputs),
    }
    return [ws.publish(encoded, 0, "mp4", extra)]


async def render(ws: Workspace, request: RenderRequest) -> list[Produced]:
    """Run the engine of `request.model`; failures come out as `EngineError`."""
    model = MODELS[request.model]
    reason = ws.tools.unavailable_reason(model.slug)
    if reason is not None:
        raise EngineError(f"{model.slug} is unavailable: {reason}")
    try:
        if model.kind is Kind.IMAGE:
            return await make_images(ws, request)
        if model.kind is Kind.SPEECH:
            return await make_speech(ws, request)
        return await make_video(ws, request)
    except ToolError as exc:
        raise EngineError(str(exc)) from exc
    except OSError as exc:
        raise EngineError(f"cannot read or write a file: {exc}") from exc
