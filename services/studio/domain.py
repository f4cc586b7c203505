"""Studio rules without I/O: the records, input checks, numbering, prompt composition, take
selection, cost of a task, and the plan of an episode export."""

from __future__ import annotations

import enum
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from aigen.errors import FailedPrecondition, InvalidArgument, NotFound, Violation


class MediaType(enum.StrEnum):
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    AUDIO = "AUDIO"


class Slot(enum.StrEnum):
    """A shot has one chosen picture (image or video) and one chosen sound."""

    PICTURE = "picture"
    AUDIO = "audio"


def slot_of(media_type: MediaType) -> Slot:
    return Slot.AUDIO if media_type is MediaType.AUDIO else Slot.PICTURE


# --- records --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    id: uuid.UUID
    slug: str
    name: str
    description: str
    default_models: Mapping[str, str]
    style_prompt: str
    created_at: datetime
    updated_at: datetime
    episode_count: int = 0


@dataclass(frozen=True)
class Episode:
    id: uuid.UUID
    project_id: uuid.UUID
    number: int
    title: str
    synopsis: str
    script: str
    created_at: datetime
    updated_at: datetime
    shot_count: int = 0


@dataclass(frozen=True)
class SceneDescription:
    character_name: str
    description: str


@dataclass(frozen=True)
class Shot:
    id: uuid.UUID
    episode_id: uuid.UUID
    shot_number: int
    position: int
    title: str
    description: str
    action: str
    camera: str
    duration_seconds: float
    scene_descriptions: tuple[SceneDescription, ...]
    setting_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    character_ids: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class Character:
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    description: str
    reference_images: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Setting:
    id: uuid.UUID
    project_id: uuid.UUID
    location: str
    time_of_day: str
    mood: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Frame:
    id: uuid.UUID
    shot_id: uuid.UUID
    frame_number: int
    media_type: MediaType
    url: str
    storage_key: str
    task_id: str | None
    selected: bool
    created_at: datetime

    @property
    def slot(self) -> Slot:
        return slot_of(self.media_type)


@dataclass(frozen=True)
class ExportRecord:
    id: uuid.UUID
    episode_id: uuid.UUID
    kind: str
    storage_key: str
    url: str
    content_type: str
    size: int
    details: Mapping[str, Any]
    created_at: datetime


# --- input checks ----------------------------------------------------------------------------------

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MAX_NAME = 200
MAX_TEXT = 10_000
MAX_SCRIPT = 500_000
MAX_URL = 4_000
MAX_DATA_URL = 8 * 1024 * 1024
MAX_NUMBER = 100_000
MAX_DURATION_S = 3_600.0
MAX_REFERENCE_IMAGES = 16


