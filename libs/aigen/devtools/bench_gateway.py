"""Benchmark: submissions through the REST gateway, next to the same submissions over direct gRPC.

    python -m aigen.devtools.bench_gateway [--rates 50,100,200] [--seconds 5] [--alone-rates 500,1000,1500]

Part 1, the whole pipeline. Starts, as separate processes like a deployment: the provider
simulator (tasks never finish, so polls do not compete with submissions), catalog, dispatcher
and the gateway, on the PostgreSQL and NATS named by AIGEN_DATABASE_URL / AIGEN_NATS_URL (else
the machine's own on 5432 / 4222, else embedded ones), in a schema and namespace of their own
that are dropped afterwards. Each rate runs open loop (requests start on schedule whether or not
earlier ones finished; latency counts from the scheduled start, so a stall shows instead of
hiding), over gRPC (`GenerationService.Generate`, as the gateway itself calls it) and over REST
(`POST /api/external/ai-generation`, an API key without limits), waiting between runs until the
previous one's work (dispatches, ledger) is done. Then one request at a time (the overhead with
no queueing), and a closed loop at fixed concurrency (each path's ceiling). With psutil
installed, the CPU each process spent per submission is printed too.

Part 2, the gateway alone: the same app, middlewares and API-key authentication (PostgreSQL),
with the services behind it answering at once from memory, in its own process. This is what the
gateway itself can take.

The REST client is a minimal keep-alive HTTP/1.1 client on asyncio streams, so the figures
measure the gateway rather than a client library. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from aigen import eventloop
from aigen.devtools.calibration import calibrated

ROOT = Path(__file__).resolve().parents[3]
API_PATH = "/api/external/ai-generation"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the system under test ----------------------------------------------------------------------


@dataclass
class System:
    database_url: str
    schema: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]
    gateway_url: str
    dispatcher: str
    admin_token: str
    cleanup: list[Callable[[], None]]
    names: dict[str, int] = field(default_factory=dict)  # process name → pid, for the CPU figures


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str]]:
    """(database URL, NATS URL): configured, the machine's own, or embedded."""
    from aigen.devtools.servers import nats_url, postgres_url

    with postgres_url() as pg, nats_url() as nats:
        yield pg, nats


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


async def wait_http(url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")
            await asyncio.sleep(0.2)


async def start_system(pg: str, nats: str, workdir: Path) -> System:
    import httpx

    from aigen.grpcx.server import wait_serving
    from aigen.simulator.catalog import simulator_env

    schema, namespace = f"bench_{uuid.uuid4().hex[:10]}", f"bench{uuid.uuid4().hex[:10]}"
    sim_port, gw_port = free_port(), free_port()
    admin_token = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGEN_", "AI_PROVIDER_"))}
    env.update(
        AIGEN_HOME=str(workdir),
        AIGEN_DATABASE_URL=pg,
        AIGEN_DB_SCHEMA=schema,
        AIGEN_NATS_URL=nats,
        AIGEN_NATS_NAMESPACE=namespace,
        AIGEN_SECRET_KEY=secrets.token_urlsafe(32),
        AIGEN_ADMIN_TOKEN=admin_token,
        AIGEN_LOG_LEVEL="WARNING",
        AIGEN_LOG_FORMAT="text",
        AIGEN_GATEWAY_PORT=str(gw_port),
        AIGEN_GATEWAY_URL=f"http://127.0.0.1:{gw_port}",
        PYTHONUNBUFFERED="1",
    )
    env.update(simulator_env(f"http://127.0.0.1:{sim_port}"))
    for service in ("catalog", "dispatcher", "poller", "storage", "studio"):
        env[f"AIGEN_{service.upper()}_ADDR"] = f"127.0.0.1:{free_port()}"
    python = sys.executable
    processes = [
        spawn(
            [
                python,
                "-m",
                "aigen.cli.main",
                "simulate",
                "--port",
                str(sim_port),
                "--seconds",
                "3600",
                "--print-env",
                "no",
            ],
            env,
            workdir / "simulator.log",
        ),
        spawn([python, "-m", "services.catalog"], env, workdir / "catalog.log"),
    ]
    system = System(
        pg, schema, env, processes, env["AIGEN_GATEWAY_URL"], env["AIGEN_DISPATCHER_ADDR"], admin_token, []
    )
    await wait_serving(env["AIGEN_CATALOG_ADDR"], timeout=60)  # migrations first, one service at a time
    processes.append(spawn([python, "-m", "services.dispatcher"], env, workdir / "dispatcher.log"))
    await wait_serving(env["AIGEN_DISPATCHER_ADDR"], timeout=60)
    processes.append(spawn([python, "-m", "services.gateway"], env, workdir / "gateway.log"))
    await wait_http(f"{system.gateway_url}/healthz", timeout=60)
    system.names = dict(
        zip(("simulator", "catalog", "dispatcher", "gateway"), (p.pid for p in processes), strict=True)
    )
    await wait_http(f"http://127.0.0.1:{sim_port}/healthz", timeout=30)
    # The fake's default credit runs out after a couple of thousand tasks; from then on every
    # dispatch would fail (cheaply) and flatter the figures.
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"http://127.0.0.1:{sim_port}/kie/__fake__/faults", json={"balance": 1e12})
        answer.raise_for_status()
    system.cleanup.append(lambda: drop(pg, nats, schema, namespace))
    return system


