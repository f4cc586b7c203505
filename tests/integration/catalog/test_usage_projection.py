"""The usage count per model, worked out per batch: same counts whatever the batches."""

from __future__ import annotations

import pytest
from aigen.db import migrations
from aigen.eventstore import ANY_VERSION, EventStore
from aigen.eventstore.mapper import to_new_event
from aigen.projections import ProjectionRunner
from aigen.v1 import events_pb2

from services.catalog.usage import ModelUsageProjection


@pytest.fixture
async def usage_db(db):
    await migrations.apply(db, migrations.load("services.catalog", "catalog"))
    return db


def snapshot(model: str) -> events_pb2.ModelSnapshot:
    return events_pb2.ModelSnapshot(model_slug=model)


async def append(store: EventStore, task: str, *messages) -> None:
    await store.append(f"task-{task}", ANY_VERSION, [to_new_event(m) for m in messages])


async def counts(db) -> tuple[dict[str, int], int]:
    async with db.connection() as conn:
        rows = await (
            await conn.execute("SELECT model_slug, usage_count FROM catalog_model_usage")
        ).fetchall()
        waiting = await (await conn.execute("SELECT count(*) FROM catalog_usage_tasks")).fetchone()
    return {r[0]: r[1] for r in rows}, int(waiting[0]) if waiting else 0


class FailingOnce(ModelUsageProjection):
    """Fails at its n-th event once, like a process dying mid-batch."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.seen = at, 0

    async def apply(self, conn, event, message):
        self.seen += 1
        if self.seen == self.at:
            raise RuntimeError("crash in the middle of a batch")
        await super().apply(conn, event, message)


async def test_each_completed_task_counts_once_for_its_serving_model_in_any_batching(usage_db):
    db = usage_db
    store = EventStore(db)
    projection = FailingOnce(at=6)
    runner = ProjectionRunner(db, projection, batch=100)
    await append(store, "a", events_pb2.TaskCreated(task_id="a", model=snapshot("m1")))
    await append(store, "b", events_pb2.TaskCreated(task_id="b", model=snapshot("m1")))
    await runner.catch_up()  # a and b wait, in the table
    assert await counts(db) == ({}, 2)
    await append(
        store,
        "a",
        events_pb2.TaskFailedOver(task_id="a", from_model_slug="m1", to_model_slug="m2"),
        events_pb2.TaskCompleted(task_id="a"),
        events_pb2.TaskCompleted(task_id="a", late=True),  # a late second completion: not again
    )
    await append(store, "b", events_pb2.TaskCompleted(task_id="b"))  # known from the table only
    await append(
        store,
        "c",
        events_pb2.TaskCreated(task_id="c", model=snapshot("m3")),
        events_pb2.TaskDispatched(task_id="c", model=snapshot("m3")),
        events_pb2.TaskCompleted(task_id="c"),
    )
    await append(store, "d", events_pb2.TaskCreated(task_id="d", model=snapshot("m3")))
    with pytest.raises(RuntimeError, match="crash"):
        await runner.catch_up()  # the batch rolls back whole, its gatherings with it
    await runner.catch_up()
    live = await counts(db)
    assert live == ({"m1": 1, "m2": 1, "m3": 1}, 1)  # d still waits
    one_by_one = ProjectionRunner(db, ModelUsageProjection(), batch=1)
    assert await one_by_one.rebuild() > 0
    assert await counts(db) == live