class Problems:
    """Collects every field violation of a request, so one answer names them all."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def add(self, field_name: str, description: str) -> None:
        self.violations.append(Violation(field_name, description))

    def check(self, ok: bool, field_name: str, description: str) -> None:
        if not ok:
            self.add(field_name, description)

    def required(self, value: str, field_name: str) -> None:
        self.check(bool(value.strip()), field_name, "required")

    def text(self, value: str, field_name: str, limit: int = MAX_TEXT) -> None:
        self.check(len(value) <= limit, field_name, f"must be at most {limit} characters")

    def name(self, value: str, field_name: str) -> None:
        self.required(value, field_name)
        self.text(value, field_name, MAX_NAME)

    def number(self, value: int, field_name: str) -> None:
        self.check(
            0 <= value <= MAX_NUMBER, field_name, f"must be between 1 and {MAX_NUMBER} (0: the next free one)"
        )

    def duration(self, value: float, field_name: str) -> None:
        self.check(
            math.isfinite(value) and 0 <= value <= MAX_DURATION_S,
            field_name,
            f"must be between 0 and {MAX_DURATION_S:.0f} seconds",
        )

    def raise_if_any(self) -> None:
        if self.violations:
            message = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
            raise InvalidArgument(message, self.violations)


def slug_problem(slug: str) -> str | None:
    if not slug:
        return "required"
    if not SLUG_RE.match(slug):
        return "use 1 to 64 lower-case letters, digits and inner hyphens (e.g. 'night-harbour')"
    return None


def media_url_problem(url: str, *, allow_data_images: bool = False) -> str | None:
    """Media is read back over HTTP (exports, providers), so it must be an http(s) URL."""
    if not url:
        return "required"
    if allow_data_images and url.startswith("data:"):
        if not url.startswith("data:image/"):
            return "a data: URL must hold an image"
        if len(url) > MAX_DATA_URL:
            return f"a data: URL must be at most {MAX_DATA_URL} characters"
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an http(s) URL" + (" or a data:image URL" if allow_data_images else "")
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    return None


def check_reference_images(problems: Problems, urls: Sequence[str], field_name: str) -> None:
    problems.check(
        len(urls) <= MAX_REFERENCE_IMAGES, field_name, f"at most {MAX_REFERENCE_IMAGES} reference images"
    )
    for i, url in enumerate(urls):
        problem = media_url_problem(url, allow_data_images=True)
        if problem:
            problems.add(f"{field_name}[{i}]", problem)


def check_default_models(
    problems: Problems, models: Mapping[str, str], field_name: str, *, merging: bool
) -> None:
    for key, slug in models.items():
        if key not in MediaType.__members__:
            problems.add(f"{field_name}[{key}]", "key must be IMAGE, VIDEO or AUDIO")
        elif not slug and not merging:
            problems.add(f"{field_name}[{key}]", "model slug required")
        elif len(slug) > MAX_NAME:
            problems.add(f"{field_name}[{key}]", f"must be at most {MAX_NAME} characters")


def merge_default_models(
    current: Mapping[str, str], changes: Mapping[str, str], replace: bool
) -> dict[str, str]:
    """Merging: an empty slug removes that output type's default."""
    merged = {} if replace else dict(current)
    for key, slug in changes.items():
        if slug:
            merged[key] = slug
        else:
            merged.pop(key, None)
    return merged


def check_scene_descriptions(problems: Problems, scenes: Sequence[SceneDescription], field_name: str) -> None:
    for i, scene in enumerate(scenes):
        problems.name(scene.character_name, f"{field_name}[{i}].character_name")
        problems.text(scene.description, f"{field_name}[{i}].description")


def parse_id(value: str, field_name: str, resource: str) -> uuid.UUID:
    """An id from a request: empty is the caller's mistake; one that is no id at all names nothing."""
    if not value:
        raise InvalidArgument.field(field_name, "required")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(resource, value) from None


# --- numbering and order -----------------------------------------------------------------------------


def next_number(existing: Iterable[int]) -> int:
    return max(existing, default=0) + 1


def reorder(
    current: Sequence[uuid.UUID], requested: Sequence[str], field_name: str = "shot_ids"
) -> list[uuid.UUID]:
    """The new order of an episode's shots: every shot exactly once; a foreign id is NOT_FOUND."""
    known = set(current)
    order: list[uuid.UUID] = []
    seen: set[uuid.UUID] = set()
    for i, raw in enumerate(requested):
        shot_id = parse_id(raw, f"{field_name}[{i}]", "shot")
        if shot_id not in known:
            raise NotFound("shot", raw, f"shot {raw!r} is not in this episode")
        if shot_id in seen:
            raise InvalidArgument.field(f"{field_name}[{i}]", f"shot {raw} is listed twice")
        seen.add(shot_id)
        order.append(shot_id)
    missing = [str(s) for s in current if s not in seen]
    if missing:
        raise InvalidArgument.field(
            field_name, f"must list every shot of the episode; missing {', '.join(missing)}"
        )
    return order


# --- takes ------------------------------------------------------------------------------------------


def auto_selection(selected_slots: Iterable[Slot], new_media: Sequence[MediaType]) -> list[bool]:
    """Which new frames to select: the first of each slot that has no chosen frame yet."""
    taken = set(selected_slots)
    chosen: list[bool] = []
    for media in new_media:
        slot = slot_of(media)
        chosen.append(slot not in taken)
        taken.add(slot)
    return chosen


def media_type_of_result(result_type: str, task_output: MediaType | None) -> MediaType:
    """A stored result's type ("image" | "video" | "audio"); the task's output type otherwise."""
    try:
        return MediaType(result_type.upper())
    except ValueError:
        return task_output or MediaType.IMAGE


# --- prompt composition -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptSources:
    style_prompt: str
    setting: Setting | None
    shot: Shot
    characters: Sequence[Character]  # linked to the shot, in link order


