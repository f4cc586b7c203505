"""Bringing the chosen takes' media to local files, the only form ffmpeg and Pillow read."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from aigen.errors import DomainError, FailedPrecondition, Violation
from aigen.netguard import NetGuard, NetGuardError

from services.studio.domain import Frame, MediaType
from services.studio.storage import ObjectStore

log = logging.getLogger("aigen.studio")

MAX_BYTES = 1024**3  # a long 4K clip; anything larger is not a take
EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/ogg": ".ogg",
    "audio/aac": ".aac",
    "audio/mp4": ".m4a",
    "audio/flac": ".flac",
}
FALLBACK = {MediaType.IMAGE: ".png", MediaType.VIDEO: ".mp4", MediaType.AUDIO: ".mp3"}


def extension_for(url: str, content_type: str, media_type: MediaType) -> str:
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in EXTENSIONS:
        return EXTENSIONS[ctype]
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    if suffix and mimetypes.guess_type(f"x{suffix}")[0]:
        return suffix
    return FALLBACK[media_type]


@dataclass(frozen=True)
class Fetched:
    frame: Frame
    path: Path


class MediaFetcher:
    """Brings frames' media into a folder: stored media from object storage by its key, the rest
    (or anything storage cannot give) over its URL through the SSRF guard, since frame URLs come
    from users and providers."""

    def __init__(self, guard: NetGuard, store: ObjectStore, *, concurrency: int = 4) -> None:
        self.guard = guard
        self.store = store
        self.max_bytes = guard.max_bytes
        self._slots = asyncio.Semaphore(concurrency)

    async def fetch_all(self, frames: Iterable[Frame], folder: Path) -> dict[uuid.UUID, Path]:
        unique = {f.id: f for f in frames}
        fetched = await asyncio.gather(*(self.fetch(f, folder) for f in unique.values()))
        return {f.frame.id: f.path for f in fetched}

    async def fetch(self, frame: Frame, folder: Path) -> Fetched:
        async with self._slots:
            if frame.storage_key:
                try:
                    return await self._from_storage(frame, folder)
                except (DomainError, OSError, ValueError) as exc:
                    log.info(
                        "frame %s: storage could not give %s (%s); reading its URL",
                        frame.id,
                        frame.storage_key,
                        exc,
                    )
            try:
                return await self._download(frame, folder)
            except (NetGuardError, OSError, ValueError) as exc:
                reason = exc.reason if isinstance(exc, NetGuardError) else str(exc) or type(exc).__name__
                raise FailedPrecondition(
                    f"frame {frame.frame_number} of shot {frame.shot_id}: cannot read {frame.url}: {reason}",
                    [Violation(f"frames/{frame.id}", f"media unreadable: {reason}")],
                    reason="MEDIA_UNREADABLE",
                ) from exc

    async def _from_storage(self, frame: Frame, folder: Path) -> Fetched:
        path = folder / f"{frame.id}{extension_for(frame.storage_key, '', frame.media_type)}"
        return Fetched(frame, await self._write(self.store.read(frame.storage_key), path))

    async def _download(self, frame: Frame, folder: Path) -> Fetched:
        async with self.guard.stream(frame.url) as response:
            response.raise_for_status()
            ext = extension_for(response.url, response.headers.get("content-type", ""), frame.media_type)
            path = folder / f"{frame.id}{ext}"
            return Fetched(frame, await self._write(response.aiter_bytes(), path))

    async def _write(self, chunks: AsyncIterator[bytes], path: Path) -> Path:
        size = 0
        with path.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise ValueError(f"larger than {self.max_bytes} bytes")
                await asyncio.to_thread(out.write, chunk)
        if size == 0:
            raise ValueError("empty media")
        return path
