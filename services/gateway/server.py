"""Gateway wiring and start-up: the same runtime pieces as every service (settings, logs,
database and migrations, NATS and the declared topology, the outbox relay), then its own
workers (task reactions, ledger projection, webhook sender, reservation sweeper) and an HTTP
server instead of a gRPC one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from aigen import objectstore
from aigen.bus import topology as topo
from aigen.bus.batches import BatchConsumer
from aigen.bus.connection import connect as connect_nats
from aigen.bus.relay import Relay
from aigen.config import ConfigError, Settings
from aigen.eventstore.store import EventStore
from aigen.grpcx.client import channel
from aigen.netguard import AllowList, NetGuard
from aigen.projections.runner import ProjectionRunner
from aigen.runtime import Runtime, Worker, prepare_database, stop
from aigen.secrets import Sealer
from aigen.v1 import catalog_pb2_grpc, generation_pb2_grpc, ops_pb2_grpc, storage_pb2_grpc, studio_pb2_grpc
from aigen.workqueue import WorkQueue
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.deliveries import WebhookSender
from services.gateway.deps import Gateway, OpsStubs, Services
from services.gateway.holds import Holds
from services.gateway.key_store import KeyStore
from services.gateway.keys import KeyHasher, deployment_webhook_secret
from services.gateway.ledger import LedgerReactions
from services.gateway.ledger_queries import LedgerQueries
from services.gateway.links import ResultLinks
from services.gateway.projection import LedgerProjection
from services.gateway.ratelimit import RateLimiter
from services.gateway.reactions import TaskReactions
from services.gateway.settings import GatewaySettings

log = logging.getLogger("aigen.gateway")

MIGRATIONS = (("services.gateway", "gateway"),)
CONSUMER = "gateway-webhooks"


@dataclass
class GatewayProcess:
    runtime: Runtime
    gateway: Gateway
    app: FastAPI


async def start(settings: Settings, gw_settings: GatewaySettings) -> GatewayProcess:
    if not settings.secret_key:
        raise ConfigError(
            "AIGEN_SECRET_KEY is not set: API keys are hashed and webhook secrets sealed with it"
        )
    db = await prepare_database(settings, MIGRATIONS)
    try:
        nc = await connect_nats(settings.require_nats_url(), name="aigen-gateway")
    except BaseException:
        await db.close()
        raise
    topology = topo.Topology(settings.nats_namespace)
    topology = topo.Topology(settings.nats_namespace, topo.system_consumers(topology))
    await topo.ensure(nc.jetstream(), topology.streams(), topology.consumers)
    runtime = Runtime("gateway", settings, db, nc, topology)
    if settings.run_relay:
        runtime.add_worker("relay", Relay(db, nc, topology, standby_s=settings.relay_standby_s).run)
    gateway = await build(runtime, gw_settings)
    return GatewayProcess(runtime, gateway, create_app(gateway))


def _stub_channel(runtime: Runtime, service: str) -> object:
    ch = channel(runtime.settings.address_of(service))
    runtime.on_close(ch.close)
    return ch


def _ops_stubs(runtime: Runtime) -> OpsStubs:
    ch = _stub_channel(runtime, "ops")
    return OpsStubs(
        health=ops_pb2_grpc.HealthCheckServiceStub(ch),
        errors=ops_pb2_grpc.ErrorLogServiceStub(ch),
        alerts=ops_pb2_grpc.SystemAlertServiceStub(ch),
    )


async def build(runtime: Runtime, gw_settings: GatewaySettings) -> Gateway:
    settings = runtime.settings
    secret = settings.secret_key or ""
    services = Services(
        catalog=catalog_pb2_grpc.CatalogServiceStub(_stub_channel(runtime, "catalog")),
        generation=generation_pb2_grpc.GenerationServiceStub(_stub_channel(runtime, "dispatcher")),
        poller=generation_pb2_grpc.PollerServiceStub(_stub_channel(runtime, "poller")),
        storage=storage_pb2_grpc.StorageServiceStub(_stub_channel(runtime, "storage")),
        studio=studio_pb2_grpc.StudioServiceStub(_stub_channel(runtime, "studio")),
        ops=_ops_stubs(runtime),
    )
    env = {"AIGEN_SECRET_KEY": secret, "AIGEN_GATEWAY_URL": settings.gateway_url}
    signer = objectstore.url_signer_from_env(env)
    keys = KeyStore(runtime.db, KeyHasher(secret), Sealer(secret), cache_s=gw_settings.key_cache_s)
    guard = NetGuard(
        allow=AllowList.from_env(),
        max_bytes=64 * 1024,
        connect_timeout_s=min(5.0, gw_settings.webhook_timeout_s),
        read_timeout_s=gw_settings.webhook_timeout_s,
        max_redirects=0,
        user_agent="aigen-webhooks/1",
    )
    gateway = Gateway(
        settings=gw_settings,
        public_url=settings.gateway_url,
        db=runtime.db,
        services=services,
        keys=keys,
        limiter=RateLimiter(),
        holds=Holds(runtime.db),
        ledger=LedgerQueries(runtime.db),
        links=ResultLinks(signer, services.storage, ttl_s=gw_settings.file_url_ttl_s),
        signer=signer,
        guard=guard,
        callback_secret=secret,
    )

    webhook_jobs = WorkQueue(
        runtime.db, "gateway_webhook_jobs", lease_s=max(30.0, gw_settings.webhook_timeout_s * 3)
    )
    reactions = TaskReactions(LedgerReactions(EventStore(runtime.db)), webhook_jobs)
    spec = next(
        c for c in runtime.topology.consumers if c.durable == runtime.topology.consumer(CONSUMER, "").durable
    )
    consumer = BatchConsumer(runtime.db, runtime.nc, spec, reactions)
    deployment_secret = deployment_webhook_secret(secret)

    async def secret_of(key_id: str | None) -> str | None:
        return await keys.webhook_secret(key_id) if key_id else deployment_secret

    sender = WebhookSender(
        runtime.db, webhook_jobs, guard, secret_of, schedule=gw_settings.webhook_schedule,
        concurrency=gw_settings.webhook_concurrency,
    )  # fmt: skip

    async def sweep(stop_event: asyncio.Event) -> None:
        while not stop_event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), min(60.0, gw_settings.reservation_timeout_s / 2))
            if stop_event.is_set():
                return
            try:
                await gateway.holds.sweep(gw_settings.reservation_timeout_s)
            except Exception as exc:
                log.warning("reservation sweep failed: %s", exc)

    runtime.add_worker(CONSUMER, consumer.run)
    runtime.add_worker("projection:ledger", ProjectionRunner(runtime.db, LedgerProjection()).run)
    runtime.add_worker("webhooks", sender.run)
    runtime.add_worker("reservations", sweep)
    runtime.extra.update(consumer=consumer, sender=sender)
    return gateway


async def _run(worker: Worker, stop_event: asyncio.Event) -> None:
    await worker(stop_event)


@contextlib.asynccontextmanager
async def running(process: GatewayProcess) -> AsyncIterator[asyncio.Event]:
    """Run the process's workers until the block exits."""
    stop_event = asyncio.Event()
    tasks = [
        asyncio.create_task(_run(worker, stop_event), name=f"gateway:{name}")
        for name, worker in process.runtime.workers
    ]
    try:
        yield stop_event
    finally:
        stop_event.set()
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def serve(settings: Settings, gw_settings: GatewaySettings) -> None:
    process = await start(settings, gw_settings)
    if gw_settings.admin_token_file is not None:
        log.info("admin token: in %s (AIGEN_ADMIN_TOKEN overrides it)", gw_settings.admin_token_file)
    config = uvicorn.Config(
        process.app,
        host=gw_settings.host,
        port=gw_settings.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=20,
    )
    server = uvicorn.Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    try:
        async with running(process):
            log.info(
                "gateway listening on http://%s:%d (public URL %s)",
                gw_settings.host,
                gw_settings.port,
                settings.gateway_url,
            )
            await server.serve()
    finally:
        await stop(process.runtime)
