"""The services of the system, started in-process against real PostgreSQL and NATS.

Each service gets its own runtime (pools, NATS connection, gRPC server on a free port) exactly
as `python -m services.<name>` would, all in the test's event loop, sharing the test's schema and
NATS namespace. For kill -9 scenarios use `tests/support/processes.py` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aigen.config import Settings
from aigen.grpcx.client import channel
from aigen.grpcx.server import GrpcServer
from aigen.runtime import Runtime, ServiceSpec, start, stop

ORDER = ("catalog", "dispatcher", "poller", "storage", "studio", "ops")
DEFAULT_SERVICES = ("catalog", "dispatcher", "poller", "storage", "studio")


def spec_of(name: str) -> ServiceSpec:
    spec: ServiceSpec = importlib.import_module(f"services.{name}.server").SPEC
    return spec


@dataclass
class Stack:
    settings: Settings
    runtimes: dict[str, Runtime] = field(default_factory=dict)
    servers: dict[str, GrpcServer] = field(default_factory=dict)
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    channels: list[Any] = field(default_factory=list)

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.servers[name].port}"

    def channel(self, name: str) -> Any:
        ch = channel(self.address(name))
        self.channels.append(ch)
        return ch

    def extra(self, service: str, key: str) -> Any:
        return self.runtimes[service].extra[key]

    async def add_replica(self, name: str) -> Runtime:
        """Another process of a service (say a second poller) sharing the same database and NATS."""
        settings = self.settings.with_(listen="127.0.0.1:0", run_relay=False)
        runtime, server = await start(spec_of(name), settings)
        await server.start()
        index = sum(1 for key in self.runtimes if key.startswith(name))
        self.runtimes[f"{name}#{index}"] = runtime
        self.servers[f"{name}#{index}"] = server
        for worker_name, worker in runtime.workers:
            self.tasks.append(
                asyncio.create_task(worker(self.stop_event), name=f"{name}#{index}:{worker_name}")
            )
        return runtime

    async def close(self) -> None:
        self.stop_event.set()
        for ch in self.channels:
            with contextlib.suppress(Exception):
                await ch.close()
        for server in self.servers.values():
            with contextlib.suppress(Exception):
                await server.stop(0)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for runtime in self.runtimes.values():
            with contextlib.suppress(Exception):
                await stop(runtime)


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings, services: Sequence[str] = DEFAULT_SERVICES
) -> AsyncIterator[Stack]:
    stack = Stack(settings)
    addresses = dict(settings.addresses)
    try:
        for name in ORDER:
            if name not in services:
                continue
            service_settings = settings.with_(
                addresses=dict(addresses), listen="127.0.0.1:0", run_relay=name == "catalog"
            )
            runtime, server = await start(spec_of(name), service_settings)
            await server.start()
            stack.runtimes[name] = runtime
            stack.servers[name] = server
            addresses[name] = f"127.0.0.1:{server.port}"
            for worker_name, worker in runtime.workers:
                stack.tasks.append(
                    asyncio.create_task(worker(stack.stop_event), name=f"{name}:{worker_name}")
                )
        stack.settings = settings.with_(addresses=addresses)
        yield stack
    finally:
        await stack.close()
