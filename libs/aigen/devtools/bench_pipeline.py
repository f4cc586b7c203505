"""Pipeline benchmark: Generate throughput with an instant provider, and the poller's schedule lag.

Run `python -m aigen.devtools.bench_pipeline [--generates N] [--processing N]`. Catalog,
dispatcher and poller run as separate processes, as deployed, against real PostgreSQL and NATS;
the provider is the Kie.ai fake (in this process) with no latency. Prints figures and ratios;
asserts nothing.

1. Generate calls/s at a fixed concurrency, next to the raw EventStore.append rate measured in
   the same run (the ratio shows what validation, quoting and gRPC cost on top of the log): first
   on a dispatcher that serves the API only (the submission path alone), then on two such
   replicas sharing the callers (how the submission path scales out), then with the pipeline
   dispatching, checking and completing the tasks meanwhile on the same cores; then end to end:
   how soon every submitted task has its outcome in the log, as tasks/s, and the CPU each part
   spent per finished task.
2. N tasks PROCESSING on one poller (skipped with `--processing 0`): how late each check runs
   against its due time (p50/p99, from the poller's own histogram) and the CPU the poller process
   spends, over two windows: the first right after every task is scheduled (young tasks are
   checked twice as often), the second at the steady cadence; then, with `--poller-replicas N`
   (default 2), a third with N pollers sharing the tasks (how the schedule scales out).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import psutil
import psycopg

from aigen.db import migrations
from aigen.db.pool import Database, connect
from aigen.devtools.calibration import calibrated
from aigen.devtools.servers import drop_streams, exit_cleanly_on_sigterm, nats_url, postgres_url
from aigen.eventstore.mapper import to_new_event
from aigen.eventstore.store import EventStore
from aigen.grpcx.client import call, channel
from aigen.launcher.embedded import free_port
from aigen.launcher.run import relay_standby
from aigen.simulator.base import Script
from aigen.simulator.catalog import SimulatorApp, make_fakes, simulator_env
from aigen.simulator.kie import KieFake
from aigen.simulator.serving import serve_lean
from aigen.tasks.domain import stream_id
from aigen.v1 import events_pb2, generation_pb2, generation_pb2_grpc

# How a task can end other than with its results.
UNSUCCESSFUL = ["aigen.v1.TaskFailed", "aigen.v1.TaskCancelled"]


async def _raw_append_rate(store: EventStore, n: int, concurrency: int) -> float:
    queue = list(range(n))

    async def writer() -> None:
        while queue:
            i = queue.pop()
            await store.append(
                f"raw-{uuid.uuid4().hex}",
                0,
                [to_new_event(events_pb2.TaskProgressed(task_id=str(i), progress=0.1))],
            )

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


async def _generate_rate(
    stubs: list[generation_pb2_grpc.GenerationServiceStub], n: int, concurrency: int
) -> float:
    """Calls/s of `n` Generate calls from `concurrency` callers, shared evenly among the stubs
    (one per dispatcher replica)."""
    queue = list(range(n))

    async def worker(target: generation_pb2_grpc.GenerationServiceStub) -> None:
        while queue:
            i = queue.pop()
            await call(
                target.Generate,
                generation_pb2.GenerateRequest(model="kie-nano-banana", prompt=f"bench {i}", owner="bench"),
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker(stubs[w % len(stubs)]) for w in range(concurrency)))
    return n / (time.perf_counter() - started)


async def _submissions_alone(
    pg: str, nats: str, env: dict[str, str], logs: Path, n: int, concurrency: int, replicas: int = 1
) -> float:
    """Generate calls/s on dispatchers that only serve the API (as a deployment with separate
    API and worker replicas runs them): the submission path's own capacity, on one replica or
    several sharing the callers. In a schema of its own, dropped after, so its tasks (never
    dispatched) do not reach the main run."""
    from tests.support.processes import ProcessStack

    schema, namespace = f"benchs_{uuid.uuid4().hex[:8]}", f"benchs{uuid.uuid4().hex[:8]}"
    env.update(AIGEN_DB_SCHEMA=schema, AIGEN_NATS_NAMESPACE=namespace, AIGEN_DISPATCH_WORKERS="0")
    stack = ProcessStack.create(["catalog", "dispatcher"], env, logs)
    for _ in range(replicas - 1):
        stack.add_replica("dispatcher")
    _as_deployed(stack)
    try:
        await stack.start_all()
        dispatchers = [s.address for s in stack.services.values() if s.name == "dispatcher"]
        async with contextlib.AsyncExitStack() as channels:
            opened = [await channels.enter_async_context(channel(address)) for address in dispatchers]
            stubs = [generation_pb2_grpc.GenerationServiceStub(ch) for ch in opened]
            await _generate_rate(stubs, 200, concurrency)  # warm-up
            return await _generate_rate(stubs, n, concurrency)
    finally:
        stack.stop_all()
        async with await psycopg.AsyncConnection.connect(pg, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await drop_streams(nats, namespace)


def _as_deployed(stack) -> None:  # type: ignore[no-untyped-def]
    """Each process with the relay standby `aigen run` gives it: the relay leads in a light one."""
    for service in stack.services.values():
        service.env = {**service.env, **relay_standby(service.name, stack.env)}


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _cpu_by_part(stack) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """CPU seconds so far of each service process, this process (the client and the fake
    provider), PostgreSQL's and NATS's processes on this machine."""
    parts: dict[str, float] = {}

    def add(part: str, process: psutil.Process) -> None:
        with contextlib.suppress(psutil.Error):
            parts[part] = parts.get(part, 0.0) + _cpu_seconds(process)

    for name, service in stack.services.items():
        if service.process is not None:
            add(name, psutil.Process(service.process.pid))
    add("benchmark", psutil.Process())
    for process in psutil.process_iter(["name"]):
        name = process.info["name"] or ""
        if name.startswith("postgres"):
            add("postgres", process)
        elif name.startswith("nats-server"):
            add("nats", process)
    return parts


async def _metrics(port: int) -> str:
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(f"http://127.0.0.1:{port}/metrics")).text


def _lag_buckets(text: str) -> dict[float, float]:
    """aigen_poll_lag_seconds as cumulative counts per bucket bound."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "aigen_poll_lag_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                buckets[float(sample.labels["le"])] = sample.value
    return buckets


