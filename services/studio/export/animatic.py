"""The animatic: each shot's chosen picture held (a still) or trimmed and padded (a clip) to the
shot's duration, in order, at one resolution and frame rate, with each shot's chosen sound under
it (silence where a shot has none). One ffmpeg filter graph does it all, so cuts are frame-exact
and the sound never drifts from the picture."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path

from services.studio.domain import ExportPlan, ExportSpec, MediaType
from services.studio.export import tools

SAMPLE_RATE = 48_000


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def animatic_command(
    plan: ExportPlan, media: Mapping[uuid.UUID, Path], spec: ExportSpec, out: Path
) -> list[str]:
    """The ffmpeg command line; `media` maps each chosen frame id to its local file (stills as PNG)."""
    w, h, fps = spec.width, spec.height, spec.fps
    fit = (
        f"scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
        f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps={fps},format=yuv420p"
    )
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    graph: list[str] = []
    segments: list[str] = []
    index = 0
    for i, cut in enumerate(plan.cuts):
        d = _seconds(cut.duration)
        picture = str(media[cut.picture.id])
        if cut.picture.media_type is MediaType.VIDEO:
            args += ["-i", picture]
            graph.append(
                f"[{index}:v:0]{fit},tpad=stop_mode=clone:stop_duration={d},trim=duration={d},setpts=PTS-STARTPTS[v{i}]"
            )
        else:
            args += ["-loop", "1", "-framerate", str(fps), "-t", d, "-i", picture]
            graph.append(f"[{index}:v:0]{fit},trim=duration={d},setpts=PTS-STARTPTS[v{i}]")
        index += 1
        segment = f"[v{i}]"
        if plan.has_audio:
            if cut.audio is not None:
                args += ["-i", str(media[cut.audio.id])]
                graph.append(
                    f"[{index}:a:0]aresample={SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,"
                    f"apad,atrim=duration={d},asetpts=PTS-STARTPTS[a{i}]"
                )
                index += 1
            else:
                graph.append(
                    f"anullsrc=r={SAMPLE_RATE}:cl=stereo,atrim=duration={d},asetpts=PTS-STARTPTS[a{i}]"
                )
            segment += f"[a{i}]"
        segments.append(segment)
    audio = 1 if plan.has_audio else 0
    graph.append("".join(segments) + f"concat=n={len(plan.cuts)}:v=1:a={audio}[v]" + ("[a]" if audio else ""))
    args += ["-filter_complex", ";".join(graph), "-map", "[v]"]
    if audio:
        args += ["-map", "[a]", "-c:a", "aac", "-b:a", "160k", "-ar", str(SAMPLE_RATE)]
    args += [
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-r", str(fps),
        "-movflags", "+faststart", str(out),
    ]  # fmt: skip
    return args


async def render_animatic(
    plan: ExportPlan, media: Mapping[uuid.UUID, Path], spec: ExportSpec, out: Path
) -> Path:
    # Encoding runs at a few times real time on a small machine; allow for long episodes.
    await tools.run(animatic_command(plan, media, spec, out), limit_s=max(120.0, plan.duration * 10))
    return out
