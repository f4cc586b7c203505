"""Projection runner guarantees (G6, G7) and its refusal to skip bad events, on real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from aigen.eventstore import ANY_VERSION, EventStore
from aigen.eventstore.mapper import to_new_event
from aigen.eventstore.store import NewEvent
from aigen.projections import Projection, ProjectionRunner, ProjectionStalled
from aigen.v1 import events_pb2


class ProgressCount(Projection):
    """Counts TaskProgressed events per task and sums their progress: any double apply shows."""

    name = "test-progress"
    tables = ("test_progress",)
    types = frozenset({"aigen.v1.TaskProgressed"})

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.seen = 0

    async def apply(self, conn, event, message):
        self.seen += 1
        if self.fail_at is not None and self.seen == self.fail_at:
            raise RuntimeError("crash in the middle of a batch")
        await conn.execute(
            "INSERT INTO test_progress (task_id, n, total) VALUES (%s, 1, %s) "
            "ON CONFLICT (task_id) DO UPDATE "
            "SET n = test_progress.n + 1, total = test_progress.total + EXCLUDED.total",
            (message.task_id, message.progress),
        )


@pytest.fixture
async def progress_table(db):
    async with db.transaction() as conn:
        await conn.execute(
            "CREATE TABLE test_progress (task_id text PRIMARY KEY, n int NOT NULL, total float8 NOT NULL)"
        )
    return db


async def read_model(db) -> dict[str, tuple[int, float]]:
    async with db.connection() as conn:
        rows = await (
            await conn.execute("SELECT task_id, n, total FROM test_progress ORDER BY task_id")
        ).fetchall()
    return {r[0]: (r[1], round(r[2], 6)) for r in rows}


async def seed(store: EventStore, tasks: int = 20, steps: int = 5) -> None:
    for t in range(tasks):
        await store.append(
            f"task-{t}",
            ANY_VERSION,
            [
                to_new_event(events_pb2.TaskProgressed(task_id=f"t{t}", progress=(s + 1) / steps))
                for s in range(steps)
            ]
            + [to_new_event(events_pb2.TaskDeleted(task_id=f"t{t}"))],  # not of interest: skipped
        )


async def test_g6_each_event_applied_once_and_replay_equals_live(progress_table):
    db = progress_table
    store = EventStore(db)
    await seed(store)
    runner = ProjectionRunner(db, ProgressCount(), batch=7)
    assert await runner.catch_up() == 100
    live = await read_model(db)
    assert live["t3"] == (5, 3.0)
    assert await runner.catch_up() == 0  # nothing new: nothing applied twice
    assert await read_model(db) == live
    await seed(store, tasks=3)  # same task ids, more events: appended to the read model
    await runner.catch_up()
    assert (await read_model(db))["t1"] == (10, 6.0)
    live = await read_model(db)
    assert await runner.rebuild() == 115
    assert await read_model(db) == live
    status = await runner.status()
    assert status.lag == 0 and status.state == "running"


async def test_g6_two_runners_of_one_projection_never_apply_twice(progress_table):
    db = progress_table
    await seed(EventStore(db), tasks=30)
    a, b = ProjectionRunner(db, ProgressCount(), batch=5), ProjectionRunner(db, ProgressCount(), batch=5)
    await asyncio.gather(a.catch_up(), b.catch_up())
    assert a.applied + b.applied == 150
    assert all(v == (5, 3.0) for v in (await read_model(db)).values())


async def test_g7_crash_mid_batch_loses_nothing_and_duplicates_nothing(progress_table):
    db = progress_table
    await seed(EventStore(db))
    crashing = ProjectionRunner(db, ProgressCount(fail_at=13), batch=10)
    with pytest.raises(RuntimeError, match="crash"):
        await crashing.catch_up()
    after_crash = await read_model(db)
    assert sum(n for n, _ in after_crash.values()) == 10  # the first batch only; the second rolled back
    restarted = ProjectionRunner(db, ProgressCount(), batch=10)
    await restarted.catch_up()
    model = await read_model(db)
    assert len(model) == 20 and all(v == (5, 3.0) for v in model.values())


async def test_unknown_event_type_stops_the_projection_at_its_position(progress_table):
    db = progress_table
    store = EventStore(db)
    await store.append("task-a", 0, [to_new_event(events_pb2.TaskProgressed(task_id="a", progress=0.5))])
    bad = await store.append("task-b", 0, [NewEvent(type="aigen.v1.TaskTeleported", payload=b"\x01")])
    await store.append("task-c", 0, [to_new_event(events_pb2.TaskProgressed(task_id="c", progress=0.5))])

    class EverythingCount(ProgressCount):
        types = None

        async def apply(self, conn, event, message):
            if isinstance(message, events_pb2.TaskProgressed):
                await super().apply(conn, event, message)

    runner = ProjectionRunner(db, EverythingCount(), batch=100)
    with pytest.raises(ProjectionStalled) as info:
        await runner.catch_up()
    assert info.value.position == bad.first_position
    status = await runner.status()
    assert status.state == "stalled"
    assert status.error_position == bad.first_position
    assert "aigen.v1.TaskTeleported" in (status.error or "") and str(bad.first_position) in (
        status.error or ""
    )
    assert await read_model(db) == {}  # the batch holding the bad event applied nothing
    assert await runner.catch_up() == 0  # stays stopped: nothing is skipped silently


async def test_malformed_payload_stops_the_projection(progress_table):
    db = progress_table
    store = EventStore(db)
    bad = await store.append("task-x", 0, [NewEvent(type="aigen.v1.TaskProgressed", payload=b"\xff\xff\xff")])
    runner = ProjectionRunner(db, ProgressCount())
    with pytest.raises(ProjectionStalled):
        await runner.catch_up()
    status = await runner.status()
    assert status.error_position == bad.first_position and "TaskProgressed" in (status.error or "")


async def test_a_projections_batch_commits_without_waiting_for_the_disk_and_nothing_else_does(progress_table):
    """Read models are rebuilt from the log, so their batches commit asynchronously; the setting
    is the batch transaction's own and does not leak into the pool's connections."""
    db = progress_table
    store = EventStore(db)
    await seed(store, tasks=2, steps=2)

    class Observing(ProgressCount):
        modes: set[str] = set()

        async def apply(self, conn, event, message):
            row = await (await conn.execute("SELECT current_setting('synchronous_commit')")).fetchone()
            self.modes.add(row[0])
            await super().apply(conn, event, message)

    projection = Observing()
    await ProjectionRunner(db, projection).catch_up()
    assert projection.modes == {"off"}
    assert projection.seen == 4
    async with db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT current_setting('synchronous_commit'), reset_val FROM pg_settings "
                "WHERE name = 'synchronous_commit'"
            )
        ).fetchone()
    assert row[0] == row[1]  # the server's own setting, whatever it is
