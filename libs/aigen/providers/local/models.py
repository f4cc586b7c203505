"""The three local models: what each accepts, and its parameters turned into render settings."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aigen.providers.local.params import Choice, Flag, Number, ParameterError, ParamSpec, parse_parameters

STYLES = ("aurora", "geometric", "waves", "bokeh")
MOTIONS = ("zoom-in", "zoom-out", "pan-left", "pan-right")
TRANSITIONS = ("fade", "dissolve", "wipe-left", "slide-left", "circle-open")
RESOLUTIONS = {"480p": 480, "720p": 720, "1080p": 1080}
ASPECT_RATIOS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4)}
VOICES = ("en-us", "en-gb", "cmn", "yue", "fr-fr", "de", "es", "it", "pt", "ru", "ja", "ko", "hi")
VARIANTS = {"male": "m3", "female": "f3", "whisper": "whisper"}
AUDIO_FORMATS = ("mp3", "wav")
SEED_MAX = 2**31 - 1


class Kind(enum.StrEnum):
    IMAGE = "image"
    SPEECH = "speech"
    VIDEO = "video"


@dataclass(frozen=True)
class LocalModel:
    slug: str
    kind: Kind
    params: tuple[ParamSpec, ...]
    max_outputs: int = 1
    max_input_images: int = 0
    max_prompt_chars: int = 2000
    prompt_required: bool = True


_SEED = Number("seed", 0, SEED_MAX, 0, integer=True)

MODELS: Mapping[str, LocalModel] = {
    m.slug: m
    for m in (
        LocalModel(
            "local-image",
            Kind.IMAGE,
            (
                Number("width", 64, 2048, 1024, integer=True),
                Number("height", 64, 2048, 1024, integer=True),
                Choice("style", STYLES, "aurora"),
                Flag("show_text", True),
                _SEED,
            ),
            max_outputs=4,
        ),
        LocalModel(
            "local-tts",
            Kind.SPEECH,
            (
                Choice("voice", VOICES, "en-us"),
                Choice("variant", tuple(VARIANTS), "male"),
                Number("speed", 80, 450, 175, integer=True),
                Number("pitch", 0, 99, 50, integer=True),
                Choice("output_format", AUDIO_FORMATS, "mp3"),
            ),
            max_prompt_chars=5000,
        ),
        LocalModel(
            "local-video",
            Kind.VIDEO,
            (
                Number("duration", 1, 30, 5),
                Choice("resolution", tuple(RESOLUTIONS), "720p"),
                Choice("aspect_ratio", tuple(ASPECT_RATIOS), "16:9"),
                Number("width", 128, 1920, None, integer=True, even=True),
                Number("height", 128, 1920, None, integer=True, even=True),
                Number("fps", 12, 60, 24, integer=True),
                Choice("motion", MOTIONS, "zoom-in"),
                Choice("transition", TRANSITIONS, "fade"),
                Choice("style", STYLES, "aurora"),
                _SEED,
            ),
            max_input_images=8,
            # With images the prompt only labels the job; without, it is what the frame shows.
            prompt_required=False,
        ),
    )
}


@dataclass(frozen=True)
class ImageSettings:
    width: int
    height: int
    style: str
    show_text: bool
    seed: int
    # Fraction of each side a later crop may cut (a video frame's pan/zoom): text stays inside.
    safe_margin: float = 0.0


@dataclass(frozen=True)
class SpeechSettings:
    voice: str
    variant: str  # espeak-ng's variant name (m3, f3, whisper)
    speed: int  # words per minute
    pitch: int
    output_format: str


@dataclass(frozen=True)
class VideoSettings:
    duration: float
    width: int
    height: int
    fps: int
    motion: str
    transition: str
    style: str
    seed: int

    @property
    def frames(self) -> int:
        return max(1, round(self.duration * self.fps))


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def frame_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """Width and height of a named resolution: the short side is the named number of lines."""
    short = RESOLUTIONS[resolution]
    a, b = ASPECT_RATIOS[aspect_ratio]
    if a >= b:
        return _even(short * a / b), short
    return short, _even(short * b / a)


def image_settings(values: Mapping[str, Any]) -> ImageSettings:
    return ImageSettings(
        values["width"], values["height"], values["style"], values["show_text"], values["seed"]
    )


def speech_settings(values: Mapping[str, Any]) -> SpeechSettings:
    return SpeechSettings(
        values["voice"],
        VARIANTS[values["variant"]],
        values["speed"],
        values["pitch"],
        values["output_format"],
    )


def video_settings(values: Mapping[str, Any]) -> VideoSettings:
    width, height = values["width"], values["height"]
    if (width is None) != (height is None):
        missing = "height" if height is None else "width"
        raise ParameterError(f"parameters.{missing}", "give width and height together, or neither")
    if width is None:
        width, height = frame_size(values["resolution"], values["aspect_ratio"])
    return VideoSettings(
        float(values["duration"]),
        width,
        height,
        values["fps"],
        values["motion"],
        values["transition"],
        values["style"],
        values["seed"],
    )


def checked_parameters(model: LocalModel, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters with defaults applied, after every check the model's settings need."""
    values = parse_parameters(model.params, raw)
    if model.kind is Kind.VIDEO:
        video_settings(values)  # the cross-field rule (width and height together)
    return values
