"""Services as real OS processes, for kill -9 scenarios."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aigen.grpcx.server import wait_serving
from aigen.launcher.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServiceProcess:
    name: str
    env: Mapping[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0

    @property
    def address(self) -> str:
        return self.env[f"AIGEN_{self.name.upper()}_ADDR"]

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=ROOT,
            env=dict(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def serving(self, timeout: float = 60.0) -> None:
        await wait_serving(self.address, timeout)


@dataclass
class ProcessStack:
    env: dict[str, str]
    log_dir: Path
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    @classmethod
    def create(cls, names: list[str], env: Mapping[str, str], log_dir: Path) -> ProcessStack:
        full = dict(os.environ)
        full.update(env)
        for name in ("catalog", "dispatcher", "poller", "storage", "studio"):
            full[f"AIGEN_{name.upper()}_ADDR"] = f"127.0.0.1:{free_port()}"
        log_dir.mkdir(parents=True, exist_ok=True)
        stack = cls(full, log_dir)
        for name in names:
            stack.services[name] = ServiceProcess(name, full, log_dir)
        return stack

    def add_replica(self, name: str, **env: str) -> ServiceProcess:
        """Another process of service `name` (not started): its own listen address and log
        folder, the stack's settings plus `env`."""
        number = 1 + sum(1 for service in self.services.values() if service.name == name)
        log_dir = self.log_dir / f"{name}-{number}"
        log_dir.mkdir(parents=True, exist_ok=True)
        address = {f"AIGEN_{name.upper()}_ADDR": f"127.0.0.1:{free_port()}"}
        replica = ServiceProcess(name, {**self.env, **address, **env}, log_dir)
        self.services[f"{name}-{number}"] = replica
        return replica

    async def start_all(self) -> None:
        for service in self.services.values():
            service.start()
        for service in self.services.values():
            await service.serving()

    def stop_all(self) -> None:
        for service in self.services.values():
            with contextlib.suppress(Exception):
                service.stop()

    def logs(self, name: str, tail: int = 4000) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""
