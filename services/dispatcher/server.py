"""Dispatcher wiring: GenerationService, the dispatch worker, the task read model."""

from __future__ import annotations

import logging
import os

from aigen.config import ConfigError
from aigen.eventstore.notifier import StreamNotifier
from aigen.eventstore.store import EventStore
from aigen.grpcx.client import channel
from aigen.grpcx.server import Registration
from aigen.ops.breaker import BreakerGate
from aigen.ops.recorder import ErrorRecorder
from aigen.projections.runner import ProjectionRunner
from aigen.providers.lean_http import provider_http_client
from aigen.runtime import Runtime, ServiceSpec
from aigen.secrets import Sealer
from aigen.tasks.access import ProviderAccess
from aigen.tasks.repository import TaskRepository
from aigen.v1 import catalog_pb2_grpc, generation_pb2_grpc
from aigen.workqueue import WorkQueue

from services.dispatcher.dispatch import Dispatcher
from services.dispatcher.projection import TaskProjection
from services.dispatcher.service import GenerationService

log = logging.getLogger("aigen.dispatcher")

DISPATCH_CONCURRENCY = 32  # provider submissions in flight per dispatcher


def dispatch_workers() -> int:
    """AIGEN_DISPATCH_WORKERS: provider submissions in flight in this replica; 0 makes it serve
    the API only (submissions and reads), leaving the dispatching to replicas that have workers."""
    raw = os.environ.get("AIGEN_DISPATCH_WORKERS", "")
    try:
        workers = int(raw) if raw else DISPATCH_CONCURRENCY
    except ValueError:
        raise ConfigError(f"AIGEN_DISPATCH_WORKERS must be a whole number, not {raw!r}") from None
    if workers < 0:
        raise ConfigError("AIGEN_DISPATCH_WORKERS must be 0 (API only) or more")
    return workers


async def build(runtime: Runtime) -> list[Registration]:
    settings = runtime.settings
    catalog_channel = channel(settings.address_of("catalog"))
    runtime.on_close(catalog_channel.close)
    catalog = catalog_pb2_grpc.CatalogServiceStub(catalog_channel)
    sealer = Sealer(settings.secret_key) if settings.secret_key else None
    access = ProviderAccess(catalog, sealer)
    store = EventStore(runtime.db)
    jobs = WorkQueue(runtime.db, "dispatch_jobs", lease_s=15.0, max_claims=10)
    workers = dispatch_workers()
    http = provider_http_client(max(1, workers))
    runtime.on_close(http.aclose)
    dispatcher = Dispatcher(
        repo=TaskRepository(store),
        jobs=jobs,
        catalog=catalog,
        access=access,
        http=http,
        secret=settings.secret_key or "",
        callback_base_url=settings.callback_base_url,
        on_outcome=ErrorRecorder(store).on_dispatch,
        concurrency=max(1, workers),
        breaker=BreakerGate(runtime.db, ttl_s=float(os.environ.get("AIGEN_BREAKER_CACHE_S", "3"))),
    )
    notifier = StreamNotifier(runtime.db)
    await notifier.start()
    runtime.on_close(notifier.stop)
    service = GenerationService(
        store=store,
        jobs=jobs,
        catalog=catalog,
        access=access,
        notifier=notifier,
        wake_worker=dispatcher.wake,
        # Without a worker here, a created task is dispatched by another replica: nothing to hand.
        hand_over=dispatcher.hand_over if workers else None,
    )
    if workers:
        runtime.add_worker("dispatch", dispatcher.run)
    else:
        log.info("dispatch workers off (AIGEN_DISPATCH_WORKERS=0): this replica serves the API only")
    runtime.add_worker("projection:tasks", ProjectionRunner(runtime.db, TaskProjection()).run)
    runtime.extra["dispatcher"] = dispatcher
    return [
        (generation_pb2_grpc.add_GenerationServiceServicer_to_server, service, "aigen.v1.GenerationService")
    ]


SPEC = ServiceSpec(
    name="dispatcher",
    migration_packages=(("aigen.tasks", "tasks"), ("services.dispatcher", "dispatcher")),
    build=build,
)
