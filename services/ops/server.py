"""Ops wiring: health checks, error log, alerts (gRPC), their projections, the evaluator, the
alert fan-out consumer and the alert webhook sender."""

from __future__ import annotations

from aigen.bus.consumer import Consumer
from aigen.eventstore.store import EventStore
from aigen.grpcx.client import channel
from aigen.grpcx.server import Registration
from aigen.netguard import NetGuard
from aigen.projections.runner import ProjectionRunner
from aigen.runtime import Runtime, ServiceSpec
from aigen.v1 import catalog_pb2_grpc, ops_pb2_grpc
from aigen.workqueue import WorkQueue

from services.ops.alerts import AlertFanout, AlertWebhookSender
from services.ops.evaluator import Evaluator
from services.ops.health import Prober
from services.ops.projections import (
    AlertProjection,
    ErrorLogProjection,
    OpsTaskProjection,
    ProviderHealthProjection,
)
from services.ops.repository import OpsRepository
from services.ops.service import ErrorLogService, HealthCheckService, SystemAlertService
from services.ops.settings import OpsSettings


async def build(runtime: Runtime) -> list[Registration]:
    settings = OpsSettings.from_env()
    catalog_channel = channel(runtime.settings.address_of("catalog"), default_timeout=150.0)
    runtime.on_close(catalog_channel.close)
    catalog = catalog_pb2_grpc.CatalogServiceStub(catalog_channel)
    store = EventStore(runtime.db)
    repo = OpsRepository(runtime.db)
    prober = Prober(store, repo, catalog)
    evaluator = Evaluator(db=runtime.db, store=store, repo=repo, prober=prober, settings=settings)
    for projection in (
        OpsTaskProjection(),
        ErrorLogProjection(),
        ProviderHealthProjection(),
        AlertProjection(),
    ):
        runtime.add_worker(f"projection:{projection.name}", ProjectionRunner(runtime.db, projection).run)
    runtime.add_worker("evaluate", evaluator.run)

    jobs = WorkQueue(runtime.db, "ops_webhook_jobs", lease_s=30.0, max_claims=10)
    fanout = AlertFanout(
        js=runtime.nc.jetstream(), topology=runtime.topology, jobs=jobs, webhooks=settings.webhooks
    )
    spec = next(c for c in runtime.topology.consumers if c.durable.endswith("ops-alerts"))
    runtime.add_worker("alerts", Consumer(runtime.db, runtime.nc, spec, fanout).run)
    guard = NetGuard.from_env(max_bytes=64 * 1024, connect_timeout_s=5.0, read_timeout_s=10.0)
    sender = AlertWebhookSender(runtime.db, jobs, guard, schedule=settings.webhook_schedule)
    runtime.add_worker("alert-webhooks", sender.run)

    runtime.extra.update(
        {"evaluator": evaluator, "prober": prober, "fanout": fanout, "webhooks": sender, "settings": settings}
    )
    return [
        (
            ops_pb2_grpc.add_HealthCheckServiceServicer_to_server,
            HealthCheckService(prober, repo),
            "aigen.v1.HealthCheckService",
        ),
        (
            ops_pb2_grpc.add_ErrorLogServiceServicer_to_server,
            ErrorLogService(repo),
            "aigen.v1.ErrorLogService",
        ),
        (
            ops_pb2_grpc.add_SystemAlertServiceServicer_to_server,
            SystemAlertService(repo, settings),
            "aigen.v1.SystemAlertService",
        ),
    ]


SPEC = ServiceSpec(name="ops", migration_packages=(("services.ops", "ops"),), build=build)