async def settle(system: System, quiet_s: float = 1.5, limit_s: float = 120.0) -> None:
    """Until the previous run's work is done: the event log stops growing (dispatches, ledger)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(system.database_url, autocommit=True) as conn:
        last, still_since = -1, time.monotonic()
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            row = await (
                await conn.execute(f'SELECT coalesce(max(global_position), 0) FROM "{system.schema}".events')
            ).fetchone()
            head = int(row[0]) if row else 0
            if head != last:
                last, still_since = head, time.monotonic()
            elif time.monotonic() - still_since >= quiet_s:
                return
            await asyncio.sleep(0.25)


def drop(pg: str, nats: str, schema: str, namespace: str) -> None:
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    from aigen.devtools.servers import drop_streams

    asyncio.run(drop_streams(nats, namespace))


def stop_system(system: System) -> None:
    for process in reversed(system.processes):
        if process.poll() is None:
            process.terminate()
    for process in system.processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    for step in system.cleanup:
        with contextlib.suppress(Exception):
            step()


# --- CPU per process -----------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds of the benchmark's processes (and the database and broker), when psutil is there."""

    def __init__(self, processes: dict[str, int]) -> None:
        try:
            import psutil
        except ImportError:
            self.psutil = None
            return
        self.psutil = psutil
        self.named = {name: psutil.Process(pid) for name, pid in processes.items()}
        self.named["bench client"] = psutil.Process()
        self.shared = {
            "postgres": [
                p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")
            ],
            "nats": [p for p in psutil.process_iter(["name"]) if "nats" in (p.info["name"] or "")],
        }

    def sample(self) -> dict[str, float]:
        if self.psutil is None:
            return {}
        found: dict[str, float] = {}
        for name, process in self.named.items():
            with contextlib.suppress(self.psutil.Error):
                times = process.cpu_times()
                found[name] = times.user + times.system
        for name, group in self.shared.items():
            total = 0.0
            for process in group:
                with contextlib.suppress(self.psutil.Error):
                    times = process.cpu_times()
                    total += times.user + times.system
            found[name] = total
        return found

    @staticmethod
    def per_submission(before: dict[str, float], after: dict[str, float], count: int) -> str:
        if not before or not count:
            return ""
        parts = [
            f"{name} {(after[name] - before[name]) / count * 1000:.1f}" for name in after if name in before
        ]
        return "      CPU ms per submission: " + ", ".join(parts)


# --- clients ------------------------------------------------------------------------------------


