"""Objects in an S3 bucket through boto3 (AWS, MinIO, Cloudflare R2 and other S3 endpoints).

boto3 is synchronous, so every call runs in a worker thread. A put streams: bytes are gathered
into parts of at least `part_size` (8 MB) and each full part is uploaded while the next one is
being received, at most `max_parts_in_flight` at a time, so memory stays near
`part_size * (max_parts_in_flight + 1)` whatever the object's size. An object that ends before its
first part is full goes up in one PutObject. A failed multipart upload is aborted, so no parts
are left behind to be billed.

Object metadata is written before the bytes of a multipart upload arrive, so the sha256 is known
to S3 only for single-PUT objects (`x-amz-meta-sha256`); callers keep the digest `put` returns.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

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

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("aigen.objectstore")

MIN_PART = 5 * 1024 * 1024  # S3's floor for every part but the last
MAX_PART = 5 * 1024 * 1024 * 1024
MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4 presigned URLs live at most a week
AddressingStyle = Literal["auto", "path", "virtual"]
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_CHECKSUM_FIELDS = ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1", "ChecksumSHA256")


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class _S3Reader(ObjectReader):
    def __init__(self, info: ObjectInfo, body: Any) -> None:
        self.info = info
        self._body = body

    async def chunks(self, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[bytes]:
        while True:
            chunk: bytes = await asyncio.to_thread(self._body.read, chunk_size)
            if not chunk:
                return
            yield chunk


class S3Store(ObjectStore):
    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        public_base_url: str | None = None,
        create_bucket: bool = False,
        addressing_style: AddressingStyle | None = None,
        part_size: int = 8 * 1024 * 1024,
        max_parts_in_flight: int = 4,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 store needs a bucket name")
        if part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes (S3's minimum)")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.create_bucket = create_bucket
        # Custom endpoints (MinIO, moto, most self-hosted S3) rarely resolve bucket sub-domains.
        self.addressing_style: AddressingStyle = addressing_style or ("path" if endpoint_url else "auto")
        self.part_size = part_size
        self.max_parts_in_flight = max(1, max_parts_in_flight)
        self._credentials = (access_key_id, secret_access_key)
        self._client: S3Client | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:  # never the credentials
        return f"S3Store(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    # --- client ---------------------------------------------------------------------------------

    def _make_client(self) -> S3Client:
        access_key_id, secret_access_key = self._credentials
        # A session of our own: boto3's default session is not safe to share between threads.
        session = boto3.session.Session()
        return session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=BotoConfig(
                signature_version="s3v4",
                s3={"addressing_style": self.addressing_style},
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=10,
                read_timeout=120,
                max_pool_connections=max(10, self.max_parts_in_flight * 4),
            ),
        )

    async def _ready(self) -> S3Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    client = await asyncio.to_thread(self._make_client)
                    if self.create_bucket:
                        await self._ensure_bucket(client)
                    self._client = client
        return self._client

    async def _ensure_bucket(self, client: S3Client) -> None:
        try:
            await asyncio.to_thread(client.head_bucket, Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise self._failure("HeadBucket", "", exc) from exc
        except BotoCoreError as exc:
            raise self._failure("HeadBucket", "", exc) from exc
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region and self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            await asyncio.to_thread(client.create_bucket, **kwargs)
            log.info("created bucket %s", self.bucket)
        except ClientError as exc:
            if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise self._failure("CreateBucket", "", exc) from exc

    def _failure(self, operation: str, key: str, exc: Exception) -> ObjectStoreError:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            why = f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
        else:
            why = str(exc) or type(exc).__name__
        where = f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"
        return ObjectStoreError(f"S3 {operation} on {where} failed: {why}")

    async def _call(self, operation: str, key: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._failure(operation, key, exc) from exc

    # --- the contract ---------------------------------------------------------------------------

    def part_size_for(self, part_number: int) -> int:
        """Parts double in size every 1000 parts, so the 10 000-part limit never caps an object."""
        return min(self.part_size << ((part_number - 1) // 1000), MAX_PART)

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> StoredObject:
        validate_key(key)
        content_type = content_type or DEFAULT_CONTENT_TYPE
        client = await self._ready()
        digest = hashlib.sha256()
        size = 0
        # Chunks are appended to the part being filled and a full part is handed over as it is:
        # no copy per part, so memory is the parts in flight plus the one filling.
        buffer = bytearray()
        upload: _MultipartUpload | None = None
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                if len(buffer) >= self.part_size_for(upload.next_number if upload else 1):
                    if upload is None:
                        upload = await _MultipartUpload.start(self, client, key, content_type)
                    part, buffer = buffer, bytearray()
                    await upload.add(part)
            stored = StoredObject(key, size, digest.hexdigest(), content_type)
            if upload is None:
                await self._call(
                    "PutObject",
                    key,
                    client.put_object,
                    Key=key,
                    Body=buffer,
                    ContentType=content_type,
                    Metadata={"sha256": stored.sha256},
                )
            else:
                if buffer:
                    await upload.add(buffer)
                await upload.complete()
            return stored
        except BaseException:
            if upload is not None:
                await upload.abort()
            raise

    @contextlib.asynccontextmanager
    async def open(self, key: str) -> AsyncIterator[ObjectReader]:
        validate_key(key)
        client = await self._ready()
        try:
            response = await asyncio.to_thread(client.get_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise ObjectNotFound(key) from None
            raise self._failure("GetObject", key, exc) from exc
        except BotoCoreError as exc:
            raise self._failure("GetObject", key, exc) from exc
        body = response["Body"]
        info = ObjectInfo(
            key,
            int(response.get("ContentLength", 0)),
            response.get("ContentType") or DEFAULT_CONTENT_TYPE,
            response.get("Metadata", {}).get("sha256", ""),
            response.get("LastModified"),
        )
        try:
            yield _S3Reader(info, body)
        finally:
            await asyncio.to_thread(body.close)

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        client = await self._ready()
        try:
            head = await asyncio.to_thread(client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise ObjectNotFound(key) from None
            raise self._failure("HeadObject", key, exc) from exc
        except BotoCoreError as exc:
            raise self._failure("HeadObject", key, exc) from exc
        return ObjectInfo(
            key,
            int(head.get("ContentLength", 0)),
            head.get("ContentType") or DEFAULT_CONTENT_TYPE,
            head.get("Metadata", {}).get("sha256", ""),
            head.get("LastModified"),
        )

    async def delete(self, key: str) -> None:
        validate_key(key)
        client = await self._ready()
        await self._call("DeleteObject", key, client.delete_object, Key=key)

    async def url(self, key: str, *, expires_in_s: int) -> ObjectUrl:
        validate_key(key)
        if self.public_base_url:
            return ObjectUrl(f"{self.public_base_url}/{quote(key, safe='/')}", None)
        client = await self._ready()
        seconds = max(1, min(expires_in_s, MAX_PRESIGN_S))
        try:
            url = await asyncio.to_thread(
                client.generate_presigned_url,
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=seconds,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._failure("presign", key, exc) from exc
        return ObjectUrl(url, datetime.now(UTC) + timedelta(seconds=seconds))

    async def sweep_abandoned(self, older_than_s: float) -> int:
        # Parts of an upload nobody completes are billed until aborted; a bucket lifecycle rule
        # (AbortIncompleteMultipartUpload) does the same where the operator can set one.
        client = await self._ready()
        before = datetime.now(UTC) - timedelta(seconds=older_than_s)
        aborted = 0
        pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket)
        try:
            uploads = await asyncio.to_thread(
                lambda: [u for page in pages for u in page.get("Uploads", []) if u["Initiated"] < before]
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._failure("ListMultipartUploads", "", exc) from exc
        for upload in uploads:
            await self._call(
                "AbortMultipartUpload",
                upload["Key"],
                client.abort_multipart_upload,
                Key=upload["Key"],
                UploadId=upload["UploadId"],
            )
            aborted += 1
        return aborted

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.close)


class _MultipartUpload:
    """One multipart upload: parts go up in order of arrival, a bounded number at a time."""

    def __init__(self, store: S3Store, client: S3Client, key: str, upload_id: str) -> None:
        self.store = store
        self.client = client
        self.key = key
        self.upload_id = upload_id
        self.next_number = 1
        self.parts: dict[int, dict[str, Any]] = {}
        self.in_flight: collections.deque[asyncio.Task[None]] = collections.deque()

    @classmethod
    async def start(cls, store: S3Store, client: S3Client, key: str, content_type: str) -> _MultipartUpload:
        created = await store._call(
            "CreateMultipartUpload", key, client.create_multipart_upload, Key=key, ContentType=content_type
        )
        return cls(store, client, key, created["UploadId"])

    async def add(self, data: bytearray) -> None:
        while len(self.in_flight) >= self.store.max_parts_in_flight:
            await self.in_flight.popleft()
        number = self.next_number
        self.next_number += 1
        self.in_flight.append(asyncio.create_task(self._upload(number, data)))

    async def _upload(self, number: int, data: bytearray) -> None:
        response = await self.store._call(
            "UploadPart",
            self.key,
            self.client.upload_part,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
        )
        part: dict[str, Any] = {"PartNumber": number, "ETag": response["ETag"]}
        # Checksums the SDK added to a part must be repeated when the upload is completed.
        part.update({name: response[name] for name in _CHECKSUM_FIELDS if response.get(name)})
        self.parts[number] = part

    async def complete(self) -> None:
        while self.in_flight:
            await self.in_flight.popleft()
        await self.store._call(
            "CompleteMultipartUpload",
            self.key,
            self.client.complete_multipart_upload,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": [self.parts[n] for n in sorted(self.parts)]},
        )

    async def abort(self) -> None:
        pending = list(self.in_flight)
        self.in_flight.clear()
        await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self.store._call(
                "AbortMultipartUpload",
                self.key,
                self.client.abort_multipart_upload,
                Key=self.key,
                UploadId=self.upload_id,
            )
        except ObjectStoreError as exc:
            # The bucket's lifecycle rule for incomplete uploads is the backstop.
            log.warning("could not abort the multipart upload of %s: %s", self.key, exc)