def _lag_quantiles(
    after: dict[float, float], before: dict[float, float] | None = None
) -> tuple[float, float, float]:
    """p50/p99 of the checks counted between two readings of the histogram (all of them without
    `before`), and how many checks that was."""
    window = sorted((bound, count - (before or {}).get(bound, 0.0)) for bound, count in after.items())
    total = window[-1][1] if window else 0.0

    def quantile(q: float) -> float:
        for bound, cumulative in window:
            if total and cumulative >= q * total:
                return bound
        return float("inf")

    return quantile(0.5), quantile(0.99), total


async def main(generates: int, processing: int, concurrency: int, poller_replicas: int = 2) -> None:
    from tests.support.processes import ProcessStack

    schema = f"benchp_{uuid.uuid4().hex[:8]}"
    namespace = f"benchp{uuid.uuid4().hex[:8]}"
    fakes = make_fakes(seconds_to_finish=None)
    kie = fakes["kie"]
    assert isinstance(kie, KieFake)
    kie.script = Script(polls_to_finish=1)  # an instant provider: done at the first check
    kie.balance = 1e12  # the fake's default credit runs out after a few thousand tasks
    simulator = SimulatorApp(fakes)
    metrics_port = free_port()
    with postgres_url() as pg, nats_url() as nats, tempfile.TemporaryDirectory() as tmp:

        def fast(path: str, query: Mapping[str, str], authorization: str) -> bytes | None:
            # Kie's status answers skip the fake's HTTP and ASGI stacks: at thousands of checks a
            # second those would cost the benchmark process more than the poller it measures.
            if path.startswith("/kie/"):
                return kie.fast_market_record(path[len("/kie") :], query, authorization)
            return None

        async with serve_lean(simulator, fast) as sim_url:
            simulator.set_base_url(sim_url)
            env = {
                **simulator_env(sim_url),
                "AIGEN_DATABASE_URL": pg,
                "AIGEN_DB_SCHEMA": schema,
                "AIGEN_NATS_URL": nats,
                "AIGEN_NATS_NAMESPACE": namespace,
                "AIGEN_SECRET_KEY": "bench-secret-0123456789abcdef",
                "AIGEN_LOG_LEVEL": "WARNING",
                "AIGEN_LOG_FORMAT": "text",
                "AIGEN_POLL_INTERVAL_S": "5",
                "AIGEN_POLL_RECONCILE_AFTER_S": "off",
                # The fakes have no real rate limits: measure the poller, not Kie's 10 checks/s.
                "AIGEN_POLL_RATE_LIMITS": "off",
            }
            alone = await _submissions_alone(
                pg, nats, {**env}, Path(tmp) / "alone-logs", generates, concurrency
            )
            two = await _submissions_alone(
                pg, nats, {**env}, Path(tmp) / "two-logs", generates, concurrency, replicas=2
            )
            stack = ProcessStack.create(["catalog", "dispatcher", "poller"], env, Path(tmp) / "logs")
            stack.env["AIGEN_METRICS_PORT"] = ""
            stack.services["poller"].env = {**stack.env, "AIGEN_METRICS_PORT": str(metrics_port)}
            _as_deployed(stack)
            db = await connect(pg, schema, max_size=40)
            try:
                await stack.start_all()
                await migrations.apply(db, migrations.load("aigen.eventstore", "eventstore"))
                store = EventStore(db)
                raw = await _raw_append_rate(store, 3000, concurrency)
                async with channel(stack.services["dispatcher"].address) as ch:
                    stub = generation_pb2_grpc.GenerationServiceStub(ch)
                    print("Generate (validate and quote through the catalog, TaskCreated + dispatch job):")
                    await _generate_rate([stub], 200, concurrency)  # warm-up
                    await _until_terminal(db, 200)
                    cpu_before = _cpu_by_part(stack)
                    started = time.perf_counter()
                    rate = await _generate_rate([stub], generates, concurrency)
                print(
                    f"  submissions alone (a dispatcher serving the API only, AIGEN_DISPATCH_WORKERS=0): "
                    f"{generates} calls at concurrency {concurrency}: {alone:,.0f}/s (target ≥ 1,000/s)"
                )
                print(
                    f"  the same on two such replicas, the callers shared between them: {two:,.0f}/s "
                    f"({two / alone:.2f} times one replica)"
                )
                print(
                    f"  with the pipeline working them meanwhile (dispatch, checks, completions on the "
                    f"same cores): {rate:,.0f}/s"
                )
                print(
                    f"  raw EventStore.append, same run, concurrency {concurrency}: {raw:,.0f}/s; "
                    f"Generate/append = {alone / raw:.2f} alone, {rate / raw:.2f} with the pipeline"
                )
                # The burst above is only the submissions; what the pipeline sustains is how fast the
                # tasks get through: created, dispatched, checked, completed.
                finished = await _until_terminal(db, 200 + generates) - 200
                elapsed = time.perf_counter() - started
                print(
                    f"  end to end: {finished:,} of {generates:,} tasks with their outcome "
                    f"{elapsed:.1f} s after the first call: {finished / elapsed:,.0f} tasks/s"
                )
                # Per finished task, what each part spent: unlike the rates, a neighbour's load on
                # the machine hardly changes these.
                spent = {
                    part: seconds - cpu_before.get(part, 0.0) for part, seconds in _cpu_by_part(stack).items()
                }
                shares = ", ".join(
                    f"{part} {seconds / max(finished, 1) * 1000:.2f}"
                    for part, seconds in sorted(spent.items(), key=lambda kv: -kv[1])
                )
                total = sum(spent.values()) / max(finished, 1) * 1000
                print(f"  CPU per finished task: {total:.2f} ms ({shares})")
                # A failing task is cheaper than a finished one (no checks): the figures above
                # mean something only if these are zero.
                failed = await _count_events(db, UNSUCCESSFUL)
                if failed:
                    print(f"  WARNING: {failed:,} tasks failed or were cancelled; the figures above flatter")
                if processing <= 0:
                    return
                await asyncio.sleep(10)  # let the dispatched tasks finish
                print("poller schedule:")
                kie.script = Script(polls_to_finish=10**9)  # from now on tasks stay PROCESSING
                await _processing_tasks(store, kie, processing)
                await _until_scheduled(db, processing)
                poller = psutil.Process(stack.services["poller"].process.pid)  # type: ignore[union-attr]
                window = float(os.environ.get("AIGEN_BENCH_WINDOW_S", "30"))
                # A task's first 30 s are checked twice as often (the adaptive cadence's fast
                # phase): the first window carries the new tasks' extra checks, the second shows the
                # steady cadence one poller must sustain, a third the same shared by replicas.
                windows = [(f"the first {window:.0f} s after scheduling", 1), (f"the next {window:.0f} s", 1)]
                if poller_replicas > 1:
                    windows.append((f"then with {poller_replicas} poller replicas", poller_replicas))
                pollers = [(poller, metrics_port)]
                for label, replicas in windows:
                    while len(pollers) < replicas:
                        pollers.append(await _another_poller(stack))
                        await asyncio.sleep(5)  # it starts with a backlog of due checks
                    checks, p50, p99, cpu_s = await _poller_window(pollers, window)
                    # CPU per check is what a shared machine cannot blur: a neighbour's load lowers
                    # the rate and raises the lag, but not the poller's own cost of one check.
                    print(
                        f"  {processing} PROCESSING tasks, {label}: {checks:,.0f} checks "
                        f"({checks / window:,.0f}/s); schedule lag p50 ≤ {p50 * 1000:.0f} ms, "
                        f"p99 ≤ {p99 * 1000:.0f} ms (target p99 < 1000 ms); "
                        f"poller CPU {cpu_s / window * 100:.0f}% of a core, "
                        f"{cpu_s / max(checks, 1) * 1000:.2f} ms per check"
                    )
                all_p50, all_p99, _ = _lag_quantiles(_lag_buckets(await _metrics(metrics_port)))
                # Since the poller started, including the moment all of them were due at once.
                print(
                    f"  every check since the poller started (the burst of {processing} new tasks "
                    f"included): lag p50 ≤ {all_p50 * 1000:.0f} ms, p99 ≤ {all_p99 * 1000:.0f} ms"
                )
            finally:
                stack.stop_all()
                await db.close()
                async with await psycopg.AsyncConnection.connect(pg, autocommit=True) as conn:
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def _poller_window(
    pollers: list[tuple[psutil.Process, int]], seconds: float
) -> tuple[float, float, float, float]:
    """Checks made, lag p50 and p99 (from the pollers' histograms, added up), and the pollers' CPU
    seconds, over the next `seconds`; `pollers` are (process, metrics port)."""

    async def buckets() -> dict[float, float]:
        total: dict[float, float] = {}
        for _, port in pollers:
            for bound, count in _lag_buckets(await _metrics(port)).items():
                total[bound] = total.get(bound, 0.0) + count
        return total

    def cpu() -> float:
        return sum(_cpu_seconds(process) for process, _ in pollers)

    cpu_before, start = cpu(), await buckets()
    await asyncio.sleep(seconds)
    cpu_after, end = cpu(), await buckets()
    p50, p99, checks = _lag_quantiles(end, start)
    return checks, p50, p99, cpu_after - cpu_before


