"""Runs the services as child processes in one terminal, with prefixed, coloured output.

Each child gets the same environment (database, NATS, addresses of the others). A child that
dies is restarted with backoff (a few times, then the whole run stops, loudly). Ctrl-C or SIGTERM
sends SIGTERM to every child, waits for them to finish their graceful shutdown, and kills what is
left after a timeout, so no process outlives the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

COLOURS = ("36", "32", "35", "33", "34", "96", "92", "95", "93", "94")


@dataclass
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    health: str | None = None  # gRPC address to wait for SERVING, or an http(s) URL to GET


@dataclass
class Child:
    spec: ChildSpec
    colour: str
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    pump: asyncio.Task[None] | None = None


class Supervisor:
    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        base_env: Mapping[str, str] | None = None,
        max_restarts: int = 5,
        stop_timeout: float = 20.0,
        out: object = None,
    ) -> None:
        width = max((len(c.name) for c in children), default=8)
        self.width = width
        self.children = [Child(c, COLOURS[i % len(COLOURS)]) for i, c in enumerate(children)]
        self.base_env = dict(base_env if base_env is not None else os.environ)
        self.max_restarts = max_restarts
        self.stop_timeout = stop_timeout
        self.stopping = asyncio.Event()
        self.failed: str | None = None
        self._tty = sys.stdout.isatty()

    def say(self, name: str, line: str, colour: str = "1") -> None:
        prefix = f"{name:<{self.width}} |"
        if self._tty:
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
        sys.stdout.write(f"{prefix} {line}\n")
        sys.stdout.flush()

    async def _spawn(self, child: Child) -> None:
        env = {**self.base_env, **child.spec.env, "PYTHONUNBUFFERED": "1"}
        child.process = await asyncio.create_subprocess_exec(
            *child.spec.argv,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # our Ctrl-C is delivered by us, as SIGTERM, in order
        )
        child.started_at = time.monotonic()
        child.pump = asyncio.create_task(self._pump(child, child.process))

    async def _pump(self, child: Child, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            raw = await process.stdout.readline()
            if not raw:
                return
            self.say(child.spec.name, raw.decode("utf-8", "replace").rstrip(), child.colour)

    async def start(self) -> None:
        for child in self.children:
            await self._spawn(child)

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        from aigen.grpcx.server import wait_serving

        async def one(child: Child) -> None:
            target = child.spec.health
            if not target:
                return
            if target.startswith(("http://", "https://")):
                await _wait_http(target, timeout)
            else:
                await wait_serving(target, timeout)

        await asyncio.gather(*(one(c) for c in self.children))

    async def watch(self) -> None:
        """Restart children that die, until stopping; gives up after `max_restarts` quick deaths."""
        while not self.stopping.is_set():
            waits = {
                asyncio.ensure_future(c.process.wait()): c for c in self.children if c.process is not None
            }
            stop_wait = asyncio.ensure_future(self.stopping.wait())
            done, _ = await asyncio.wait([*waits, stop_wait], return_when=asyncio.FIRST_COMPLETED)
            for fut in waits:
                if fut not in done:
                    fut.cancel()
            if stop_wait in done:
                return
            stop_wait.cancel()
            for fut in done:
                child = waits[fut]
                code = fut.result()
                if child.pump:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(child.pump, 2)
                if self.stopping.is_set():
                    return
                if time.monotonic() - child.started_at > 60:
                    child.restarts = 0  # it ran fine for a while: a fresh budget
                child.restarts += 1
                if child.restarts > self.max_restarts:
                    self.failed = f"{child.spec.name} kept exiting (last code {code})"
                    self.say(
                        child.spec.name,
                        f"exited with code {code}; giving up after {self.max_restarts} restarts",
                    )
                    self.stopping.set()
                    return
                delay = min(10.0, 0.5 * 2 ** (child.restarts - 1))
                self.say(child.spec.name, f"exited with code {code}; restarting in {delay:.1f}s")
                await asyncio.sleep(delay)
                await self._spawn(child)

    async def stop(self) -> None:
        self.stopping.set()
        alive = [c for c in self.children if c.process is not None and c.process.returncode is None]
        for child in alive:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in alive:
            assert child.process is not None
            remaining = max(0.1, deadline - time.monotonic())
            try:
                await asyncio.wait_for(child.process.wait(), remaining)
            except TimeoutError:
                self.say(child.spec.name, "did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                await child.process.wait()
            if child.pump:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(child.pump, 2)


async def _wait_http(url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1.0) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code < 500:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")
            await asyncio.sleep(0.2)
