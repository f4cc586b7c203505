"""Result files of the local-directory storage backend: `GET /files/<key>?exp=…&sig=…`.

Only URLs signed with the deployment's key (derived from AIGEN_SECRET_KEY) and not yet expired
are served. The bytes come from the storage service (GetObject), so only storage touches the
directory; they are streamed through, never held whole in memory.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import grpc
from aigen.v1 import storage_pb2
from fastapi import APIRouter, Path, Query
from grpc import aio
from starlette.responses import StreamingResponse

from services.gateway.auth import Gw
from services.gateway.problems import Problem
from services.gateway.routes.docs import problems
from services.gateway.watch import domain_error

router = APIRouter(tags=["files"])


@router.get(
    "/files/{key:path}",
    summary="A stored result (signed, expiring URL)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file's bytes.",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        **problems(403, 404, 422),
    },
)
async def file(
    key: Annotated[str, Path(min_length=1, max_length=1024)],
    exp: Annotated[str, Query(min_length=1, max_length=20, description="Expiry, unix seconds.")],
    sig: Annotated[str, Query(min_length=1, max_length=200, description="The URL's signature.")],
    gw: Gw,
) -> StreamingResponse:
    if gw.signer is None or gw.services.storage is None:
        raise Problem(404, "FILE_NOT_FOUND", "this deployment serves no files")
    if not gw.signer.verify(key, exp, sig):
        raise Problem(
            403,
            "FILE_URL_INVALID",
            "this file URL is not valid or has expired; read the task again for a fresh one",
        )
    stream: aio.UnaryStreamCall = gw.services.storage.GetObject(storage_pb2.GetObjectRequest(key=key))
    try:
        first = await stream.read()
    except grpc.RpcError as exc:
        raise domain_error(exc) from None
    if first is aio.EOF:
        raise Problem(404, "FILE_NOT_FOUND", f"file {key!r} not found")
    assert isinstance(first, storage_pb2.ObjectChunk)
    info = first.info

    async def body() -> AsyncIterator[bytes]:
        try:
            if first.data:
                yield first.data
            while True:
                chunk = await stream.read()
                if chunk is aio.EOF:
                    return
                assert isinstance(chunk, storage_pb2.ObjectChunk)
                yield chunk.data
        finally:
            stream.cancel()

    headers = {
        "Content-Length": str(info.size),
        "Cache-Control": f"private, max-age={max(0, int(exp) - int(time.time()))}",
    }
    if info.sha256:
        headers["ETag"] = f'"{info.sha256}"'
    return StreamingResponse(
        body(), media_type=info.content_type or "application/octet-stream", headers=headers
    )
