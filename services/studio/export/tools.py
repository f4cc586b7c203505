"""Running ffmpeg and ffprobe as child processes without blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class ToolError(RuntimeError):
    """A media program is missing, failed, or took too long; the message says which and why."""


def program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} is not installed on the studio host (apt-get install ffmpeg)")
    return found


async def run(argv: Sequence[str], *, limit_s: float) -> bytes:
    """Run a program; its stdout, or ToolError with the end of its stderr."""
    process = await asyncio.create_subprocess_exec(
        program(argv[0]),
        *argv[1:],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit_s)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        if isinstance(exc, TimeoutError):
            raise ToolError(f"{argv[0]} did not finish within {limit_s:.0f}s") from None
        raise
    if process.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise ToolError(f"{argv[0]} exited with {process.returncode}: {' | '.join(tail)}")
    return out


@dataclass(frozen=True)
class MediaInfo:
    duration: float | None
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0


async def probe(path: Path, *, limit_s: float = 60.0) -> MediaInfo:
    out = await run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_type,width,height",
            "-of",
            "json",
            str(path),
        ],
        limit_s=limit_s,
    )
    data = json.loads(out or b"{}")
    streams = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    duration = (data.get("format") or {}).get("duration")
    try:
        seconds = float(duration) if duration not in (None, "N/A") else None
    except ValueError:
        seconds = None
    return MediaInfo(
        duration=seconds,
        has_video=video is not None,
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        width=int(video.get("width") or 0) if video else 0,
        height=int(video.get("height") or 0) if video else 0,
    )
