"""Fixtures of the storage tests: S3 over HTTP (moto's server, or AIGEN_TEST_S3_*), provider
files on an allow-listed loopback address, an internal server on 127.0.0.1, the pipeline."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aigen.bus import topology as topo
from aigen.bus.connection import connect as connect_nats
from aigen.db import migrations
from aigen.objectstore import LocalDirStore, S3Store, UrlSigner
from aigen.simulator.serving import serve_asgi
from moto.server import ThreadedMotoServer

from tests.integration.storage.harness import (
    PROVIDER_HOST,
    InternalServer,
    Pipeline,
    ProviderFiles,
    S3Endpoint,
    provider_guard,
)

SECRET = "storage-tests-secret-key"
GATEWAY = "http://gateway.test"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    url = os.environ.get("AIGEN_TEST_S3_ENDPOINT_URL")
    if url:
        print("[aigen tests] S3 from AIGEN_TEST_S3_ENDPOINT_URL")
        yield S3Endpoint(
            url,
            os.environ.get("AIGEN_TEST_S3_ACCESS_KEY_ID", ""),
            os.environ.get("AIGEN_TEST_S3_SECRET_ACCESS_KEY", ""),
            os.environ.get("AIGEN_TEST_S3_REGION", "us-east-1"),
        )
        return
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"[aigen tests] S3: moto server mode on {host}:{port}")
    try:
        yield S3Endpoint(f"http://{host}:{port}", "testing", "testing")
    finally:
        server.stop()


@pytest.fixture
def bucket() -> str:
    return f"aigen-{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def s3_store(s3_endpoint: S3Endpoint, bucket: str) -> AsyncIterator[S3Store]:
    s3_endpoint.client().create_bucket(Bucket=bucket)  # so "no objects" is a fact, not a missing bucket
    store = S3Store(
        bucket,
        endpoint_url=s3_endpoint.url,
        region=s3_endpoint.region,
        access_key_id=s3_endpoint.access_key_id,
        secret_access_key=s3_endpoint.secret_access_key,
        part_size=5 * 1024 * 1024,  # S3's minimum: multipart starts at a few MB in tests
    )
    yield store
    await store.close()


@pytest.fixture
def local_store(tmp_path) -> LocalDirStore:
    return LocalDirStore(tmp_path / "objects", signer=UrlSigner(SECRET, GATEWAY))


@pytest.fixture
async def provider_files() -> AsyncIterator[ProviderFiles]:
    files = ProviderFiles()
    async with serve_asgi(files.app(), host=PROVIDER_HOST) as url:
        files.url = url
        yield files


@pytest.fixture
async def internal() -> AsyncIterator[InternalServer]:
    server = InternalServer()
    async with serve_asgi(server.app(), host="127.0.0.1") as url:
        server.url = url
        yield server


@pytest.fixture
async def storage_db(db):
    """The test's schema with the tables storage reads and writes (tasks' blobs, its own)."""
    await migrations.apply(db, migrations.load("aigen.tasks", "tasks"))
    await migrations.apply(db, migrations.load("services.storage", "storage"))
    return db


@pytest.fixture
async def nc(nats_url):
    conn = await connect_nats(nats_url)
    yield conn
    await conn.close()


@pytest.fixture
def topology(nats_ns) -> topo.Topology:
    return topo.Topology(nats_ns.namespace)


@pytest.fixture
def s3_pipeline(storage_db, nc, topology, s3_store) -> Pipeline:
    return Pipeline(storage_db, nc, topology, s3_store, provider_guard())


@pytest.fixture
def local_pipeline(storage_db, nc, topology, local_store) -> Pipeline:
    return Pipeline(storage_db, nc, topology, local_store, provider_guard())
