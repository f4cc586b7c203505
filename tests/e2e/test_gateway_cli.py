"""End to end: `aigen run --simulate` as real processes, then the `aigen` CLI as a user runs it —
a key made with the admin token `aigen run` generated, `generate --wait --out` producing files
from the local provider and from a simulated provider, and `aigen ledger` showing what was
charged. Everything the run started is stopped afterwards, and checked to be gone."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest
from aigen.devtools.servers import drop_streams

from tests.e2e.test_run_launcher import Output

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def start_run(home: Path, pg_url: str, nats_url: str, schema: str, namespace: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGEN_", "AI_PROVIDER_"))}
    env.update(
        AIGEN_HOME=str(home),
        AIGEN_DATABASE_URL=pg_url,
        AIGEN_DB_SCHEMA=schema,
        AIGEN_NATS_URL=nats_url,
        AIGEN_NATS_NAMESPACE=namespace,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "aigen.cli.main", "run", "--simulate", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for_gateway(process: subprocess.Popen[str], output: Output, timeout: float = 180.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in output.lines:
            found = re.match(r"^\s+gateway\s+(http://\S+)/healthz$", line)
            if found and any(line.startswith("Ctrl-C stops everything") for line in output.lines):
                return found.group(1)
        if process.poll() is not None:
            raise AssertionError("aigen run exited early:\n" + "\n".join(output.lines[-80:]))
        time.sleep(0.2)
    raise AssertionError("aigen run did not come up:\n" + "\n".join(output.lines[-80:]))


def cli(
    home: Path, url: str, *args: str, key: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGEN_")}
    env.update(
        AIGEN_HOME=str(home), AIGEN_GATEWAY_URL=url, AIGEN_CONFIG=str(home / "no-config.toml"), COLUMNS="200"
    )
    if key:
        env["AIGEN_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "aigen.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stop_everything(process: subprocess.Popen[str], started: set[int]) -> list[str]:
    """SIGINT the run (it stops its children in order); whatever is left is killed by pid and
    reported, so a leak fails the test instead of outliving it."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    time.sleep(0.5)
    leftover = []
    for pid in started:
        try:
            child = psutil.Process(pid)
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                leftover.append(" ".join(child.cmdline()))
                child.kill()
        except psutil.NoSuchProcess:
            continue
    return leftover


def test_generate_with_download_and_ledger_on_the_running_system(tmp_path, pg_url, nats_url):
    home = tmp_path / "home"
    schema, namespace = f"e2e_{uuid.uuid4().hex[:10]}", f"e2e{uuid.uuid4().hex[:10]}"
    process = start_run(home, pg_url, nats_url, schema, namespace)
    output = Output(process)
    started: set[int] = set()
    try:
        url = wait_for_gateway(process, output)
        started = {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
        assert (home / "admin-token").stat().st_mode & 0o777 == 0o600

        made = cli(home, url, "keys", "create", "--name", "e2e", "--budget", "10", "--json")
        assert made.returncode == 0, made.stderr + made.stdout
        key = json.loads(made.stdout)["key"]

        out = tmp_path / "results"
        local = cli(
            home,
            url,
            "generate",
            "-m",
            "local-image",
            "-p",
            "a lighthouse",
            "--wait",
            "--out",
            str(out),
            key=key,
        )
        assert local.returncode == 0, local.stderr + local.stdout
        assert "SUCCESS" in local.stdout
        pngs = sorted(out.glob("*.png"))
        assert len(pngs) == 1
        assert pngs[0].read_bytes().startswith(b"\x89PNG")

        paid = cli(
            home, url, "generate", "-m", "kie-4o-image", "-p", "a gull", "--out", str(out), "--json", key=key
        )
        assert paid.returncode == 0, paid.stderr + paid.stdout
        task = json.loads(paid.stdout)
        assert task["status"] == "SUCCESS"
        assert [Path(f).exists() for f in task["files"]] == [True]

        deadline = time.monotonic() + 30
        while True:  # the ledger follows the task's events a moment later
            per_task = json.loads(cli(home, url, "ledger", "--tasks", "--json").stdout)["tasks"]
            settled = {row["taskId"]: row for row in per_task if row["state"] == "settled"}
            if len(settled) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert settled[task["taskId"]]["basis"] in ("provider", "quote")
        ledger = cli(home, url, "ledger", "--by", "model")
        assert ledger.returncode == 0, ledger.stderr
        assert "kie-4o-image" in ledger.stdout
        assert "$0.03" in ledger.stdout
        assert "local-image" in ledger.stdout
        assert settled[task["taskId"]]["chargedUsd"] == "0.03"
    finally:
        leftover = stop_everything(process, started)
        print("\n".join(output.lines[-200:]))  # the system's own log, shown when the test fails
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        asyncio.run(drop_streams(nats_url, namespace))
    assert leftover == [], leftover
    assert process.returncode == 0, "\n".join(output.lines[-40:])
