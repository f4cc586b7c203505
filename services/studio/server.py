"""Studio wiring: StudioService, the `studio-tasks` consumer, clients of dispatcher, catalog and
storage."""

from __future__ import annotations

from aigen.bus.consumer import Consumer
from aigen.eventstore.store import EventStore
from aigen.grpcx.client import channel
from aigen.grpcx.server import Registration
from aigen.netguard import NetGuard
from aigen.runtime import Runtime, ServiceSpec
from aigen.v1 import catalog_pb2_grpc, generation_pb2_grpc, studio_pb2_grpc

from services.studio.export.exporter import EpisodeExporter
from services.studio.export.media import MAX_BYTES, MediaFetcher
from services.studio.generation import ShotGeneration
from services.studio.reactions import TaskReactions
from services.studio.repository import StudioRepository
from services.studio.service import StudioService
from services.studio.storage import object_store

CONSUMER = "studio-tasks"


async def build(runtime: Runtime) -> list[Registration]:
    settings = runtime.settings
    channels = {name: channel(settings.address_of(name)) for name in ("dispatcher", "catalog", "storage")}
    for ch in channels.values():
        runtime.on_close(ch.close)
    repo = StudioRepository(runtime.db)
    generation = ShotGeneration(
        repo,
        generation_pb2_grpc.GenerationServiceStub(channels["dispatcher"]),
        catalog_pb2_grpc.CatalogServiceStub(channels["catalog"]),
    )
    store = object_store(channels["storage"])
    guard = NetGuard.from_env(max_bytes=MAX_BYTES, read_timeout_s=120.0)
    exporter = EpisodeExporter(repo, store, MediaFetcher(guard, store))
    spec = next(c for c in runtime.topology.consumers if c.durable.endswith(CONSUMER))
    reactions = TaskReactions(repo, EventStore(runtime.db))
    consumer = Consumer(runtime.db, runtime.nc, spec, reactions, triage=reactions.triage)
    runtime.add_worker(f"consumer:{CONSUMER}", consumer.run)
    runtime.extra["consumer"] = consumer
    service = StudioService(repo, generation, exporter, store)
    return [(studio_pb2_grpc.add_StudioServiceServicer_to_server, service, "aigen.v1.StudioService")]


SPEC = ServiceSpec(name="studio", migration_packages=(("services.studio", "studio"),), build=build)