async def _another_poller(stack) -> tuple[psutil.Process, int]:  # type: ignore[no-untyped-def]
    """One more poller process sharing the queue (leases, G12), with metrics of its own."""
    port = free_port()
    replica = stack.add_replica("poller", AIGEN_METRICS_PORT=str(port), **relay_standby("poller", stack.env))
    replica.start()
    await replica.serving()
    assert replica.process is not None
    return psutil.Process(replica.process.pid), port


async def _processing_tasks(store: EventStore, kie, n: int) -> None:  # type: ignore[no-untyped-def]
    """N tasks already dispatched to real (never finishing) fake tasks, checked every ~5 s (the
    seed's default)."""
    snapshot = events_pb2.ModelSnapshot(
        model_slug="kie-nano-banana", provider_slug="kie", adapter_name="KieNanoBananaAdapter"
    )
    snapshot.adapter_settings.update({"model": "google/nano-banana", "images_to": "image_urls[]"})
    snapshot.polling.interval_s = 5.0
    snapshot.polling.max_attempts = 100_000
    snapshot.polling.max_duration_s = 36_000
    pending = list(range(n))

    async def writer() -> None:
        while pending:
            await _one_task(store, kie, snapshot, pending.pop())

    # Several writers: one at a time took minutes on a busy machine, and the first tasks were
    # long into their cadence before the last were created.
    await asyncio.gather(*(writer() for _ in range(16)))


