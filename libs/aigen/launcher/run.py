"""`aigen run`: the whole system on one machine.

With AIGEN_DATABASE_URL / AIGEN_NATS_URL unset it starts embedded PostgreSQL and NATS with data
under AIGEN_HOME (default ./.aigen), so a second run finds yesterday's tasks. Then it starts every
service, the local provider (and, with --simulate, fakes of every commercial provider with each
provider pointed at its fake), waits until all report healthy, and prints where things are.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aigen import secrets
from aigen.launcher.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from aigen.launcher.supervisor import ChildSpec, Supervisor

GRPC_SERVICES = ("catalog", "dispatcher", "poller", "storage", "studio", "ops")


# The processes that take the hot path (submissions, dispatches, checks, REST) stand by for the
# outbox relay: it leads in a lighter process whenever one runs (decisions.md).
RELAY_STANDBY = frozenset({"dispatcher", "poller", "gateway"})
RELAY_STANDBY_S = "5"


def relay_standby(name: str, env: Mapping[str, str]) -> dict[str, str]:
    """The relay standby `aigen run` gives the process of service `name`."""
    if name not in RELAY_STANDBY:
        return {}
    return {"AIGEN_RELAY_STANDBY_S": env.get("AIGEN_RELAY_STANDBY_S", RELAY_STANDBY_S)}


def service_exists(name: str) -> bool:
    return importlib.util.find_spec(f"services.{name}.__main__") is not None


def local_provider_exists() -> bool:
    return importlib.util.find_spec("aigen.providers.local.__main__") is not None


@dataclass
class RunOptions:
    home: Path
    gateway_port: int = 8080
    simulate: bool = False
    services: Sequence[str] | None = None  # None: every service that exists
    extra_env: dict[str, str] = field(default_factory=dict)


def _port_or_free(preferred: int) -> int:
    import socket

    if preferred == 0:
        return free_port()
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def plan(options: RunOptions, env: dict[str, str]) -> list[ChildSpec]:
    """The processes to start and the environment they share (mutates `env`)."""
    python = sys.executable
    wanted = [s for s in (options.services or (*GRPC_SERVICES, "gateway")) if service_exists(s)]
    children: list[ChildSpec] = []
    for name in GRPC_SERVICES:
        if name in wanted:
            env.setdefault(f"AIGEN_{name.upper()}_ADDR", f"127.0.0.1:{free_port()}")
    if local_provider_exists():
        port = free_port()
        env.setdefault("AIGEN_PROVIDER_LOCAL_ENDPOINT", f"http://127.0.0.1:{port}")
        children.append(
            ChildSpec(
                "local",
                [
                    python,
                    "-m",
                    "aigen.providers.local",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(options.home / "local-provider"),
                ],
                health=f"http://127.0.0.1:{port}/v1/health",
            )
        )
    if options.simulate:
        port = free_port()
        env.setdefault("AIGEN_SIMULATOR_URL", f"http://127.0.0.1:{port}")
        children.append(
            ChildSpec(
                "simulator",
                [python, "-m", "aigen.cli.main", "simulate", "--port", str(port), "--print-env", "no"],
                health=f"http://127.0.0.1:{port}/healthz",
            )
        )
        from aigen.simulator.catalog import simulator_env

        for key, value in simulator_env(f"http://127.0.0.1:{port}").items():
            env.setdefault(key, value)
    for name in GRPC_SERVICES:
        if name in wanted:
            # Each process its own /metrics port: one shared AIGEN_METRICS_PORT would collide.
            children.append(
                ChildSpec(
                    name,
                    [python, "-m", f"services.{name}"],
                    env={"AIGEN_METRICS_PORT": str(free_port()), **relay_standby(name, env)},
                    health=env[f"AIGEN_{name.upper()}_ADDR"],
                )
            )
    if "gateway" in wanted:
        env.setdefault("AIGEN_GATEWAY_PORT", str(options.gateway_port))
        env.setdefault("AIGEN_GATEWAY_URL", f"http://127.0.0.1:{env['AIGEN_GATEWAY_PORT']}")
        children.append(
            ChildSpec(
                "gateway",
                [python, "-m", "services.gateway"],
                env=relay_standby("gateway", env),
                health=env["AIGEN_GATEWAY_URL"] + "/healthz",
            )
        )
        if options.simulate:
            # The fakes run on this machine and reach the gateway, so simulated tasks also finish
            # by callback, as they do in production. Real providers cannot reach a loopback URL:
            # a plain run asks for no callbacks unless AIGEN_CALLBACK_BASE_URL names a public one.
            env.setdefault("AIGEN_CALLBACK_BASE_URL", env["AIGEN_GATEWAY_URL"])
    return children


async def run(options: RunOptions) -> int:
    home = options.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **options.extra_env, "AIGEN_HOME": str(home)}
    env.setdefault("AIGEN_LOG_FORMAT", "text")
    postgres: EmbeddedPostgres | None = None
    nats_server: EmbeddedNats | None = None
    supervisor: Supervisor | None = None
    try:
        if not env.get("AIGEN_DATABASE_URL"):
            postgres = EmbeddedPostgres(home / "postgres")
            env["AIGEN_DATABASE_URL"] = await asyncio.to_thread(postgres.start)
            print(f"aigen: embedded PostgreSQL, data in {postgres.data_dir}", flush=True)
        if not env.get("AIGEN_NATS_URL"):
            nats_server = EmbeddedNats(home / "nats")
            env["AIGEN_NATS_URL"] = await asyncio.to_thread(nats_server.start)
            print(
                f"aigen: embedded NATS at {env['AIGEN_NATS_URL']}, data in {nats_server.data_dir}", flush=True
            )
        if not env.get("AIGEN_SECRET_KEY"):
            env["AIGEN_SECRET_KEY"] = secrets.load_or_create(home)
        env.setdefault("AIGEN_STORAGE_DIR", str(home / "objects"))
        # On one machine the local provider and the simulator serve results from loopback.
        env.setdefault("AIGEN_NETGUARD_ALLOW", "127.0.0.1,::1")
        if "AIGEN_GATEWAY_PORT" not in env:
            options.gateway_port = _port_or_free(options.gateway_port)
        children = plan(options, env)
        supervisor = Supervisor(children, base_env=env)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, supervisor.stopping.set)
        await supervisor.start()
        # Watch from the first moment: a service that dies while starting is restarted too.
        watcher = asyncio.create_task(supervisor.watch())
        healthy = asyncio.ensure_future(supervisor.wait_healthy(90))
        stopping = asyncio.ensure_future(supervisor.stopping.wait())
        done, _ = await asyncio.wait([healthy, stopping], return_when=asyncio.FIRST_COMPLETED)
        if healthy in done:
            stopping.cancel()
            try:
                healthy.result()
            except TimeoutError as exc:
                print(f"aigen: {exc}; stopping", flush=True)
                supervisor.failed = str(exc)
                supervisor.stopping.set()
            else:
                _banner(children, env)
        else:
            healthy.cancel()
        await watcher
        return 1 if supervisor.failed else 0
    finally:
        if supervisor is not None:
            print("aigen: stopping services…", flush=True)
            await supervisor.stop()
        if nats_server is not None:
            await asyncio.to_thread(nats_server.stop)
        if postgres is not None:
            await asyncio.to_thread(postgres.stop)
        print("aigen: stopped", flush=True)


def _banner(children: Sequence[ChildSpec], env: dict[str, str]) -> None:
    lines = ["", "aigen is up:"]
    for child in children:
        lines.append(f"  {child.name:<10} {child.health or ''}")
    scraped = [f"{c.name} :{c.env['AIGEN_METRICS_PORT']}" for c in children if "AIGEN_METRICS_PORT" in c.env]
    if scraped:
        lines.append(f"  /metrics   {'  '.join(scraped)}")
    if "AIGEN_GATEWAY_URL" in env:
        lines.append(f"  REST API   {env['AIGEN_GATEWAY_URL']}/api/external/ai-generation  (docs: /docs)")
        token = "AIGEN_ADMIN_TOKEN" if env.get("AIGEN_ADMIN_TOKEN") else f"{env['AIGEN_HOME']}/admin-token"
        lines.append(f"  admin UI   {env['AIGEN_GATEWAY_URL']}/ui/  (admin token: {token})")
    lines.append("Ctrl-C stops everything.")
    print("\n".join(lines), flush=True)


def main(options: RunOptions) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(options))
    return 130
