"""PostgreSQL and NATS for benchmarks: the environment's, else the machine's, else embedded ones."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aigen.launcher.embedded import EmbeddedNats, EmbeddedPostgres


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM (`timeout`, a CI runner, `kill`) into SystemExit, so the `finally` blocks that
    stop a benchmark's service processes and embedded servers run instead of leaving them behind."""

    def _exit(signum: int, frame: object) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def _open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    url = os.environ.get("AIGEN_DATABASE_URL")
    if url:
        yield url
        return
    if _open("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
        return
    with tempfile.TemporaryDirectory(prefix="aigen-bench-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "data")
        try:
            yield server.start()
        finally:
            server.stop()


@contextlib.contextmanager
def nats_url() -> Iterator[str]:
    url = os.environ.get("AIGEN_NATS_URL")
    if url:
        yield url
        return
    if _open("127.0.0.1", 4222):
        yield "nats://127.0.0.1:4222"
        return
    with tempfile.TemporaryDirectory(prefix="aigen-bench-nats-") as tmp:
        server = EmbeddedNats(Path(tmp))
        try:
            yield server.start()
        finally:
            server.stop()


async def drop_streams(url: str, namespace: str) -> None:
    """Delete the JetStream streams of a namespace (a benchmark's or a test's own); a stream that
    is already gone, or a server that stopped meanwhile, is no error."""
    from aigen.bus.connection import connect

    nc = await connect(url)
    try:
        with contextlib.suppress(Exception):
            js = nc.jetstream()
            for info in await js.streams_info():
                if info.config.name and info.config.name.startswith(namespace):
                    await js.delete_stream(info.config.name)
    finally:
        await nc.close()
