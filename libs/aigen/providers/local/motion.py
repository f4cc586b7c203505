"""ffmpeg filter graphs for pan/zoom (Ken Burns) clips joined by cross-fades (pure: no I/O).

Each source image becomes one clip through `zoompan`; clips overlap by a transition and are
joined with `xfade`. Clip lengths are whole frames chosen so the joined video holds at least the
requested number of frames; the encoder then stops at exactly that many, which makes the
duration exact to one frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aigen.providers.local.models import VideoSettings

ZOOM = 1.25  # how far zoom-in/zoom-out travel
PAN_ZOOM = 1.2  # panning needs a margin to travel across
# The most of one side any motion crops away: a pan ends with the whole margin on one side.
CROP_MARGIN = max(1 - 1 / PAN_ZOOM, (1 - 1 / ZOOM) / 2)
MAX_TRANSITION_S = 1.0
# Sources are prepared larger than the output: zoompan crops at whole source pixels, and finer
# pixels make the motion smooth instead of stepping.
SOURCE_SCALE = 2.0
MAX_SOURCE_SIDE = 3840

# Quiet, with machine-readable progress on stdout four times a second.
PROGRESS_FLAGS = (
    *("-hide_banner", "-nostdin", "-y", "-loglevel", "error"),
    *("-progress", "pipe:1", "-stats_period", "0.25", "-nostats"),
)

OPPOSITE = {"zoom-in": "zoom-out", "zoom-out": "zoom-in", "pan-left": "pan-right", "pan-right": "pan-left"}
XFADE = {
    "fade": "fade",
    "dissolve": "dissolve",
    "wipe-left": "wipeleft",
    "slide-left": "slideleft",
    "circle-open": "circleopen",
}


@dataclass(frozen=True)
class Timeline:
    clip_frames: int  # frames of each clip, transitions included
    transition_frames: int
    total_frames: int  # what the encoder keeps

    def offset_seconds(self, index: int, fps: int) -> float:
        """When the transition into clip `index` (1-based) starts."""
        return index * (self.clip_frames - self.transition_frames) / fps


def timeline(clips: int, settings: VideoSettings) -> Timeline:
    total = settings.frames
    if clips <= 1:
        return Timeline(total, 0, total)
    # A transition takes at most a third of a clip, and never more than a second.
    transition = min(round(MAX_TRANSITION_S * settings.fps), total // (3 * clips))
    clip = math.ceil((total + (clips - 1) * transition) / clips)
    return Timeline(max(clip, transition + 1), transition, total)


def source_size(settings: VideoSettings) -> tuple[int, int]:
    scale = min(SOURCE_SCALE, MAX_SOURCE_SIDE / max(settings.width, settings.height))
    scale = max(1.0, scale)
    return round(settings.width * scale), round(settings.height * scale)


def clip_motion(first: str, index: int) -> str:
    """Clips alternate direction (in, out, in …) so a slideshow breathes instead of drifting."""
    return first if index % 2 == 0 else OPPOSITE[first]


def zoompan(motion: str, frames: int, settings: VideoSettings) -> str:
    last = max(1, frames - 1)
    # Eased (smoothstep) position 0 → 1 over the clip: the camera starts and stops gently.
    p = f"(on/{last})"
    eased = f"({p}*{p}*(3-2*{p}))"
    centre_x, centre_y = "(iw-iw/zoom)/2", "(ih-ih/zoom)/2"
    if motion == "zoom-in":
        z, x, y = f"1+{ZOOM - 1:g}*{eased}", centre_x, centre_y
    elif motion == "zoom-out":
        z, x, y = f"{ZOOM:g}-{ZOOM - 1:g}*{eased}", centre_x, centre_y
    elif motion == "pan-left":
        z, x, y = f"{PAN_ZOOM:g}", f"(iw-iw/zoom)*(1-{eased})", centre_y
    elif motion == "pan-right":
        z, x, y = f"{PAN_ZOOM:g}", f"(iw-iw/zoom)*{eased}", centre_y
    else:
        raise ValueError(f"unknown motion {motion!r}")
    return (
        f"zoompan=z='{z}':x='{x}':y='{y}':d={frames}:s={settings.width}x{settings.height}:fps={settings.fps}"
    )


def filter_graph(clips: int, settings: VideoSettings) -> str:
    plan = timeline(clips, settings)
    parts = [
        f"[{i}:v]{zoompan(clip_motion(settings.motion, i), plan.clip_frames, settings)},"
        f"format=yuv420p,setsar=1[c{i}]"
        for i in range(clips)
    ]
    joined = "c0"
    for i in range(1, clips):
        out = f"x{i}"
        parts.append(
            f"[{joined}][c{i}]xfade=transition={XFADE[settings.transition]}"
            f":duration={plan.transition_frames / settings.fps:.6f}"
            f":offset={plan.offset_seconds(i, settings.fps):.6f}[{out}]"
        )
        joined = out
    parts.append(f"[{joined}]null[out]")
    return ";".join(parts)


def ffmpeg_command(ffmpeg: str, sources: Sequence[Path], output: Path, settings: VideoSettings) -> list[str]:
    if not sources:
        raise ValueError("a video needs at least one source image")
    argv = [ffmpeg, *PROGRESS_FLAGS]
    for source in sources:
        argv += ["-i", str(source)]
    argv += [
        "-filter_complex",
        filter_graph(len(sources), settings),
        "-map",
        "[out]",
        "-frames:v",
        str(settings.frames),
        "-r",
        str(settings.fps),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "21",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        "-an",
        str(output),
    ]
    return argv
