"""The object store contract every backend fulfils, and the values it hands back."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from aigen import errors

DEFAULT_CHUNK = 256 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class ObjectStoreError(errors.Unavailable):
    """The backend failed (unreachable, refused, out of space). Retrying later may work."""

    reason = "OBJECT_STORE_FAILED"


class ObjectNotFound(errors.NotFound):
    def __init__(self, key: str) -> None:
        super().__init__("object", key)
        self.key = key


@dataclass(frozen=True)
class StoredObject:
    """What a put wrote: computed from the bytes as they passed, not read back."""

    key: str
    size: int
    sha256: str
    content_type: str


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str
    sha256: str = ""  # empty when the backend cannot know it (S3 multipart uploads)
    modified: datetime | None = None


@dataclass(frozen=True)
class ObjectUrl:
    url: str
    expires_at: datetime | None  # None: a public URL that does not expire


class ObjectReader(abc.ABC):
    """An open object: its facts, then its bytes in chunks."""

    info: ObjectInfo

    @abc.abstractmethod
    def chunks(self, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])


class ObjectStore(abc.ABC):
    """Async object storage. Keys are validated by `aigen.objectstore.keys.validate_key`.

    `put` consumes the stream as it arrives and never holds the whole object in memory; it
    overwrites an existing key, which is what makes deterministic keys idempotent.
    """

    name: str

    @abc.abstractmethod
    async def put(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> StoredObject: ...

    @abc.abstractmethod
    def open(self, key: str) -> contextlib.AbstractAsyncContextManager[ObjectReader]:
        """`async with store.open(key) as reader:` raises ObjectNotFound when absent."""

    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo:
        """Raises ObjectNotFound when absent."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Removes the object; deleting an absent key is not an error."""

    @abc.abstractmethod
    async def url(self, key: str, *, expires_in_s: int) -> ObjectUrl:
        """A URL a browser can fetch: the public one, or one signed until `expires_in_s` from now."""

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except ObjectNotFound:
            return False
        return True

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.put(key, one(), content_type=content_type)

    async def sweep_abandoned(self, older_than_s: float) -> int:
        """Remove uploads left unfinished by a crash, begun more than `older_than_s` ago; returns
        how many. Objects themselves are never touched, and an upload in progress is younger."""
        return 0

    async def close(self) -> None:  # noqa: B027 - backends without resources need nothing here
        """Release clients and connections."""