class RestConnection:
    """One keep-alive HTTP/1.1 connection: a request, then its whole response, then the next."""

    def __init__(self, host: str, port: int, api_key: str) -> None:
        self.host, self.port, self.api_key = host, port, api_key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nX-API-Key: {self.api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        for attempt in (1, 2):
            if self.reader is None or self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            reader = self.reader
            self.writer.write(head + body)
            status_line = await reader.readline()
            if status_line:
                break
            # The server closed this idle keep-alive connection: open a new one and send again.
            self.close()
            if attempt == 2:
                raise ConnectionResetError("the gateway closed the connection without answering")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class RestPool:
    def __init__(self, url: str, api_key: str, size: int) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.idle: asyncio.Queue[RestConnection] = asyncio.Queue()
        self.failures: collections.Counter[str] = collections.Counter()
        for _ in range(size):
            self.idle.put_nowait(RestConnection(host, int(port), api_key))

    async def submit(self, n: int) -> bool:
        connection = await self.idle.get()
        try:
            body = json.dumps({"model_slug": BENCH_MODEL, "prompt": f"bench {n}"}).encode()
            status = await connection.post(API_PATH, body)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            connection.close()
            self.failures[type(exc).__name__] += 1
            return False
        finally:
            self.idle.put_nowait(connection)
        if status != 200:
            self.failures[f"HTTP {status}"] += 1
        return status == 200

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().close()


BENCH_MODEL = "kie-4o-image"


class GrpcClient:
    """Direct gRPC, with as many submissions in flight at most as the REST pool has connections,
    so neither path queues more inside the services than the other."""

    def __init__(self, address: str, in_flight: int = 256) -> None:
        from aigen.grpcx.client import channel
        from aigen.v1 import generation_pb2_grpc

        self.channel = channel(address)
        self.stub = generation_pb2_grpc.GenerationServiceStub(self.channel)
        self.failures: collections.Counter[str] = collections.Counter()
        self.slots = asyncio.Semaphore(in_flight)

    async def submit(self, n: int) -> bool:
        from aigen.v1 import generation_pb2

        try:
            async with self.slots:
                await self.stub.Generate(
                    generation_pb2.GenerateRequest(model=BENCH_MODEL, prompt=f"bench {n}", owner="bench")
                )
        except grpc.RpcError as exc:
            self.failures[str(exc.code())] += 1
            return False
        return True

    async def close(self) -> None:
        await self.channel.close()


# --- load ---------------------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    offered: float  # requests/s asked for (0: closed loop)
    sent: int
    ok: int
    seconds: float
    latencies_ms: list[float]
    concurrency: int = 0  # closed loop: requests in flight

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def open_loop(
    label: str, submit: Callable[[int], Awaitable[bool]], rate: float, seconds: float
) -> Result:
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate
    total = int(rate * seconds)
    latencies: list[float] = []
    ok = 0
    start = loop.time() + 0.05

    async def one(n: int, scheduled: float) -> None:
        nonlocal ok
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        good = await submit(n)
        latencies.append((loop.time() - scheduled) * 1000.0)
        ok += good

    tasks = [asyncio.create_task(one(n, start + n * interval)) for n in range(total)]
    await asyncio.gather(*tasks)
    elapsed = max(loop.time() - start, seconds)
    return Result(label, rate, total, ok, elapsed, latencies)


async def closed_loop(
    label: str, submit: Callable[[int], Awaitable[bool]], concurrency: int, seconds: float
) -> Result:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    latencies: list[float] = []
    counter = iter(range(10**9))
    ok = 0
    sent = 0

    async def worker() -> None:
        nonlocal ok, sent
        while loop.time() < deadline:
            began = loop.time()
            sent += 1
            good = await submit(next(counter))
            ok += good
            latencies.append((loop.time() - began) * 1000.0)

    began = loop.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result = Result(label, 0.0, sent, ok, loop.time() - began, latencies)
    result.concurrency = concurrency
    return result


def row(result: Result) -> str:
    offered = f"{result.offered:>6.0f}/s" if result.offered else f"{'c=' + str(result.concurrency):>8}"
    p50, p99 = result.percentile(50), result.percentile(99)
    counts = f"{result.ok:>7}/{result.sent:<7}"
    return f"{result.label:<5} {offered} {result.rate:>9.0f}/s {p50:>9.1f} {p99:>9.1f} {counts}"


async def measure(
    system: System, rates: list[float], seconds: float, concurrency: int
) -> list[tuple[Result, Result]]:
    from aigen.client.admin import AsyncAdminClient

    async with AsyncAdminClient(system.gateway_url, system.admin_token) as admin:
        key = (await admin.create_key(name="bench"))["key"]
    grpc_client = GrpcClient(system.dispatcher)
    rest = RestPool(system.gateway_url, key, size=256)
    meter = CpuMeter(system.names)
    pairs: list[tuple[Result, Result]] = []

    async def run(label: str, go: Awaitable[Result]) -> Result:
        await settle(system)
        before = meter.sample()
        result = await go
        await settle(system)  # the work a submission causes counts towards its CPU
        print(row(result), flush=True)
        if result.offered:
            line = meter.per_submission(before, meter.sample(), result.ok)
            if line:
                print(line, flush=True)
        return result

    try:
        await closed_loop("warm", grpc_client.submit, 16, 2.0)
        await closed_loop("warm", rest.submit, 16, 2.0)
        print(HEADER, flush=True)
        for rate in rates:
            g = await run("grpc", open_loop("grpc", grpc_client.submit, rate, seconds))
            r = await run("rest", open_loop("rest", rest.submit, rate, seconds))
            pairs.append((g, r))
        g = await run("grpc", closed_loop("grpc", grpc_client.submit, 1, seconds))
        r = await run("rest", closed_loop("rest", rest.submit, 1, seconds))
        pairs.append((g, r))
        g = await run("grpc", closed_loop("grpc", grpc_client.submit, concurrency, seconds))
        r = await run("rest", closed_loop("rest", rest.submit, concurrency, seconds))
        pairs.append((g, r))
    finally:
        rest.close()
        await grpc_client.close()
    if grpc_client.failures or rest.failures:
        print(
            f"failed submissions: gRPC {dict(grpc_client.failures)}, REST {dict(rest.failures)}", flush=True
        )
    return pairs


HEADER = f"{'path':<5} {'offered':>8} {'achieved':>11} {'p50 ms':>9} {'p99 ms':>9} {'ok/sent':>15}"


# --- the gateway alone ----------------------------------------------------------------------------


async def serve_stubbed(port: int, database_url: str, schema: str, key_file: Path) -> None:
    """The gateway app with real key authentication and stub services that answer at once."""
    import uvicorn

    from aigen.db import migrations
    from aigen.db.pool import connect as connect_db
    from aigen.netguard import NetGuard
    from aigen.secrets import Sealer
    from aigen.v1 import common_pb2, generation_pb2
    from services.gateway.app import create_app
    from services.gateway.deps import Gateway, Services
    from services.gateway.holds import Holds
    from services.gateway.key_store import KeySpec, KeyStore
    from services.gateway.keys import KeyHasher
    from services.gateway.ledger_queries import LedgerQueries
    from services.gateway.links import ResultLinks
    from services.gateway.ratelimit import RateLimiter
    from services.gateway.settings import GatewaySettings

    class InstantGeneration:
        async def Generate(self, request: generation_pb2.GenerateRequest, **_: object) -> generation_pb2.Task:
            return generation_pb2.Task(
                id=uuid.uuid4().hex,
                status=generation_pb2.PENDING,
                model_slug=request.model,
                provider_slug="kie",
                output_type=common_pb2.IMAGE,
                prompt=request.prompt,
                quote=common_pb2.PriceQuote(usd="0.03", display="6 Credits ≈ $0.030"),
            )

    db = await connect_db(database_url, schema)
    await migrations.apply(
        db, migrations.load("aigen.eventstore", "eventstore") + migrations.load("services.gateway", "gateway")
    )
    secret = secrets.token_urlsafe(32)
    keys = KeyStore(db, KeyHasher(secret), Sealer(secret))
    created = await keys.create(KeySpec(name="bench"))
    await asyncio.to_thread(key_file.write_text, created.secret)
    services = Services(catalog=None, generation=InstantGeneration(), poller=None, storage=None, studio=None)  # type: ignore[arg-type]
    gateway = Gateway(
        settings=GatewaySettings(admin_token=secrets.token_urlsafe(24)),
        public_url=f"http://127.0.0.1:{port}",
        db=db,
        services=services,
        keys=keys,
        limiter=RateLimiter(),
        holds=Holds(db),
        ledger=LedgerQueries(db),
        links=ResultLinks(None, None),
        signer=None,
        guard=NetGuard(),
        callback_secret=secret,
    )
    config = uvicorn.Config(
        create_app(gateway), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await db.close()


async def measure_alone(
    pg: str, rates: list[float], seconds: float, concurrency: int, workdir: Path
) -> list[Result]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    port = free_port()
    key_file = workdir / "alone.key"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "aigen.devtools.bench_gateway", "--serve-stubbed", str(port)]
    argv += ["--database-url", pg, "--schema", schema, "--key-file", str(key_file)]
    server = spawn(argv, env, workdir / "alone.log")
    results: list[Result] = []
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        rest = RestPool(f"http://127.0.0.1:{port}", key_file.read_text().strip(), size=256)
        meter = CpuMeter({"gateway": server.pid})
        await closed_loop("warm", rest.submit, 16, 2.0)
        print(HEADER, flush=True)
        for go in (
            *(open_loop("rest", rest.submit, rate, seconds) for rate in rates),
            closed_loop("rest", rest.submit, 1, seconds),
            closed_loop("rest", rest.submit, concurrency, seconds),
        ):
            before = meter.sample()
            result = await go
            print(row(result), flush=True)
            line = meter.per_submission(before, meter.sample(), result.ok)
            if line:
                print(line, flush=True)
            results.append(result)
            await asyncio.sleep(0.5)
        rest.close()
        if rest.failures:
            print(f"failed submissions: {dict(rest.failures)}", flush=True)
    finally:
        server.terminate()
        server.wait(20)
        import psycopg

        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return results


def summary(pairs: list[tuple[Result, Result]]) -> None:
    print("\nREST next to gRPC (ratios REST/gRPC; added = REST minus gRPC):")
    columns = ("rate ratio", "p50 ratio", "p99 ratio", "added p50", "added p99")
    print(f"{'offered':>8} " + " ".join(f"{c:>10}" for c in columns))
    for g, r in pairs:
        offered = f"{g.offered:>6.0f}/s" if g.offered else f"{'c=' + str(g.concurrency):>8}"
        ratio = r.rate / g.rate if g.rate else float("nan")
        p50, p99 = r.percentile(50) / g.percentile(50), r.percentile(99) / g.percentile(99)
        added50 = r.percentile(50) - g.percentile(50)
        added99 = r.percentile(99) - g.percentile(99)
        print(f"{offered} {ratio:>10.2f} {p50:>10.2f} {p99:>10.2f} {added50:>8.1f}ms {added99:>8.1f}ms")
    best = max(pairs, key=lambda pair: pair[1].rate)[1]
    print(f"highest REST rate through the pipeline: {best.rate:.0f} submissions/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates", default="50,100,200", help="Offered submissions/s (whole pipeline), comma-separated."
    )
    parser.add_argument(
        "--alone-rates", default="500,1000,1500", help="Offered submissions/s (gateway alone)."
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="Duration of each run.")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="In-flight requests of the closed-loop runs."
    )
    parser.add_argument("--serve-stubbed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--key-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stubbed:
        with contextlib.suppress(KeyboardInterrupt):
            eventloop.run(
                serve_stubbed(args.serve_stubbed, args.database_url, args.schema, args.key_file),
                eventloop.resolve(os.environ.get("AIGEN_EVENT_LOOP")),
            )
        return
    from aigen.devtools.servers import exit_cleanly_on_sigterm

    exit_cleanly_on_sigterm()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    alone_rates = [float(r) for r in args.alone_rates.split(",") if r.strip()]
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; model {BENCH_MODEL}", flush=True)
    with calibrated(), tempfile.TemporaryDirectory(prefix="aigen-bench-") as tmp:
        workdir = Path(tmp)
        with servers() as (pg, nats):
            print("\n1. The whole pipeline (simulator, catalog, dispatcher, gateway)", flush=True)
            system = asyncio.run(start_system(pg, nats, workdir))
            try:
                pairs = asyncio.run(measure(system, rates, args.seconds, args.concurrency))
            finally:
                stop_system(system)
            summary(pairs)
            print("\n2. The gateway alone (services answer from memory; API keys in PostgreSQL)", flush=True)
            alone = asyncio.run(measure_alone(pg, alone_rates, args.seconds, args.concurrency, workdir))
        best = max(alone, key=lambda r: r.rate)
        print(f"\ngateway alone: up to {best.rate:.0f} submissions/s")


if __name__ == "__main__":
    main()
