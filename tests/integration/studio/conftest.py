"""Studio against real PostgreSQL (and NATS where events flow), served over real gRPC.

The dispatcher and catalog are small fakes served on the same gRPC server (they record what
Studio asked); object storage is a directory. Media is made with ffmpeg in the test and served
over HTTP on the loopback interface.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aigen import errors
from aigen.db import migrations
from aigen.grpcx.client import channel
from aigen.grpcx.server import create_server
from aigen.netguard import AllowList, NetGuard
from aigen.simulator.serving import serve_asgi
from aigen.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    generation_pb2,
    generation_pb2_grpc,
    studio_pb2_grpc,
)
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from services.studio.export.exporter import EpisodeExporter
from services.studio.export.media import MediaFetcher
from services.studio.generation import ShotGeneration
from services.studio.repository import StudioRepository
from services.studio.service import StudioService
from services.studio.storage import StoredObject

MODELS = {
    "still-model": catalog_pb2.Model(
        slug="still-model", output_type=common_pb2.IMAGE, input_images=catalog_pb2.InputImagesSpec(max=2)
    ),
    "text-only-still": catalog_pb2.Model(slug="text-only-still", output_type=common_pb2.IMAGE),
    "clip-model": catalog_pb2.Model(slug="clip-model", output_type=common_pb2.VIDEO),
    "voice-model": catalog_pb2.Model(slug="voice-model", output_type=common_pb2.AUDIO),
}


class FakeCatalog(catalog_pb2_grpc.CatalogServiceServicer):
    async def GetModelBySlug(self, request, context):
        if request.slug not in MODELS:
            raise errors.NotFound("model", request.slug)
        return MODELS[request.slug]


class FakeDispatcher(generation_pb2_grpc.GenerationServiceServicer):
    """Answers Generate like the dispatcher does (a PENDING task with its quote) and records it."""

    def __init__(self) -> None:
        self.requests: list[generation_pb2.GenerateRequest] = []

    async def Generate(self, request, context):
        self.requests.append(request)
        created = Timestamp()
        created.FromDatetime(datetime.now(UTC))
        return generation_pb2.Task(
            id=uuid.uuid4().hex,
            status=generation_pb2.PENDING,
            model_slug=request.model,
            prompt=request.prompt,
            input_images=request.input_images,
            shot_id=request.shot_id,
            owner=request.owner,
            quote=common_pb2.PriceQuote(usd="0.04"),
            version=1,
            created_at=created,
            updated_at=created,
        )


class DirStore:
    """Object storage as a directory, with the URLs a public bucket would give."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(self, key: str, path: Path, content_type: str) -> StoredObject:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        return StoredObject(key, await self.url(key), target.stat().st_size)

    async def url(self, key: str) -> str:
        return f"http://objects.invalid/{key}"

    async def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self.root / key
        if not path.is_file():
            raise errors.NotFound("object", key)
        yield path.read_bytes()


@dataclass
class StudioHarness:
    stub: studio_pb2_grpc.StudioServiceStub
    repo: StudioRepository
    dispatcher: FakeDispatcher
    store: DirStore
    objects: Path


async def apply_studio_migrations(db) -> None:
    await migrations.apply(db, migrations.load("services.studio", "studio"))


@pytest.fixture
async def studio(db, tmp_path) -> AsyncIterator[StudioHarness]:
    await apply_studio_migrations(db)
    repo = StudioRepository(db)
    objects = tmp_path / "objects"
    objects.mkdir()
    store = DirStore(objects)
    dispatcher = FakeDispatcher()
    fakes = create_server(
        [
            (
                generation_pb2_grpc.add_GenerationServiceServicer_to_server,
                dispatcher,
                "aigen.v1.GenerationService",
            ),
            (catalog_pb2_grpc.add_CatalogServiceServicer_to_server, FakeCatalog(), "aigen.v1.CatalogService"),
        ]
    )
    await fakes.start()
    fakes_channel = channel(f"127.0.0.1:{fakes.port}")
    # Media in these tests is served on 127.0.0.1; every other private address stays refused.
    guard = NetGuard(allow=AllowList.parse("127.0.0.1"))
    generation = ShotGeneration(
        repo,
        generation_pb2_grpc.GenerationServiceStub(fakes_channel),
        catalog_pb2_grpc.CatalogServiceStub(fakes_channel),
    )
    exporter = EpisodeExporter(repo, store, MediaFetcher(guard, store), workdir=tmp_path)
    service = StudioService(repo, generation, exporter, store)
    server = create_server(
        [(studio_pb2_grpc.add_StudioServiceServicer_to_server, service, "aigen.v1.StudioService")]
    )
    await server.start()
    client = channel(f"127.0.0.1:{server.port}", default_timeout=120.0)
    try:
        yield StudioHarness(studio_pb2_grpc.StudioServiceStub(client), repo, dispatcher, store, objects)
    finally:
        await client.close()
        await server.stop(0)
        await fakes_channel.close()
        await fakes.stop(0)


@pytest.fixture
async def media_server(tmp_path) -> AsyncIterator[tuple[Path, str]]:
    """A folder served over HTTP: (folder, base URL)."""
    folder = tmp_path / "media"
    folder.mkdir()
    app = Starlette(routes=[])
    app.mount("/media", StaticFiles(directory=folder))
    async with serve_asgi(app) as base:
        yield folder, f"{base}/media"