async def _until_terminal(db: Database, n: int, timeout: float = 600.0) -> int:
    """Wait until `n` tasks have their outcome in the log (or the timeout); how many have. (This
    stack has no storage service, so the task list would show them PROCESSING, results unstored.)"""
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = await _count_events(db, [*UNSUCCESSFUL, "aigen.v1.TaskCompleted"])
        if done >= n:
            break
        await asyncio.sleep(0.2)
    return done


async def _count_events(db: Database, types: list[str]) -> int:
    async with db.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM events WHERE type = ANY(%s)", (types,))
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _until_scheduled(db: Database, n: int, timeout: float = 300.0) -> None:
    """Until the poller has a job for every task (its consumer caught up), then a while more, so
    the window measures checks in their cadence rather than the catch-up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with db.connection() as conn:
            row = await (await conn.execute("SELECT count(*) FROM poll_jobs")).fetchone()
        if row is not None and row[0] >= n:
            break
        await asyncio.sleep(1.0)
    await asyncio.sleep(15)


async def _one_task(  # type: ignore[no-untyped-def]
    store: EventStore, kie, snapshot: events_pb2.ModelSnapshot, i: int
) -> None:
    task_id = f"lag-{uuid.uuid4().hex[:16]}"
    provider_task = kie._start_task(
        "market",
        {"model": "google/nano-banana", "input": {"prompt": f"lag {i}"}},
        ext="png",
        count=1,
        credits=0,
        model="google/nano-banana",
    )
    await store.append(
        stream_id(task_id),
        0,
        [
            to_new_event(events_pb2.TaskCreated(task_id=task_id, prompt=f"lag {i}", model=snapshot)),
            to_new_event(events_pb2.TaskDispatching(task_id=task_id, attempt=1, model=snapshot)),
            to_new_event(
                events_pb2.TaskDispatched(task_id=task_id, provider_task_id=provider_task.id, model=snapshot)
            ),
        ],
    )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generates", type=int, default=3000)
    parser.add_argument("--processing", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--poller-replicas",
        type=int,
        default=2,
        help="pollers sharing the PROCESSING tasks in a last window (1: no such window)",
    )
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    os.environ.setdefault("AIGEN_LOG_LEVEL", "WARNING")
    with calibrated():
        asyncio.run(main(args.generates, args.processing, args.concurrency, args.poller_replicas))


if __name__ == "__main__":
    cli()
