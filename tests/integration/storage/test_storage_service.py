"""The storage service as `python -m services.storage` runs it (SPEC: migrations, relay, the
TaskCompleted consumer, the gRPC StorageService), against real PostgreSQL, NATS and S3."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator

import grpc
import pytest
from aigen import errors
from aigen.config import Settings
from aigen.grpcx.client import call, channel
from aigen.grpcx.server import GrpcServer
from aigen.grpcx.status import from_rpc_error
from aigen.runtime import Runtime, start, stop
from aigen.v1 import storage_pb2, storage_pb2_grpc

from services.storage.server import SPEC
from tests.integration.storage.conftest import GATEWAY, SECRET
from tests.integration.storage.harness import (
    PROVIDER_HOST,
    bucket_objects,
    completed_task,
    large_chunks,
    media,
    results_stored,
    sha256,
    url_result,
)

S3_VARIABLES = (
    "AIGEN_S3_BUCKET",
    "AIGEN_S3_ENDPOINT_URL",
    "AIGEN_S3_REGION",
    "AIGEN_S3_ACCESS_KEY_ID",
    "AIGEN_S3_SECRET_ACCESS_KEY",
    "AIGEN_S3_PUBLIC_BASE_URL",
    "AIGEN_S3_CREATE_BUCKET",
)


@contextlib.asynccontextmanager
async def running_storage(settings: Settings) -> AsyncIterator[tuple[Runtime, GrpcServer]]:
    runtime, server = await start(SPEC, settings)
    await server.start()
    stop_event = asyncio.Event()
    workers = [asyncio.create_task(worker(stop_event), name=name) for name, worker in runtime.workers]
    try:
        yield runtime, server
    finally:
        stop_event.set()
        await server.stop(0)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await stop(runtime)


@pytest.fixture
def settings(pg_url, nats_url, db, nats_ns, tmp_path, monkeypatch) -> Settings:
    for name in S3_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIGEN_NETGUARD_ALLOW", PROVIDER_HOST)
    monkeypatch.setenv("AIGEN_STORAGE_DIR", str(tmp_path / "objects"))
    return Settings(
        home=tmp_path,
        database_url=pg_url,
        db_schema=db.schema,
        nats_url=nats_url,
        nats_namespace=nats_ns.namespace,
        secret_key=SECRET,
        listen="127.0.0.1:0",
        gateway_url=GATEWAY,
        log_format="text",
    )


async def until_stored(db, task_id: str, timeout: float = 30.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await results_stored(db, task_id)):
        assert asyncio.get_running_loop().time() < deadline, "no ResultsStored in time"
        await asyncio.sleep(0.1)
    return found


async def test_the_service_stores_results_from_events_into_s3_and_serves_them(
    settings, db, provider_files, s3_endpoint, bucket, monkeypatch
):
    monkeypatch.setenv("AIGEN_S3_BUCKET", bucket)
    monkeypatch.setenv("AIGEN_S3_ENDPOINT_URL", s3_endpoint.url)
    monkeypatch.setenv("AIGEN_S3_REGION", s3_endpoint.region)
    monkeypatch.setenv("AIGEN_S3_ACCESS_KEY_ID", s3_endpoint.access_key_id)
    monkeypatch.setenv("AIGEN_S3_SECRET_ACCESS_KEY", s3_endpoint.secret_access_key)
    monkeypatch.setenv("AIGEN_S3_CREATE_BUCKET", "1")
    async with running_storage(settings) as (_, server):
        task = await completed_task(
            db,
            results=[url_result(provider_files.file_url("sample.png"))],
            staged=[("audio", media("sample.mp3"), "audio/mpeg")],
        )
        (event,) = await until_stored(db, task)
        image, audio = event.results
        assert image.storage_key == f"ai-generation/{task}/0.png"
        assert audio.storage_key == f"ai-generation/{task}/1.mp3"
        objects = bucket_objects(s3_endpoint, bucket)
        assert sorted(objects) == [image.storage_key, audio.storage_key]
        async with channel(f"127.0.0.1:{server.port}") as ch:
            stub = storage_pb2_grpc.StorageServiceStub(ch)
            head = await call(stub.HeadObject, storage_pb2.HeadObjectRequest(key=audio.storage_key))
            assert (head.size, head.content_type) == (len(media("sample.mp3")), "audio/mpeg")
            url = await call(stub.GetObjectUrl, storage_pb2.GetObjectUrlRequest(key=image.storage_key))
            assert "X-Amz-Signature=" in url.url
            assert url.HasField("expires_at")


async def test_grpc_put_get_head_url_and_delete_on_the_local_directory(settings, tmp_path):
    async with running_storage(settings) as (_, server), channel(f"127.0.0.1:{server.port}") as ch:
        stub = storage_pb2_grpc.StorageServiceStub(ch)
        data = b"".join(large_chunks(3 * 1024 * 1024 + 11))

        async def upload():
            yield storage_pb2.PutObjectRequest(
                header=storage_pb2.PutObjectHeader(
                    key="exports/ep1/board.pdf", content_type="application/pdf"
                )
            )
            for i in range(0, len(data), 512 * 1024):
                yield storage_pb2.PutObjectRequest(data=data[i : i + 512 * 1024])

        stored = await stub.PutObject(upload(), timeout=30)
        assert (stored.key, stored.size, stored.sha256, stored.content_type) == (
            "exports/ep1/board.pdf",
            len(data),
            hashlib.sha256(data).hexdigest(),
            "application/pdf",
        )
        assert (tmp_path / "objects" / "exports" / "ep1" / "board.pdf").read_bytes() == data

        chunks = [c async for c in stub.GetObject(storage_pb2.GetObjectRequest(key="exports/ep1/board.pdf"))]
        assert chunks[0].HasField("info")
        assert not chunks[0].data
        assert (chunks[0].info.size, chunks[0].info.content_type, chunks[0].info.sha256) == (
            len(data),
            "application/pdf",
            stored.sha256,
        )
        assert b"".join(c.data for c in chunks[1:]) == data
        assert all(len(c.data) <= 256 * 1024 for c in chunks)

        url = await call(
            stub.GetObjectUrl, storage_pb2.GetObjectUrlRequest(key="exports/ep1/board.pdf", expires_in_s=60)
        )
        assert url.url.startswith(f"{GATEWAY}/files/exports/ep1/board.pdf?exp=")

        await call(stub.DeleteObject, storage_pb2.DeleteObjectRequest(key="exports/ep1/board.pdf"))
        with pytest.raises(errors.NotFound):
            await call(stub.HeadObject, storage_pb2.HeadObjectRequest(key="exports/ep1/board.pdf"))


async def test_grpc_refuses_bad_keys_and_malformed_uploads_with_details(settings):
    async with running_storage(settings) as (_, server), channel(f"127.0.0.1:{server.port}") as ch:
        stub = storage_pb2_grpc.StorageServiceStub(ch)
        with pytest.raises(errors.InvalidArgument) as bad:
            await call(stub.HeadObject, storage_pb2.HeadObjectRequest(key="../../etc/passwd"))
        assert bad.value.violations[0].field == "key"
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            [c async for c in stub.GetObject(storage_pb2.GetObjectRequest(key="missing/0.png"))]
        assert isinstance(from_rpc_error(missing.value), errors.NotFound)

        async def headless():
            yield storage_pb2.PutObjectRequest(data=b"bytes before any header")

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.PutObject(headless(), timeout=10)
        assert isinstance(from_rpc_error(refused.value), errors.InvalidArgument)

        async def escaping():
            yield storage_pb2.PutObjectRequest(header=storage_pb2.PutObjectHeader(key="/etc/cron.d/x"))
            yield storage_pb2.PutObjectRequest(data=b"* * * * * root true")

        with pytest.raises(grpc.aio.AioRpcError) as escaped:
            await stub.PutObject(escaping(), timeout=10)
        assert from_rpc_error(escaped.value).reason == "INVALID_OBJECT_KEY"


async def test_the_local_backend_needs_a_secret_key_to_start(settings):
    from aigen.config import ConfigError

    with pytest.raises(ConfigError, match="AIGEN_SECRET_KEY"):
        async with running_storage(settings.with_(secret_key=None)):
            pass


async def test_the_service_stores_into_the_local_directory_by_default(settings, db, provider_files, tmp_path):
    async with running_storage(settings):
        task = await completed_task(db, results=[url_result(provider_files.file_url("sample.mp4"), "video")])
        (event,) = await until_stored(db, task)
    (video,) = event.results
    assert (tmp_path / "objects" / video.storage_key).read_bytes() == media("sample.mp4")
    assert video.sha256 == sha256(media("sample.mp4"))
