"""StorageService: the object store over gRPC, for services that must not hold its credentials or
its directory (the gateway serves local files through GetObject; Studio stores exports with
PutObject)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aigen import errors
from aigen.objectstore.base import DEFAULT_CHUNK, ObjectInfo, ObjectStore
from aigen.objectstore.keys import validate_key
from aigen.v1 import storage_pb2, storage_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

DEFAULT_URL_TTL_S = 3600
MAX_CHUNK = 1024 * 1024  # well under gRPC's default 4 MB message limit of plain clients


def info_message(info: ObjectInfo) -> storage_pb2.ObjectInfo:
    message = storage_pb2.ObjectInfo(
        key=info.key, size=info.size, content_type=info.content_type, sha256=info.sha256
    )
    if info.modified is not None:
        message.modified.FromDatetime(info.modified)
    return message


class StorageService(storage_pb2_grpc.StorageServiceServicer):
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def GetObjectUrl(
        self, request: storage_pb2.GetObjectUrlRequest, context: object
    ) -> storage_pb2.ObjectUrl:
        if request.expires_in_s < 0:
            raise errors.InvalidArgument.field("expires_in_s", "must not be negative")
        url = await self.store.url(
            validate_key(request.key), expires_in_s=request.expires_in_s or DEFAULT_URL_TTL_S
        )
        reply = storage_pb2.ObjectUrl(url=url.url)
        if url.expires_at is not None:
            expires = Timestamp()
            expires.FromDatetime(url.expires_at)
            reply.expires_at.CopyFrom(expires)
        return reply

    async def HeadObject(
        self, request: storage_pb2.HeadObjectRequest, context: object
    ) -> storage_pb2.ObjectInfo:
        return info_message(await self.store.stat(validate_key(request.key)))

    async def GetObject(
        self, request: storage_pb2.GetObjectRequest, context: object
    ) -> AsyncIterator[storage_pb2.ObjectChunk]:
        if request.chunk_size < 0:
            raise errors.InvalidArgument.field("chunk_size", "must not be negative")
        chunk_size = min(request.chunk_size or DEFAULT_CHUNK, MAX_CHUNK)
        async with self.store.open(validate_key(request.key)) as reader:
            # Facts first, on their own: the gateway can answer with headers before any byte.
            yield storage_pb2.ObjectChunk(info=info_message(reader.info))
            async for chunk in reader.chunks(chunk_size):
                yield storage_pb2.ObjectChunk(data=chunk)

    async def PutObject(
        self, request_iterator: AsyncIterator[storage_pb2.PutObjectRequest], context: object
    ) -> storage_pb2.StoredObject:
        messages = aiter(request_iterator)
        try:
            first = await anext(messages)
        except StopAsyncIteration:
            raise errors.InvalidArgument.field("header", "the stream is empty") from None
        if first.WhichOneof("part") != "header":
            raise errors.InvalidArgument.field("header", "the first message must carry the header")
        header = first.header
        key = validate_key(header.key)

        async def data() -> AsyncIterator[bytes]:
            async for message in messages:
                if message.WhichOneof("part") == "header":
                    raise errors.InvalidArgument.field("header", "only the first message carries a header")
                yield message.data

        stored = await self.store.put(key, data(), content_type=header.content_type)
        return storage_pb2.StoredObject(
            key=stored.key, size=stored.size, sha256=stored.sha256, content_type=stored.content_type
        )

    async def DeleteObject(
        self, request: storage_pb2.DeleteObjectRequest, context: object
    ) -> storage_pb2.DeleteObjectResponse:
        await self.store.delete(validate_key(request.key))
        return storage_pb2.DeleteObjectResponse()
