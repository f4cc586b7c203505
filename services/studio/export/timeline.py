"""The editor timeline: one video track with a clip per shot and, when any shot has sound, an audio
track with its clip (or a gap) under each, referencing the same media URLs as the frames. Written
as OpenTimelineIO JSON, and as FCP 7 XML (Premiere, Resolve) through OTIO's fcp_xml adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import opentimelineio as otio
from aigen.errors import FailedPrecondition, Violation

from services.studio.domain import Cut, ExportKind, ExportPlan, ExportSpec, MediaType

ADAPTERS = {ExportKind.OTIO: "otio_json", ExportKind.FCPXML: "fcp_xml"}
FCP_PACKAGE = "otio-fcp-adapter"


def _frames(seconds: float, fps: int) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(round(seconds * fps), fps)


def _range(seconds: float, fps: int) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(0, fps), _frames(seconds, fps))


def _metadata(cut: Cut, which: str) -> dict[str, Any]:
    frame = cut.picture if which == "picture" else cut.audio
    assert frame is not None
    return {
        "aigen": {
            "shot_id": str(cut.shot.id),
            "shot_number": cut.shot.shot_number,
            "frame_id": str(frame.id),
            "media_type": frame.media_type.value,
            "storage_key": frame.storage_key,
            "description": cut.shot.description,
        }
    }


def _clip(cut: Cut, fps: int) -> otio.schema.Clip:
    picture = cut.picture
    reference = otio.schema.ExternalReference(target_url=picture.url)
    if picture.media_type is MediaType.VIDEO and cut.clip_seconds:
        reference.available_range = _range(cut.clip_seconds, fps)
    else:
        # A still has no length of its own: it lasts as long as it is used.
        reference.available_range = _range(cut.duration, fps)
    name = f"Shot {cut.shot.shot_number}" + (f": {cut.shot.title}" if cut.shot.title else "")
    return otio.schema.Clip(
        name=name,
        media_reference=reference,
        source_range=_range(cut.duration, fps),
        metadata=_metadata(cut, "picture"),
    )


def _sound(cut: Cut, fps: int) -> tuple[otio.schema.Clip, float]:
    """The shot's sound clip, and how much of the shot it leaves silent."""
    assert cut.audio is not None
    heard = min(cut.duration, cut.audio_seconds or cut.duration)
    reference = otio.schema.ExternalReference(
        target_url=cut.audio.url, available_range=_range(cut.audio_seconds or heard, fps)
    )
    clip = otio.schema.Clip(
        name=f"Shot {cut.shot.shot_number} sound",
        media_reference=reference,
        source_range=_range(heard, fps),
        metadata=_metadata(cut, "audio"),
    )
    return clip, cut.duration - heard


def build_timeline(plan: ExportPlan, spec: ExportSpec, name: str) -> otio.schema.Timeline:
    fps = spec.fps
    timeline = otio.schema.Timeline(name=name)
    timeline.global_start_time = otio.opentime.RationalTime(0, fps)
    video = otio.schema.Track(name="Picture", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="Sound", kind=otio.schema.TrackKind.Audio)
    silence = 0.0  # runs of silence become one gap

    def flush() -> None:
        nonlocal silence
        if _frames(silence, fps).value > 0:
            audio.append(otio.schema.Gap(source_range=_range(silence, fps)))
        silence = 0.0

    for cut in plan.cuts:
        video.append(_clip(cut, fps))
        if cut.audio is None:
            silence += cut.duration
            continue
        flush()
        clip, rest = _sound(cut, fps)
        audio.append(clip)
        silence += rest
    flush()
    timeline.tracks.append(video)
    if plan.has_audio:
        timeline.tracks.append(audio)
    timeline.metadata["aigen"] = {"width": spec.width, "height": spec.height, "fps": fps}
    return timeline


def write_timeline(timeline: otio.schema.Timeline, kind: ExportKind, out: Path) -> Path:
    adapter = ADAPTERS[kind]
    if adapter not in otio.adapters.available_adapter_names():
        raise FailedPrecondition(
            f"{kind.value} export needs OpenTimelineIO's {adapter} adapter (the {FCP_PACKAGE} package)",
            [Violation("kind", f"the {adapter} adapter is not installed")],
            reason="EXPORT_ADAPTER_MISSING",
        )
    otio.adapters.write_to_file(timeline, str(out), adapter_name=adapter)
    return out
