"""Result storage rules, pure: which results to copy, under which key, as what type, and what
the task records when a copy worked, was not wanted, or failed.
"""

from __future__ import annotations

import enum
import posixpath
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from aigen.objectstore.base import StoredObject
from aigen.objectstore.keys import validate_key, validate_prefix
from aigen.tasks.blobs import blob_id_of
from aigen.tasks.domain import Status, TaskState
from aigen.v1 import events_pb2

DEFAULT_PREFIX = "ai-generation/"  # the seed's default s3PathPrefix
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/binary"})

EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
    "image/heic": "heic",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "video/x-matroska": "mkv",
    "video/mpeg": "mpeg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/wave": "wav",
    "audio/x-wav": "wav",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "audio/aac": "aac",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/webm": "weba",
}
CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "avif": "image/avif",
    "heic": "image/heic",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "mpeg": "video/mpeg",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
}
DEFAULTS = {"image": ("image/png", "png"), "video": ("video/mp4", "mp4"), "audio": ("audio/mpeg", "mp3")}
_MEDIA_MAJORS = ("image/", "video/", "audio/")
_NOT_MEDIA = ("text/", "application/json", "application/xml", "application/problem+json", "application/xhtml")


class Action(enum.Enum):
    KEEP = "keep"  # uploadToS3 is off: the provider's URL is the result
    DOWNLOAD = "download"  # fetch the provider's URL into the object store
    STAGED = "staged"  # bytes staged in result_blobs: always copied, there is no other home


@dataclass(frozen=True)
class Job:
    index: int
    result: events_pb2.ProviderResult
    action: Action
    blob_id: uuid.UUID | None = None

    @property
    def source(self) -> str:
        """Where the bytes come from, as remembered between attempts."""
        return f"blob:{self.blob_id}" if self.blob_id else self.result.url


class NotMedia(ValueError):
    """The provider's URL answered with something that is not the image/video/audio promised
    (an HTML error page, JSON): storing it would hand clients an error page as their result."""


# --- which results, and what to do with each ------------------------------------------------------


def staged_blob(result: events_pb2.ProviderResult) -> uuid.UUID | None:
    if result.blob_id:
        try:
            return uuid.UUID(result.blob_id)
        except ValueError:
            return None
    return blob_id_of(result.url)


def plan(model: events_pb2.ModelSnapshot | None, results: tuple[events_pb2.ProviderResult, ...]) -> list[Job]:
    upload = bool(model and model.upload_to_s3)
    jobs: list[Job] = []
    for index, result in enumerate(results):
        blob = staged_blob(result)
        if blob is not None:
            jobs.append(Job(index, result, Action.STAGED, blob))
        elif upload and result.url:
            jobs.append(Job(index, result, Action.DOWNLOAD))
        else:
            jobs.append(Job(index, result, Action.KEEP))
    return jobs


def skip_reason(state: TaskState) -> str | None:
    """Why a TaskCompleted needs no storing now, or None when it does."""
    if not state.exists:
        return "the task does not exist"
    if state.deleted:
        return "the task was deleted"
    if state.status is Status.CANCELLED:
        return "the task was cancelled"
    if state.results_stored:
        return "the results are already stored"
    if not state.completed:
        return "the task has not completed"
    return None


# --- keys and types ---------------------------------------------------------------------------------


def normalize_prefix(prefix: str) -> str:
    """A provider's s3PathPrefix as a key prefix: no leading '/', one trailing '/'; '' → default."""
    cleaned = prefix.strip().lstrip("/")
    if not cleaned:
        return DEFAULT_PREFIX
    return validate_prefix(cleaned.rstrip("/") + "/")


def object_key(prefix: str, task_id: str, index: int, extension: str) -> str:
    """`<prefix><task id>/<index>.<ext>`: the same result always lands on the same key, so a
    retry overwrites what an interrupted attempt wrote instead of adding a second object."""
    return validate_key(f"{normalize_prefix(prefix)}{task_id}/{index}.{extension}")


def media_type(header: str | None) -> str:
    """`Image/PNG; charset=x` → `image/png`."""
    return (header or "").split(";", 1)[0].strip().lower()


def url_extension(url: str) -> str:
    """The URL path's extension when it names a known media type, else ''."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    ext = posixpath.splitext(path)[1].lstrip(".").lower()
    return ext if ext in CONTENT_TYPES else ""


def content_type_for(header: str | None, hint: str, url: str, result_type: str) -> str:
    """The response's media type when it says something; else the provider's hint, the URL's
    extension, the result type's usual format."""
    for candidate in (media_type(header), media_type(hint)):
        if candidate not in GENERIC_TYPES and candidate.startswith(_MEDIA_MAJORS):
            return candidate
    ext = url_extension(url)
    if ext:
        return CONTENT_TYPES[ext]
    default = DEFAULTS.get(result_type)
    return default[0] if default else "application/octet-stream"


def extension_for(content_type: str, url: str, result_type: str) -> str:
    known = EXTENSIONS.get(media_type(content_type))
    if known:
        return known
    ext = url_extension(url)
    if ext:
        return ext
    default = DEFAULTS.get(result_type)
    if default and media_type(content_type) in GENERIC_TYPES:
        return default[1]
    return "bin"


def check_media(url: str, header: str | None) -> None:
    kind = media_type(header)
    if kind.startswith(_NOT_MEDIA):
        raise NotMedia(f"{url} answered with {kind}, not a media file")


# --- what the task records ------------------------------------------------------------------------


def kept(result: events_pb2.ProviderResult) -> events_pb2.StoredResult:
    return events_pb2.StoredResult(
        type=result.type,
        url=result.url,
        original_url=result.url,
        content_type=result.content_type,
        stored=False,
    )


def stored(result: events_pb2.ProviderResult, obj: StoredObject, url: str) -> events_pb2.StoredResult:
    # Staged bytes have no URL of their own: nothing to point back to.
    original = "" if staged_blob(result) is not None else result.url
    return events_pb2.StoredResult(
        type=result.type,
        url=url,
        original_url=original,
        storage_key=obj.key,
        content_type=obj.content_type,
        size=obj.size,
        sha256=obj.sha256,
        stored=True,
    )


def fell_back(result: events_pb2.ProviderResult, error: str) -> events_pb2.StoredResult:
    """Storing failed: the provider's URL stays the result (staged bytes have none to offer)."""
    url = "" if staged_blob(result) is not None else result.url
    return events_pb2.StoredResult(
        type=result.type,
        url=url,
        original_url=url,
        content_type=result.content_type,
        stored=False,
        error=error,
    )


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Delay before attempt `attempt + 1` (attempt counts from 1)."""
    return min(max_s, base_s * float(2 ** (attempt - 1)))