# Latin and CJK full stops, question and exclamation marks, and the ellipsis.
SENTENCE_ENDS = ".!?\u3002\uff01\uff1f\u2026"


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    if text and text[-1] not in SENTENCE_ENDS:
        text += "."
    return text


def compose_prompt(output: MediaType, src: PromptSources) -> str:
    """The default prompt of a generation from a shot.

    Pictures: the project's style, the setting, camera, what the shot shows and does, then each
    character as the project describes them plus what they do in this shot. Sound: only what is
    to be heard (the scene descriptions, else the shot's description), since a voice model reads
    its whole prompt aloud.
    """
    shot = src.shot
    if output is MediaType.AUDIO:
        spoken = [" ".join(s.description.split()) for s in shot.scene_descriptions if s.description.strip()]
        return "\n".join(spoken) if spoken else " ".join(shot.description.split())
    lines: list[str] = []
    if src.style_prompt.strip():
        lines.append(_sentence(src.style_prompt))
    if src.setting is not None:
        place = ", ".join(p.strip() for p in (src.setting.location, src.setting.time_of_day) if p.strip())
        parts = [place] if place else []
        if src.setting.mood.strip():
            parts.append(f"mood: {src.setting.mood.strip()}")
        setting_line = "Setting: " + "; ".join(parts) if parts else ""
        if setting_line:
            lines.append(_sentence(setting_line))
        if src.setting.description.strip():
            lines.append(_sentence(src.setting.description))
    if shot.camera.strip():
        lines.append(_sentence(f"Camera: {shot.camera.strip()}"))
    if shot.description.strip():
        lines.append(_sentence(shot.description))
    if shot.action.strip():
        lines.append(_sentence(f"Action: {shot.action.strip()}"))
    scenes: dict[str, list[str]] = {}
    for scene in shot.scene_descriptions:
        if scene.description.strip():
            scenes.setdefault(scene.character_name.strip().casefold(), []).append(scene.description.strip())
    for character in src.characters:
        line = character.name.strip()
        if character.description.strip():
            line += f": {' '.join(character.description.split())}"
        in_shot = scenes.pop(character.name.strip().casefold(), [])
        text = _sentence(line)
        if in_shot:
            text += " In this shot: " + " ".join(_sentence(s) for s in in_shot)
        lines.append(text)
    for scene in shot.scene_descriptions:
        rest = scenes.pop(scene.character_name.strip().casefold(), None)
        if rest:
            lines.append(f"{scene.character_name.strip()}: " + " ".join(_sentence(s) for s in rest))
    return "\n".join(lines)


def reference_images(characters: Sequence[Character], limit: int) -> list[str]:
    """The characters' reference images in link order, each once, at most `limit`."""
    found: list[str] = []
    for character in characters:
        for url in character.reference_images:
            if url not in found:
                found.append(url)
    return found[: max(0, limit)]


# --- cost ---------------------------------------------------------------------------------------------

RUNNING = frozenset({"PENDING", "PROCESSING"})


def usd(text: str) -> Decimal:
    """A decimal USD string from a quote or charge; empty or malformed counts as nothing."""
    try:
        value = Decimal(text) if text else Decimal(0)
    except InvalidOperation:
        return Decimal(0)
    return value if value.is_finite() and value >= 0 else Decimal(0)


def task_cost(status: str, quote: Decimal, charge: Decimal | None) -> tuple[Decimal, Decimal]:
    """(quoted, settled) of one task. Running: its quote. Finished: what the provider charged
    when it said so; otherwise the quote for a success, and nothing for a failure or cancel."""
    if status in RUNNING:
        return quote, Decimal(0)
    if charge is not None:
        return Decimal(0), charge
    return Decimal(0), quote if status == "SUCCESS" else Decimal(0)


