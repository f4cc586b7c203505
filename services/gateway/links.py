"""Result URLs that work when a client reads them, not only when the result was stored.

Storage records URLs that expire for private stores. When a task is read, stored results get a
fresh one: local-directory files are re-signed here (the signing key is derived from the same
secret as storage's), private S3 objects are presigned again by the storage service. Expiries
are rounded up to the hour, so repeated reads within an hour return the same URL (caches work).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aigen.grpcx.client import call
from aigen.objectstore.signing import UrlSigner
from aigen.v1 import generation_pb2, storage_pb2, storage_pb2_grpc

_PRESIGNED_MARKERS = ("X-Amz-Signature=", "Signature=")


class ResultLinks:
    def __init__(
        self,
        signer: UrlSigner | None,
        storage: storage_pb2_grpc.StorageServiceStub | None,
        *,
        ttl_s: int = 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.storage = storage
        self.ttl_s = ttl_s
        self.clock = clock
        self._presigned: dict[str, tuple[float, str]] = {}

    def _expiry(self) -> int:
        now = int(self.clock())
        return (now // 3600 + 1) * 3600 + self.ttl_s

    def local_url(self, key: str) -> str | None:
        return self.signer.sign(key, self._expiry()) if self.signer is not None else None

    async def urls(self, task: generation_pb2.Task) -> list[str]:
        return [await self.url(result) for result in task.results]

    async def url(self, result: generation_pb2.TaskResult) -> str:
        if not (result.stored and result.storage_key):
            return result.url
        if self.signer is not None and result.url.startswith(self.signer.base_url + "/files/"):
            return self.signer.sign(result.storage_key, self._expiry())
        if self.storage is not None and any(marker in result.url for marker in _PRESIGNED_MARKERS):
            return await self._presign(result.storage_key, result.url)
        return result.url

    async def _presign(self, key: str, fallback: str) -> str:
        now = self.clock()
        hit = self._presigned.get(key)
        if hit is not None and hit[0] > now + self.ttl_s / 2:
            return hit[1]
        assert self.storage is not None
        try:
            reply: storage_pb2.ObjectUrl = await call(
                self.storage.GetObjectUrl, storage_pb2.GetObjectUrlRequest(key=key, expires_in_s=self.ttl_s)
            )
        except Exception:
            return fallback  # the recorded URL may still be valid; never fail a read over this
        if len(self._presigned) > 10_000:
            self._presigned.clear()
        self._presigned[key] = (now + self.ttl_s, reply.url)
        return reply.url
