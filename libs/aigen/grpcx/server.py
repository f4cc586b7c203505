"""Creating and running a gRPC server the same way in every service.

`create_server` binds and wires health and reflection; `serve` runs until SIGTERM/SIGINT, then
shuts down gracefully: health turns NOT_SERVING at once (load balancers stop sending), in-flight
calls get `grace` seconds to finish, new calls are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from aigen.grpcx.interceptors import ServerInterceptor

log = logging.getLogger("aigen.grpc")

# (add_XServicer_to_server, servicer, full service name)
Registration = tuple[Callable[[Any, aio.Server], None], Any, str]


@dataclass
class GrpcServer:
    server: aio.Server
    port: int
    health: HealthServicer
    service_names: Sequence[str]
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def start(self) -> None:
        await self.server.start()
        for name in (*self.service_names, ""):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = 10.0, drain: float = 0.0) -> None:
        """NOT_SERVING at once; keep answering for `drain` seconds so health checkers see it and
        stop routing here; then refuse new calls and give in-flight ones `grace` seconds."""
        await self.health.enter_graceful_shutdown()
        if drain > 0:
            await asyncio.sleep(drain)
        await self.server.stop(grace)
        for callback in self.on_stop:
            await callback()


def create_server(
    registrations: Sequence[Registration],
    *,
    address: str = "127.0.0.1:0",
    service: str = "aigen",
    max_message_mb: int = 64,
) -> GrpcServer:
    """A server bound to `address` (port 0: a free port), with health checking and reflection."""
    server = aio.server(
        interceptors=[ServerInterceptor(service)],
        options=[
            ("grpc.max_receive_message_length", max_message_mb * 1024 * 1024),
            ("grpc.max_send_message_length", max_message_mb * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
    )
    names = []
    for add, servicer, name in registrations:
        add(servicer, server)
        names.append(name)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return GrpcServer(server, port, health, names)


async def serve(
    server: GrpcServer, *, grace: float = 10.0, drain: float = 1.0, stop: asyncio.Event | None = None
) -> None:
    """Run until a signal (or `stop`), then stop gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    log.info("serving %s on port %d", ", ".join(server.service_names), server.port)
    await stop.wait()
    log.info("shutting down: health NOT_SERVING, waiting up to %.0fs for calls in flight", drain + grace)
    await server.stop(grace, drain)


async def wait_serving(address: str, timeout: float = 30.0, service: str = "") -> None:
    """Block until the server at `address` reports SERVING (used by the launcher and tests)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{address} did not become SERVING within {timeout:.0f}s")
            await asyncio.sleep(0.2)
