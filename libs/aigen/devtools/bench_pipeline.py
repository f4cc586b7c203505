"""Pipeline benchmark: Generate throughput with an instant provider, and the poller's schedule lag.

Run `python -m aigen.devtools.bench_pipeline [--generates N] [--processing N]`. The services run
in-process (catalog, dispatcher, poller) against real PostgreSQL and NATS; the provider is the
Kie.ai fake with no latency. Prints figures and ratios; asserts nothing.

1. Generate calls/s at a fixed concurrency, next to the raw append rate measured in the same run
   (the ratio shows what validation, quoting and gRPC cost on top of the event store).
2. N tasks PROCESSING on one poller: how late each check runs against its due time (p50/p99) and
   the CPU the poller process spends per check.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import time
import uuid
from pathlib import Path

import psycopg

from aigen.config import Settings
from aigen.devtools.servers import nats_url, postgres_url
from aigen.eventstore.mapper import to_new_event
from aigen.eventstore.store import EventStore
from aigen.grpcx.client import call
from aigen.simulator.base import Script
from aigen.simulator.catalog import SimulatorApp, make_fakes, simulator_env
from aigen.simulator.serving import serve_asgi
from aigen.tasks.domain import stream_id
from aigen.v1 import events_pb2, generation_pb2, generation_pb2_grpc


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


async def _raw_append_rate(store: EventStore, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        await store.append(f"raw-{i}", 0, [to_new_event(events_pb2.TaskProgressed(task_id=str(i), progress=0.1))])
    return n / (time.perf_counter() - started)


async def generate_throughput(stub: generation_pb2_grpc.GenerationServiceStub, n: int, concurrency: int) -> float:
    queue = list(range(n))

    async def worker() -> None:
        while queue:
            i = queue.pop()
            await call(
                stub.Generate,
                generation_pb2.GenerateRequest(model="kie-nano-banana", prompt=f"bench {i}", owner="bench"),
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


async def schedule_lag(stack, kie, n: int) -> None:  # type: ignore[no-untyped-def]
    """N tasks already dispatched (real tasks on the fake that never finish); how late checks run."""
    db = stack.runtimes["dispatcher"].db
    store = EventStore(db)
    worker = stack.extra("poller", "worker")
    worker.lags.clear()
    created = events_pb2.TaskCreated(prompt="lag", number_of_outputs=1)
    snapshot = events_pb2.ModelSnapshot(
        model_slug="kie-nano-banana", provider_slug="kie", adapter_name="KieNanoBananaAdapter"
    )
    snapshot.polling.interval_s = 2.0
    snapshot.polling.max_attempts = 1000
    snapshot.polling.max_duration_s = 3600
    created.model.CopyFrom(snapshot)
    print(f"  creating {n} PROCESSING tasks…", flush=True)
    for i in range(n):
        task_id = f"lag-{uuid.uuid4().hex[:16]}"
        c = events_pb2.TaskCreated()
        c.CopyFrom(created)
        c.task_id = task_id
        await store.append(
            stream_id(task_id),
            0,
            [
                to_new_event(c),
                to_new_event(events_pb2.TaskDispatching(task_id=task_id, attempt=1, model=snapshot)),
                to_new_event(
                    events_pb2.TaskDispatched(
                        task_id=task_id,
                        provider_task_id=kie.new_task(
                            "market", {"model": "google/nano-banana", "input": {"prompt": f"lag {i}"}}
                        ).id,
                        model=snapshot,
                    )
                ),
            ],
        )
    cpu_before, checks_before = _cpu(), worker.checks
    window = 20.0
    await asyncio.sleep(window)
    cpu = _cpu() - cpu_before
    checks = worker.checks - checks_before
    lags = list(worker.lags)
    print(
        f"  {n} tasks on one poller, {window:.0f}s window: {checks} checks ({checks / window:,.0f}/s), "
        f"lag p50 {_pct(lags, 0.5) * 1000:.0f} ms, p99 {_pct(lags, 0.99) * 1000:.0f} ms (target p99 < 1000 ms), "
        f"CPU of the whole process {cpu / window * 100:.0f}% of one core"
    )
    if lags:
        print(f"  lag mean {statistics.mean(lags) * 1000:.0f} ms over {len(lags)} claims")


async def main(generates: int, processing: int, concurrency: int) -> None:
    from tests.support.stack import running_stack  # the same in-process stack the tests use

    schema = f"benchp_{uuid.uuid4().hex[:8]}"
    namespace = f"benchp{uuid.uuid4().hex[:8]}"
    fakes = make_fakes(seconds_to_finish=None)
    fakes["kie"].script = Script(polls_to_finish=10**9)  # stays PROCESSING: the poller keeps checking
    simulator = SimulatorApp(fakes)
    with postgres_url() as pg, nats_url() as nats:
        async with serve_asgi(simulator) as sim_url:
            simulator.set_base_url(sim_url)
            os.environ.update(simulator_env(sim_url))
            os.environ["AIGEN_POLL_INTERVAL_S"] = "2"
            os.environ["AIGEN_POLL_RECONCILE_AFTER_S"] = "off"
            # The fakes have no real rate limits; measure the poller itself, not Kie's 10 checks/s.
            os.environ["AIGEN_POLL_RATE_LIMITS"] = "off"
            settings = Settings(
                database_url=pg,
                db_schema=schema,
                nats_url=nats,
                nats_namespace=namespace,
                secret_key="bench-secret-0123456789abcdef",
                home=Path("/tmp"),
                log_level="WARNING",
            )
            try:
                async with running_stack(settings, ("catalog", "dispatcher", "poller")) as stack:
                    stub = generation_pb2_grpc.GenerationServiceStub(stack.channel("dispatcher"))
                    store = EventStore(stack.runtimes["dispatcher"].db)
                    print("Generate (validate through the catalog, quote, TaskCreated + dispatch job):")
                    await generate_throughput(stub, 200, concurrency)  # warm-up
                    rate = await generate_throughput(stub, generates, concurrency)
                    raw = await _raw_append_rate(store, 2000)
                    print(f"  {generates} Generate calls at concurrency {concurrency}: {rate:,.0f}/s (target ≥ 1,000/s)")
                    print(f"  raw EventStore.append in the same run: {raw:,.0f}/s; Generate/append = {rate / raw:.2f}")
                    print("poller schedule:")
                    await schedule_lag(stack, fakes["kie"], processing)
            finally:
                async with await psycopg.AsyncConnection.connect(pg, autocommit=True) as conn:
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generates", type=int, default=3000)
    parser.add_argument("--processing", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.generates, args.processing, args.concurrency))


if __name__ == "__main__":
    cli()
