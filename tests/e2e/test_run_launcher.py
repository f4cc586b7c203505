"""`aigen run` from an empty AIGEN_HOME, with no database or NATS configured: everything comes up
on embedded servers, every service reports SERVING, Ctrl-C stops it all and leaves no process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from aigen.grpcx.server import wait_serving

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def launch(home: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGEN_")}
    env["AIGEN_HOME"] = str(home)
    return subprocess.Popen(
        [sys.executable, "-m", "aigen.cli.main", "run", "--port", "0", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


class Output:
    """Collects a child's output lines on a thread (pipes must keep draining)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._drain, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _drain(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            self.lines.append(line.rstrip("\n"))


def read_until_up(process: subprocess.Popen[str], timeout: float = 120.0) -> list[str]:
    output = Output(process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(line.startswith("Ctrl-C stops everything") for line in output.lines):
            return output.lines
        if process.poll() is not None:
            time.sleep(0.2)
            raise AssertionError("aigen run exited early:\n" + "\n".join(output.lines[-60:]))
        time.sleep(0.1)
    raise AssertionError("aigen run did not come up:\n" + "\n".join(output.lines[-60:]))


def family(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


async def check_health(lines: list[str]) -> dict[str, str]:
    endpoints = {}
    start = lines.index("aigen is up:")
    for line in lines[start + 1 :]:
        match = re.match(r"^\s+(\w+)\s+(\S+)$", line)
        if match:
            endpoints[match.group(1)] = match.group(2)
    for name, target in endpoints.items():
        if target.startswith("http"):
            async with httpx.AsyncClient(timeout=5) as client:
                assert (await client.get(target)).status_code == 200, name
        else:
            await wait_serving(target, timeout=10)
    return endpoints


async def check_metrics(lines: list[str]) -> None:
    """Every service serves Prometheus text on the port the banner names."""
    [listed] = [line for line in lines if line.strip().startswith("/metrics")]
    ports = re.findall(r"(\w+) :(\d+)", listed)
    assert {"catalog", "dispatcher", "poller", "ops"} <= {name for name, _ in ports}
    async with httpx.AsyncClient(timeout=5) as client:
        for name, port in ports:
            reply = await client.get(f"http://127.0.0.1:{port}/metrics")
            assert reply.status_code == 200 and "aigen_grpc_requests_total" in reply.text, name


def test_aigen_run_reaches_serving_and_stops_cleanly(tmp_path):
    home = tmp_path / "home"
    process = launch(home)
    try:
        lines = read_until_up(process)
        children = family(process.pid)
        endpoints = asyncio.run(check_health(lines))
        assert {"catalog", "dispatcher", "poller", "ops"} <= set(endpoints)
        asyncio.run(check_metrics(lines))
        assert (home / "postgres" / "PG_VERSION").exists() and (home / "nats" / "nats.conf").exists()
        assert (home / "secret.key").stat().st_mode & 0o777 == 0o600
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
        time.sleep(0.5)
        leftover = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert leftover == [], [p.cmdline() for p in leftover]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    # A second run reuses the data (the database is not initialised again).
    again = launch(home)
    try:
        lines = read_until_up(again)
        assert not any("initdb" in line for line in lines)
        again.send_signal(signal.SIGINT)
        assert again.wait(60) == 0
    finally:
        if again.poll() is None:
            os.killpg(again.pid, signal.SIGKILL)
