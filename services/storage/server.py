"""Storage wiring: the object store, the guarded fetcher, the TaskCompleted consumer, the gRPC API."""

from __future__ import annotations

import os

from aigen import objectstore
from aigen.bus.consumer import Consumer
from aigen.bus.topology import ConsumerSpec
from aigen.config import ConfigError
from aigen.eventstore.store import EventStore
from aigen.grpcx.server import Registration
from aigen.netguard import NetGuard
from aigen.runtime import Runtime, ServiceSpec
from aigen.v1 import storage_pb2_grpc

from services.storage.handlers import TaskCompletedHandler
from services.storage.service import StorageService
from services.storage.settings import StorageSettings
from services.storage.sweeper import AbandonedUploadSweeper
from services.storage.transfer import ResultCopier

CONSUMER = "storage-completed"


def consumer_spec(runtime: Runtime) -> ConsumerSpec:
    durable = runtime.topology.consumer(CONSUMER, "").durable
    for spec in runtime.topology.consumers:
        if spec.durable == durable:
            return spec
    raise ConfigError(f"the topology declares no {CONSUMER!r} consumer")


def store_env(runtime: Runtime) -> dict[str, str]:
    """The environment with what the runtime's settings say about the secret, gateway and home."""
    env = dict(os.environ)
    if runtime.settings.secret_key:
        env["AIGEN_SECRET_KEY"] = runtime.settings.secret_key
    env.setdefault("AIGEN_GATEWAY_URL", runtime.settings.gateway_url)
    env.setdefault("AIGEN_HOME", str(runtime.settings.home))
    return env


async def build(runtime: Runtime) -> list[Registration]:
    settings = StorageSettings.from_env()
    env = store_env(runtime)
    try:
        store = objectstore.from_env(env)
    except objectstore.StoreConfigError as exc:
        raise ConfigError(str(exc)) from None
    if isinstance(store, objectstore.LocalDirStore) and store.signer is None:
        raise ConfigError(
            "AIGEN_SECRET_KEY is not set: local file URLs are signed with a key derived from it"
        )
    runtime.on_close(store.close)
    guard = NetGuard.from_env(
        env,
        max_bytes=settings.max_bytes,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
    )
    spec = consumer_spec(runtime)
    copier = ResultCopier(db=runtime.db, store=store, guard=guard, policy=settings.policy)
    handler = TaskCompletedHandler(events=EventStore(runtime.db), copier=copier, max_deliver=spec.max_deliver)
    consumer = Consumer(runtime.db, runtime.nc, spec, handler, concurrency=settings.concurrency)
    runtime.add_worker(CONSUMER, consumer.run)
    sweeper = AbandonedUploadSweeper(
        store, older_than_s=settings.abandoned_after_s, every_s=settings.sweep_every_s
    )
    runtime.add_worker("sweep-abandoned-uploads", sweeper.run)
    runtime.extra["store"] = store
    runtime.extra["consumer"] = consumer
    return [
        (
            storage_pb2_grpc.add_StorageServiceServicer_to_server,
            StorageService(store),
            "aigen.v1.StorageService",
        )
    ]


SPEC = ServiceSpec(
    name="storage",
    migration_packages=(("aigen.tasks", "tasks"), ("services.storage", "storage")),
    build=build,
)
