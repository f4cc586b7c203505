"""Poller wiring: the schedule consumer, the poll workers, callbacks over gRPC."""

from __future__ import annotations

import os

from aigen.bus.consumer import Consumer
from aigen.eventstore.store import EventStore
from aigen.grpcx.client import channel
from aigen.grpcx.server import Registration
from aigen.ops.recorder import ErrorRecorder
from aigen.providers.lean_http import provider_http_client
from aigen.runtime import Runtime, ServiceSpec
from aigen.secrets import Sealer
from aigen.tasks.access import ProviderAccess
from aigen.tasks.repository import TaskRepository
from aigen.v1 import catalog_pb2_grpc, generation_pb2_grpc
from aigen.workqueue import WorkQueue

from services.poller.fold import StreamFold
from services.poller.service import PollerService, PollSettings, PollWorker, Scheduler


def _float(name: str) -> float | None:
    value = os.environ.get(name, "")
    return float(value) if value else None


def settings_from_env() -> PollSettings:
    reconcile = os.environ.get("AIGEN_POLL_RECONCILE_AFTER_S", "3600")
    attempts = os.environ.get("AIGEN_POLL_MAX_ATTEMPTS", "")
    return PollSettings(
        reconcile_after_s=None if reconcile in ("", "off", "0") else float(reconcile),
        interval_override=_float("AIGEN_POLL_INTERVAL_S"),
        attempts_override=int(attempts) if attempts else None,
        duration_override=_float("AIGEN_POLL_MAX_DURATION_S"),
        replicas=int(os.environ.get("AIGEN_POLLER_REPLICAS", "1")),
        # Off only for load tests against the simulator, whose fakes have no real limits.
        respect_rate_limits=os.environ.get("AIGEN_POLL_RATE_LIMITS", "on") != "off",
    )


async def build(runtime: Runtime) -> list[Registration]:
    settings = runtime.settings
    catalog_channel = channel(settings.address_of("catalog"))
    runtime.on_close(catalog_channel.close)
    access = ProviderAccess(
        catalog_pb2_grpc.CatalogServiceStub(catalog_channel),
        Sealer(settings.secret_key) if settings.secret_key else None,
    )
    jobs = WorkQueue(runtime.db, "poll_jobs", lease_s=15.0, max_claims=10)
    concurrency = int(os.environ.get("AIGEN_POLLER_CONCURRENCY", "64"))
    # Status checks over a lean connection layer (see lean_http.py): without httpcore's walk over
    # every pooled connection per request, more checks in flight cost nothing extra and hide
    # latency; each keeps its connection alive for the next.
    http = provider_http_client(concurrency)
    runtime.on_close(http.aclose)
    poll_settings = settings_from_env()
    store = EventStore(runtime.db)
    worker = PollWorker(
        repo=TaskRepository(store),
        jobs=jobs,
        access=access,
        http=http,
        settings=poll_settings,
        concurrency=concurrency,
        prefetch=int(os.environ["AIGEN_POLLER_PREFETCH"])
        if os.environ.get("AIGEN_POLLER_PREFETCH")
        else None,
        on_outcome=ErrorRecorder(store).on_poll,
    )

    scheduler = Scheduler(jobs, poll_settings, fold=StreamFold(), prime=worker.prime, wake=worker.wake)

    spec = next(c for c in runtime.topology.consumers if c.durable.endswith("poller-dispatched"))
    # Most task events are declined by the triage as they are fetched, and a scheduled one is a
    # small insert: wider than the default, so a burst of dispatched tasks is scheduled while the
    # checks run.
    consumer = Consumer(
        runtime.db,
        runtime.nc,
        spec,
        scheduler,
        triage=scheduler.triage,
        batch=int(os.environ.get("AIGEN_POLLER_SCHEDULE_BATCH", "128")),
        concurrency=int(os.environ.get("AIGEN_POLLER_SCHEDULE_CONCURRENCY", "32")),
    )
    runtime.add_worker("schedule", consumer.run)
    runtime.add_worker("poll", worker.run)
    runtime.extra["worker"] = worker
    service = PollerService(worker, settings.secret_key or "")
    return [(generation_pb2_grpc.add_PollerServiceServicer_to_server, service, "aigen.v1.PollerService")]


SPEC = ServiceSpec(
    name="poller",
    migration_packages=(("aigen.tasks", "tasks"), ("services.poller", "poller")),
    build=build,
)
