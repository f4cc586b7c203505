"""Object storage as Studio uses it, through the storage service's gRPC API.

Studio puts a finished export under a key, asks for a URL for a key (signed URLs expire, so
listing exports asks again), reads an object back (exports read stored media by key, so they need
neither the gateway that serves signed URLs nor a URL that is still valid), and deletes the exports
of a deleted episode.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
from aigen.errors import NotFound, Unavailable
from aigen.grpcx.client import call
from aigen.v1 import storage_pb2, storage_pb2_grpc

CHUNK = 512 * 1024
PUT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class StoredObject:
    key: str
    url: str
    size: int


class ObjectStore(Protocol):
    async def put(self, key: str, path: Path, content_type: str) -> StoredObject: ...

    async def url(self, key: str) -> str: ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes; raises NotFound when there is no such object."""
        ...

    async def delete(self, key: str) -> None: ...


async def file_chunks(path: Path, size: int = CHUNK) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, size):
            yield chunk


class StorageServiceStore:
    """The storage service's client."""

    def __init__(self, stub: storage_pb2_grpc.StorageServiceStub) -> None:
        self.stub = stub

    async def put(self, key: str, path: Path, content_type: str) -> StoredObject:
        async def parts() -> AsyncIterator[storage_pb2.PutObjectRequest]:
            yield storage_pb2.PutObjectRequest(
                header=storage_pb2.PutObjectHeader(key=key, content_type=content_type)
            )
            async for chunk in file_chunks(path):
                yield storage_pb2.PutObjectRequest(data=chunk)

        stored: storage_pb2.StoredObject = await call(self.stub.PutObject, parts(), timeout=PUT_TIMEOUT_S)
        return StoredObject(stored.key, await self.url(stored.key), stored.size)

    async def url(self, key: str) -> str:
        reply: storage_pb2.ObjectUrl = await call(
            self.stub.GetObjectUrl, storage_pb2.GetObjectUrlRequest(key=key)
        )
        return reply.url

    async def delete(self, key: str) -> None:
        await call(self.stub.DeleteObject, storage_pb2.DeleteObjectRequest(key=key))

    async def read(self, key: str) -> AsyncIterator[bytes]:
        stream = self.stub.GetObject(storage_pb2.GetObjectRequest(key=key))
        try:
            async for chunk in stream:
                if chunk.data:
                    yield chunk.data
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("object", key) from None
            raise Unavailable(f"storage could not give {key}: {exc.details()}") from exc


def object_store(storage_channel: grpc.aio.Channel) -> ObjectStore:
    return StorageServiceStore(storage_pb2_grpc.StorageServiceStub(storage_channel))