def money(value: Decimal) -> str:
    """Exact decimal text without trailing zeros beyond cents ("0.03", "1.2345", "0")."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    if len(text.partition(".")[2]) < 2:
        text = format(value.quantize(Decimal("0.01")), "f")
    return text


# --- exports -------------------------------------------------------------------------------------------


class ExportKind(enum.StrEnum):
    STORYBOARD_HTML = "storyboard_html"
    STORYBOARD_PDF = "storyboard_pdf"
    ANIMATIC = "animatic"
    OTIO = "otio"
    FCPXML = "fcpxml"

    @property
    def extension(self) -> str:
        return {
            "storyboard_html": "html",
            "storyboard_pdf": "pdf",
            "animatic": "mp4",
            "otio": "otio",
            "fcpxml": "xml",
        }[self.value]

    @property
    def content_type(self) -> str:
        return {
            "storyboard_html": "text/html; charset=utf-8",
            "storyboard_pdf": "application/pdf",
            "animatic": "video/mp4",
            "otio": "application/json",
            "fcpxml": "application/xml",
        }[self.value]


DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS = 1280, 720, 25
DEFAULT_STILL_SECONDS = 3.0


@dataclass(frozen=True)
class ExportSpec:
    kind: ExportKind
    width: int
    height: int
    fps: int


def export_spec(kind: str, width: int, height: int, fps: int) -> ExportSpec:
    problems = Problems()
    try:
        parsed = ExportKind(kind)
    except ValueError:
        problems.add("kind", f"must be one of {', '.join(k.value for k in ExportKind)}")
        parsed = ExportKind.ANIMATIC
    width = width or DEFAULT_WIDTH
    height = height or DEFAULT_HEIGHT
    fps = fps or DEFAULT_FPS
    for name, value in (("width", width), ("height", height)):
        problems.check(
            64 <= value <= 3840 and value % 2 == 0, name, "must be an even number of pixels from 64 to 3840"
        )
    problems.check(1 <= fps <= 60, "fps", "must be from 1 to 60")
    problems.raise_if_any()
    return ExportSpec(parsed, width, height, fps)


@dataclass(frozen=True)
class ShotTakes:
    """A shot with its chosen picture and sound, as loaded for an export."""

    shot: Shot
    picture: Frame | None
    audio: Frame | None


@dataclass(frozen=True)
class Cut:
    """One shot on the export timeline."""

    shot: Shot
    picture: Frame
    audio: Frame | None
    start: float
    duration: float
    clip_seconds: float | None = None  # the picture's own length, for a video
    audio_seconds: float | None = None  # the sound's own length


@dataclass(frozen=True)
class ExportPlan:
    cuts: tuple[Cut, ...]

    @property
    def has_audio(self) -> bool:
        return any(c.audio is not None for c in self.cuts)

    @property
    def duration(self) -> float:
        return sum(c.duration for c in self.cuts)


def require_pictures(shots: Sequence[ShotTakes]) -> list[ShotTakes]:
    """Every shot needs a chosen picture before an episode can be exported."""
    if not shots:
        raise FailedPrecondition("the episode has no shots to export", [Violation("episode", "no shots")])
    lacking = [s.shot for s in shots if s.picture is None]
    if lacking:
        numbers = ", ".join(str(s.shot_number) for s in lacking)
        raise FailedPrecondition(
            f"shots without a selected frame: {numbers}",
            [
                Violation(f"shots/{s.id}", f"shot {s.shot_number} has no selected image or video frame")
                for s in lacking
            ],
            reason="SHOTS_WITHOUT_SELECTED_FRAME",
        )
    return list(shots)


def shot_duration(shot: Shot, picture: MediaType, clip_seconds: float | None) -> float:
    """How long a shot lasts on the timeline: its own duration; unset, a video's own length, else
    a still's default."""
    if shot.duration_seconds > 0:
        return shot.duration_seconds
    if picture is MediaType.VIDEO and clip_seconds:
        return clip_seconds
    return DEFAULT_STILL_SECONDS


def plan_export(shots: Sequence[ShotTakes], lengths: Mapping[uuid.UUID, float]) -> ExportPlan:
    """The cuts in order with their start times; `lengths` holds the media lengths known (by frame
    id: videos and sounds)."""
    cuts: list[Cut] = []
    start = 0.0
    for takes in require_pictures(shots):
        assert takes.picture is not None
        clip = lengths.get(takes.picture.id)
        duration = shot_duration(takes.shot, takes.picture.media_type, clip)
        sound = lengths.get(takes.audio.id) if takes.audio is not None else None
        cuts.append(Cut(takes.shot, takes.picture, takes.audio, start, duration, clip, sound))
        start += duration
    return ExportPlan(tuple(cuts))


def export_key(project_slug: str, episode_id: uuid.UUID, export_id: uuid.UUID, kind: ExportKind) -> str:
    return f"studio/{project_slug}/{episode_id}/{export_id}.{kind.extension}"
