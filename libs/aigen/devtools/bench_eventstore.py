"""Event store benchmark: appends next to raw INSERTs of the same rows, replay, relay.

Run `python -m aigen.devtools.bench_eventstore [--events N]`. Prints figures and ratios measured
side by side in one run; asserts nothing (speed is reported, never tested).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import psycopg
from psycopg.types.json import Jsonb

from aigen.bus import topology as topo
from aigen.bus.connection import connect as connect_nats
from aigen.bus.relay import Relay
from aigen.db import migrations
from aigen.db.pool import Database, connect
from aigen.devtools.calibration import calibrated
from aigen.devtools.servers import nats_url, postgres_url
from aigen.eventstore.mapper import to_new_event
from aigen.eventstore.store import EventStore, NewEvent, RecordedEvent
from aigen.projections.runner import Projection, ProjectionRunner
from aigen.v1 import events_pb2


def _payload(i: int) -> NewEvent:
    return to_new_event(
        events_pb2.TaskProgressed(task_id=f"bench-{i}", progress=0.5), metadata={"c": "bench"}
    )


async def _timed(label: str, count: int, work: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - started
    rate = count / elapsed
    print(f"  {label:<44} {count:>7} in {elapsed:6.2f}s  {rate:>9,.0f}/s")
    return rate


async def _raw_table(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "CREATE TABLE raw_events (global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "event_id uuid NOT NULL UNIQUE, stream_id text NOT NULL, version bigint NOT NULL, "
            "type text NOT NULL, payload bytea NOT NULL, metadata jsonb NOT NULL, "
            "recorded_at timestamptz NOT NULL DEFAULT now(), UNIQUE (stream_id, version))"
        )


async def appends(db: Database, n: int) -> dict[str, float]:
    store = EventStore(db)
    await _raw_table(db)
    events = [_payload(i) for i in range(n)]
    rates: dict[str, float] = {}

    async def raw_single() -> None:
        async with db.connection() as conn:
            for i, e in enumerate(events):
                await conn.execute(
                    "INSERT INTO raw_events (event_id, stream_id, version, type, payload, metadata) "
                    "VALUES (%s, %s, 1, %s, %s, %s)",
                    (uuid.uuid4(), f"raw-{i}", e.type, e.payload, Jsonb(dict(e.metadata))),
                )
                await conn.commit()

    async def store_single() -> None:
        for i, e in enumerate(events):
            await store.append(f"s-{i}", 0, [NewEvent(e.type, e.payload, e.metadata)])

    async def raw_batches() -> None:
        async with db.connection() as conn:
            for b in range(n // 10):
                async with conn.transaction():
                    await conn.cursor().executemany(
                        "INSERT INTO raw_events (event_id, stream_id, version, type, payload, metadata) "
                        "VALUES (%s, %s, %s, %s, %s, %s)",
                        [
                            (uuid.uuid4(), f"rawb-{b}", v + 1, e.type, e.payload, Jsonb(dict(e.metadata)))
                            for v, e in enumerate(events[b * 10 : b * 10 + 10])
                        ],
                    )

    async def store_batches() -> None:
        for b in range(n // 10):
            await store.append(
                f"b-{b}", 0, [NewEvent(e.type, e.payload, e.metadata) for e in events[b * 10 : b * 10 + 10]]
            )

    async def store_concurrent() -> None:
        async def writer(w: int) -> None:
            for i in range(w, n, 8):
                await store.append(
                    f"c-{i}", 0, [NewEvent(events[i].type, events[i].payload, events[i].metadata)]
                )

        await asyncio.gather(*(writer(w) for w in range(8)))

    print("appends (one connection, one transaction per append):")
    rates["raw_single"] = await _timed("raw psycopg INSERT, 1 row per transaction", n, raw_single)
    rates["store_single"] = await _timed("EventStore.append, 1 event", n, store_single)
    rates["raw_batch"] = await _timed("raw psycopg INSERT, 10 rows per transaction", n, raw_batches)
    rates["store_batch"] = await _timed("EventStore.append, batches of 10", n, store_batches)
    rates["store_concurrent"] = await _timed(
        "EventStore.append, 1 event, 8 concurrent writers", n, store_concurrent
    )
    print(
        f"  ratio single  append/raw = {rates['store_single'] / rates['raw_single']:.2f}   "
        f"(target ≥ 0.50)\n"
        f"  ratio batched append/raw = {rates['store_batch'] / rates['raw_batch']:.2f}   (target ≥ 0.50)"
    )
    return rates


class _Count(Projection):
    name = "bench-count"

    def __init__(self) -> None:
        self.n = 0

    async def apply(self, conn: psycopg.AsyncConnection, event: RecordedEvent, message: object) -> None:
        self.n += 1


async def replay(db: Database, n: int) -> float:
    store = EventStore(db)
    batch = [_payload(i) for i in range(100)]
    for b in range(n // 100):
        await store.append(f"r-{b}", 0, [NewEvent(e.type, e.payload, e.metadata) for e in batch])
    runner = ProjectionRunner(db, _Count(), batch=2000)
    print("projection replay (decode every event, checkpoint per batch):")
    rate = await _timed(f"replay of {n} events", n, lambda: runner.catch_up())  # type: ignore[arg-type,return-value]
    print(f"  target ≥ 20,000 events/s: {'met' if rate >= 20_000 else 'not met'}")
    return rate


async def relay(db: Database, url: str) -> float:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    nc = await connect_nats(url)
    topology = topo.Topology(namespace)
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT count(*) FROM events")).fetchone()
    head = int(row[0]) if row else 0
    r = Relay(db, nc, topology, batch=2000)

    async def drain() -> None:
        while await r.publish_once():
            pass

    print("outbox relay to JetStream (PubAck awaited per batch before the checkpoint):")
    try:
        rate = await _timed(f"publish {head} events", head, drain)
        print(f"  target ≥ 10,000 events/s: {'met' if rate >= 10_000 else 'not met'}")
    finally:
        await nc.jetstream().delete_stream(topology.events_stream)
        await nc.close()
    return rate


async def main(events: int) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with postgres_url() as pg, nats_url() as nats:
        db = await connect(pg, schema, max_size=12)
        try:
            await migrations.apply(db, migrations.load("aigen.eventstore", "eventstore"))
            await appends(db, events)
            async with db.transaction() as conn:
                await conn.execute("TRUNCATE events")
            await replay(db, events * 10)
            await relay(db, nats)
        finally:
            await db.close()
            async with await psycopg.AsyncConnection.connect(pg, autocommit=True) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000, help="appends per measurement (default 5000)")
    events = parser.parse_args().events
    with calibrated():
        asyncio.run(main(events))


if __name__ == "__main__":
    cli()
