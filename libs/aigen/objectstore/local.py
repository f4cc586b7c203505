"""Objects as files under one directory: the embedded default, served later by the gateway.

Layout under the root: `<key>` holds the bytes, `.meta/<key>.json` the content type and sha256,
`.tmp/` the uploads in progress. A put writes a temporary file, fsyncs it and renames it over the
key, so a reader sees the old object or the new one, never half of one, and a crash leaves at
most a stray file in `.tmp/`. Keys never start a segment with `.`, so they cannot reach these.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import mimetypes
import os
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import BinaryIO, ParamSpec, TypeVar

from aigen.objectstore.base import (
    DEFAULT_CHUNK,
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    ObjectStore,
    ObjectStoreError,
    ObjectUrl,
    StoredObject,
)
from aigen.objectstore.keys import validate_key
from aigen.objectstore.signing import UrlSigner

WRITE_BATCH = 1024 * 1024  # bytes gathered before one write: fewer thread hops, memory stays small

P = ParamSpec("P")
T = TypeVar("T")


class _LocalReader(ObjectReader):
    def __init__(self, info: ObjectInfo, file: BinaryIO) -> None:
        self.info = info
        self._file = file

    async def chunks(self, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[bytes]:
        while True:
            chunk = await asyncio.to_thread(self._file.read, chunk_size)
            if not chunk:
                return
            yield chunk


class LocalDirStore(ObjectStore):
    name = "local"

    def __init__(self, root: Path, *, signer: UrlSigner | None = None) -> None:
        self.root = Path(root)
        self.signer = signer

    def path_of(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        return self.root / ".meta" / f"{key}.json"

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> StoredObject:
        target = self.path_of(key)
        content_type = content_type or DEFAULT_CONTENT_TYPE
        tmp = self.root / ".tmp" / f"{uuid.uuid4().hex}.part"
        file = await _io(key, _open_for_write, tmp)
        digest = hashlib.sha256()
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                digest.update(chunk)
                size += len(chunk)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= WRITE_BATCH:
                    await _io(key, _write_all, file, pending)
                    pending, pending_size = [], 0
            await _io(key, _write_all, file, pending)
            await _io(key, _sync_and_close, file)
            stored = StoredObject(key, size, digest.hexdigest(), content_type)
            await _io(key, _place, tmp, target)
            meta = json.dumps({"content_type": content_type, "sha256": stored.sha256, "size": size})
            await _io(key, _write_atomically, self._meta_path(key), meta.encode())
            return stored
        except BaseException:
            with contextlib.suppress(OSError):
                file.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    async def sweep_abandoned(self, older_than_s: float) -> int:
        return await asyncio.to_thread(_remove_stale, self.root / ".tmp", time.time() - older_than_s)

    @contextlib.asynccontextmanager
    async def open(self, key: str) -> AsyncIterator[ObjectReader]:
        path = self.path_of(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise ObjectStoreError(f"cannot read object {key!r}: {exc.strerror or exc}") from exc
        try:
            st = os.fstat(file.fileno())  # the file we opened, even if the key is replaced meanwhile
            info = await self._info(key, st.st_size, st.st_mtime)
            yield _LocalReader(info, file)
        finally:
            await asyncio.to_thread(file.close)

    async def stat(self, key: str) -> ObjectInfo:
        path = self.path_of(key)
        try:
            st = await asyncio.to_thread(path.stat)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not S_ISREG(st.st_mode):
            raise ObjectNotFound(key)
        return await self._info(key, st.st_size, st.st_mtime)

    async def _info(self, key: str, size: int, mtime: float) -> ObjectInfo:
        meta: dict[str, object] = {}
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads(await asyncio.to_thread(self._meta_path(key).read_bytes))
        content_type = str(meta.get("content_type") or mimetypes.guess_type(key)[0] or DEFAULT_CONTENT_TYPE)
        # A sha256 is only trusted when it describes a file of this size.
        sha256 = str(meta.get("sha256", "")) if meta.get("size") == size else ""
        return ObjectInfo(key, size, content_type, sha256, datetime.fromtimestamp(mtime, UTC))

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        await _io(key, _remove, path, self.root)
        await _io(key, _remove, self._meta_path(key), self.root / ".meta")

    async def url(self, key: str, *, expires_in_s: int) -> ObjectUrl:
        validate_key(key)
        if self.signer is None:
            raise ObjectStoreError("file URLs need AIGEN_SECRET_KEY (the signing key is derived from it)")
        exp = int(time.time()) + max(1, expires_in_s)
        return ObjectUrl(self.signer.sign(key, exp), datetime.fromtimestamp(exp, UTC))

    def verify_signed(self, key: str, exp: int | str, sig: str) -> bool:
        """For the gateway: does this `/files/<key>?exp=…&sig=…` URL grant access now?"""
        return self.signer is not None and self.signer.verify(key, exp, sig)


async def _io(key: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Blocking file work in a thread; OS errors become ObjectStoreError naming the key."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except OSError as exc:
        raise ObjectStoreError(f"cannot store object {key!r}: {exc.strerror or exc}") from exc


def _remove_stale(folder: Path, before: float) -> int:
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            with contextlib.suppress(FileNotFoundError):  # a put that just finished renamed it
                if entry.name.endswith(".part") and entry.stat().st_mtime < before:
                    os.unlink(entry.path)
                    removed += 1
    return removed


def _open_for_write(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


def _write_all(file: BinaryIO, chunks: list[bytes]) -> None:
    for chunk in chunks:
        file.write(chunk)


def _sync_and_close(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _place(tmp: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
    _fsync_dir(target.parent)  # the rename itself survives a power cut


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with tmp.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def _remove(path: Path, root: Path) -> None:
    """Unlink (absent is fine), then drop parent folders left empty, up to `root`."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    parent = path.parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent
