"""The start-up and shut-down every service shares.

A service describes itself (`ServiceSpec`: its migrations, its gRPC servicers, its background
workers); `run_service` does the rest in the same order everywhere: settings → logs → database
(fail fast, naming it) → migrations → NATS (fail fast, naming it) → declared topology → gRPC
server → workers (relay, projections, consumers) → wait for a signal → graceful stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client as NATS

from aigen import eventloop, logs, metrics, tracing
from aigen.bus import topology as topo
from aigen.bus.connection import connect as connect_nats
from aigen.bus.relay import Relay
from aigen.config import ConfigError, Settings
from aigen.db import migrations
from aigen.db.pool import Database, StartupError
from aigen.db.pool import connect as connect_db
from aigen.grpcx.server import GrpcServer, Registration, create_server, serve

log = logging.getLogger("aigen.runtime")

Worker = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class Runtime:
    """What a running service has at hand; handed to its builder."""

    name: str
    settings: Settings
    db: Database
    nc: NATS
    topology: topo.Topology
    workers: list[tuple[str, Worker]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add_worker(self, name: str, worker: Worker) -> None:
        self.workers.append((name, worker))

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        self.closers.append(closer)


Builder = Callable[[Runtime], Awaitable[Sequence[Registration]]]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    migration_packages: Sequence[tuple[str, str]]  # (package with a migrations/ dir, component)
    build: Builder
    default_port: int = 0


ALWAYS = (("aigen.eventstore", "eventstore"),)


async def prepare_database(settings: Settings, packages: Sequence[tuple[str, str]]) -> Database:
    db = await connect_db(settings.require_database_url(), settings.db_schema)
    found: list[migrations.Migration] = []
    for package, component in (*ALWAYS, *packages):
        found.extend(migrations.load(package, component))
    applied = await migrations.apply(db, found)
    for m in applied:
        log.info("applied migration %s %04d_%s", m.component, m.version, m.name)
    return db


async def start(spec: ServiceSpec, settings: Settings) -> tuple[Runtime, GrpcServer]:
    db = await prepare_database(settings, spec.migration_packages)
    try:
        nc = await connect_nats(settings.require_nats_url(), name=f"aigen-{spec.name}")
    except BaseException:
        await db.close()
        raise
    topology = topo.Topology(settings.nats_namespace)
    topology = topo.Topology(settings.nats_namespace, topo.system_consumers(topology))
    await topo.ensure(nc.jetstream(), topology.streams(), topology.consumers)
    runtime = Runtime(spec.name, settings, db, nc, topology)
    if settings.run_relay:
        relay = Relay(db, nc, topology, standby_s=settings.relay_standby_s)
        runtime.add_worker("relay", relay.run)
        runtime.extra["relay"] = relay
    registrations = await spec.build(runtime)
    if settings.listen:
        listen = settings.listen
    elif spec.name in settings.addresses:
        listen = settings.address_of(spec.name)
    else:
        listen = "127.0.0.1:0"
    server = create_server(registrations, address=listen, service=spec.name)
    return runtime, server


async def stop(runtime: Runtime) -> None:
    for closer in reversed(runtime.closers):
        with contextlib.suppress(Exception):
            await closer()
    with contextlib.suppress(Exception):
        await runtime.nc.drain()
    await runtime.db.close()


async def run_async(spec: ServiceSpec, settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env()
    runtime, server = await start(spec, settings)
    stop_event = asyncio.Event()
    tasks: list[asyncio.Task[None]] = [
        asyncio.ensure_future(worker(stop_event)) for _, worker in runtime.workers
    ]
    try:
        await serve(server, stop=stop_event)
    finally:
        stop_event.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await stop(runtime)


def main(spec: ServiceSpec) -> None:
    """Console entry of a service: exit code 2 with one clear line when a dependency is wrong."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"aigen-{spec.name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.setup_logging(spec.name, settings.log_level, settings.log_format)
    tracing.setup_tracing(spec.name)
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    try:
        eventloop.run(run_async(spec, settings), settings.event_loop)
    except (StartupError, ConfigError) as exc:
        log.error("%s", exc)
        print(f"aigen-{spec.name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass
