"""Pipeline guarantees: idempotent submission (G4), callbacks, replicas (G12), read models (G6)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aigen import errors
from aigen.eventstore.mapper import decode, to_new_event
from aigen.eventstore.store import EventStore
from aigen.grpcx.client import call
from aigen.projections.runner import ProjectionRunner
from aigen.simulator.base import Script
from aigen.tasks.domain import stream_id
from aigen.v1 import events_pb2, generation_pb2
from google.protobuf.struct_pb2 import Struct

from services.dispatcher.projection import TaskProjection
from tests.integration.pipeline.conftest import CallbackReceiver, pipeline_running


def params(**values) -> Struct:
    s = Struct()
    s.update(values)
    return s


async def history(pipeline, task_id: str) -> list:
    store = EventStore(pipeline.stack.runtimes["dispatcher"].db)
    return [decode(e) for e in await store.read_stream(stream_id(task_id))]


async def test_g4_same_request_id_gives_one_task_and_one_provider_call(pipeline):
    kie = pipeline.fakes["kie"]
    first = await pipeline.generate("kie-nano-banana", request_id="order-17", owner="acme")
    again = await pipeline.generate("kie-nano-banana", request_id="order-17", owner="acme")
    assert again.id == first.id
    racing = await asyncio.gather(
        *(
            pipeline.generate("kie-nano-banana", prompt="a tide pool", request_id="order-18", owner="acme")
            for _ in range(8)
        )
    )
    assert len({t.id for t in racing}) == 1
    other_owner = await pipeline.generate("kie-nano-banana", request_id="order-17", owner="globex")
    assert other_owner.id != first.id  # keys are per owner
    for task in (first, racing[0], other_owner):
        await pipeline.settled(task.id)
    creates = kie.requests_to("/api/v1/jobs/createTask", "POST")
    assert len(creates) == 3
    assert [type(e).__name__ for e in await history(pipeline, first.id)].count("TaskCreated") == 1
    with pytest.raises(errors.FailedPrecondition) as reused:
        await pipeline.generate(
            "kie-nano-banana", prompt="something else", request_id="order-17", owner="acme"
        )
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_callback_completes_the_task_at_once_and_replays_are_harmless(
    pg_url, nats_url, monkeypatch, tmp_path
):
    receiver = CallbackReceiver()
    env = {"AIGEN_POLL_INTERVAL_S": "30"}  # the first check would come late: the callback must win
    async with pipeline_running(
        pg_url, nats_url, monkeypatch, tmp_path, env=env, callbacks=receiver
    ) as pipeline:
        kie = pipeline.fakes["kie"]
        created = await pipeline.generate("kie-nano-banana")
        task = await pipeline.settled(created.id, timeout=20)
        assert task.results
        completed = next(
            e for e in await history(pipeline, created.id) if isinstance(e, events_pb2.TaskCompleted)
        )
        assert completed.source == "callback"
        assert kie.requests_to("/api/v1/jobs/recordInfo") == []
        path, headers, body = receiver.bodies[0]
        sent = json.loads(kie.requests_to("/api/v1/jobs/createTask", "POST")[0].body)
        assert sent["callBackUrl"].endswith(path) and path.startswith("/callbacks/kie/")
        assert receiver.answers[0] == (200, {"task_id": created.id, "accepted": True})
        replay = await call(
            pipeline.poller.DeliverCallback,
            generation_pb2.DeliverCallbackRequest(
                provider="kie", token=path.rsplit("/", 1)[1], headers=headers, body=body
            ),
        )
        assert replay.accepted is False
        before = len(await history(pipeline, created.id))
        forged = dict(headers, **{"x-webhook-signature": "AAAA" + headers["x-webhook-signature"][4:]})
        with pytest.raises(errors.Unauthenticated):
            await call(
                pipeline.poller.DeliverCallback,
                generation_pb2.DeliverCallbackRequest(
                    provider="kie", token=path.rsplit("/", 1)[1], headers=forged, body=body
                ),
            )
        with pytest.raises(errors.NotFound):
            await call(
                pipeline.poller.DeliverCallback,
                generation_pb2.DeliverCallbackRequest(
                    provider="kie", token=f"{created.id}.0000", headers=headers, body=body
                ),
            )
        assert len(await history(pipeline, created.id)) == before


async def test_g12_two_poller_replicas_never_check_one_task_at_once(pipeline):
    kie = pipeline.fakes["kie"]
    kie.script = Script(polls_to_finish=6)
    kie.latency = 0.05  # checks take a moment, so overlaps would show
    await pipeline.stack.add_replica("poller")
    tasks = await asyncio.gather(
        *(pipeline.generate("kie-nano-banana", prompt=f"tile {i}") for i in range(24))
    )
    for task in tasks:
        await pipeline.settled(task.id, timeout=60)
    checked = {t.provider_task_id for t in [await pipeline.get(t.id) for t in tasks]}
    assert len(checked) == 24
    assert all(kie.max_overlap[pid] == 1 for pid in checked), dict(kie.max_overlap)
    workers = [
        pipeline.stack.extra(name, "worker") for name in pipeline.stack.runtimes if name.startswith("poller")
    ]
    assert len(workers) == 2 and all(w.checks > 0 for w in workers), [w.checks for w in workers]


async def test_g6_task_read_model_equals_a_rebuild_from_the_log(pipeline):
    pipeline.fakes["kie"].script = Script(polls_to_finish=2)
    ids = [(await pipeline.generate("kie-nano-banana", prompt=f"shell {i}")).id for i in range(5)]
    failing = pipeline.fakes["replicate"]
    failing.script = Script(polls_to_finish=1, outcome="fail", fail_message="CUDA out of memory")
    ids.append((await pipeline.generate("replicate-flux")).id)
    for task_id in ids:
        await pipeline.settled(task_id)
    await call(pipeline.generation.DeleteTask, generation_pb2.DeleteTaskRequest(id=ids[0]))
    db = pipeline.stack.runtimes["dispatcher"].db
    runner = ProjectionRunner(db, TaskProjection())
    await runner.catch_up()
    live = await dump_views(db)
    await runner.rebuild()
    assert await dump_views(db) == live
    assert len(live) == 6


async def dump_views(db) -> list[tuple]:
    async with db.connection() as conn:
        rows = await (await conn.execute("SELECT * FROM task_views ORDER BY task_id")).fetchall()
    return [tuple(r) for r in rows]


async def test_listing_filters_pages_and_owners(pipeline):
    mine = [await pipeline.generate("local-image", prompt=f"card {i}", owner="acme") for i in range(5)]
    theirs = await pipeline.generate("local-image", prompt="other", owner="globex")
    for task in (*mine, theirs):
        await pipeline.settled(task.id)
    db = pipeline.stack.runtimes["dispatcher"].db
    await ProjectionRunner(db, TaskProjection()).catch_up()
    seen, token = [], ""
    while True:
        page = await call(
            pipeline.generation.ListTasks,
            generation_pb2.ListTasksRequest(owner="acme", page_size=2, page_token=token),
        )
        seen += [t.id for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(t.id for t in mine) and len(seen) == len(set(seen))
    by_provider = await call(
        pipeline.generation.ListTasks, generation_pb2.ListTasksRequest(provider="local", model="local-image")
    )
    assert {t.id for t in by_provider.tasks} == {t.id for t in (*mine, theirs)}
    with pytest.raises(errors.NotFound):
        await call(pipeline.generation.GetTask, generation_pb2.GetTaskRequest(id=mine[0].id, owner="globex"))
    with pytest.raises(errors.InvalidArgument) as bad:
        await call(pipeline.generation.ListTasks, generation_pb2.ListTasksRequest(page_token="not-ours"))
    assert bad.value.violations[0].field == "page_token"
    with pytest.raises(errors.InvalidArgument):
        await call(pipeline.generation.ListTasks, generation_pb2.ListTasksRequest(page_size=5000))


async def test_watch_streams_each_change_until_terminal(pipeline):
    pipeline.fakes["kie"].script = Script(polls_to_finish=3)
    created = await pipeline.generate("kie-4o-image")
    seen = []
    async for task in pipeline.generation.WatchTask(generation_pb2.WatchTaskRequest(id=created.id)):
        seen.append((task.status, round(task.progress, 2), task.version))
        if task.status in (generation_pb2.SUCCESS, generation_pb2.FAILED) or (
            task.results and task.progress == 1
        ):
            break
    versions = [v for _, _, v in seen]
    assert versions == sorted(versions) and len(versions) >= 3
    assert seen[0][0] == generation_pb2.PENDING


async def test_bad_requests_are_refused_naming_the_field(pipeline):
    with pytest.raises(errors.NotFound) as unknown:
        await pipeline.generate("no-such-model")
    assert unknown.value.name == "no-such-model"
    with pytest.raises(errors.InvalidArgument) as bad:
        await pipeline.generate(
            "kie-4o-image", number_of_outputs=3, parameters=params(size="16:9", colour="red")
        )
    fields = {v.field for v in bad.value.violations}
    assert {"number_of_outputs", "parameters.size", "parameters.colour"} <= fields
    with pytest.raises(errors.InvalidArgument) as image:
        await pipeline.generate("kie-nano-banana-edit", input_images=["file:///etc/passwd"])
    assert image.value.violations[0].field == "input_images[0]"
    with pytest.raises(errors.InvalidArgument) as hook:
        await pipeline.generate("kie-nano-banana", webhook_url="ftp://example.com/x")
    assert hook.value.violations[0].field == "webhook_url"
    assert pipeline.fakes["kie"].requests == []


async def test_interrupted_dispatch_is_never_resubmitted(pipeline):
    """A crash between the intent and its outcome: fail clearly instead of paying twice."""
    kie = pipeline.fakes["kie"]
    db = pipeline.stack.runtimes["dispatcher"].db
    dispatcher = pipeline.stack.extra("dispatcher", "dispatcher")
    created = await pipeline.generate("kie-nano-banana")
    task = await pipeline.settled(created.id)
    assert task.results
    # Now a second task whose dispatch "crashed": intent recorded, provider maybe called, no outcome.
    store = EventStore(db)
    tpl = (await history(pipeline, created.id))[0]
    crashed = events_pb2.TaskCreated()
    crashed.CopyFrom(tpl)
    crashed.task_id = "crashed-task-0001"
    crashed.request_id = ""
    async with db.transaction() as conn:
        await store.append(
            stream_id(crashed.task_id),
            0,
            [
                to_new_event(crashed),
                to_new_event(
                    events_pb2.TaskDispatching(task_id=crashed.task_id, attempt=1, model=crashed.model)
                ),
            ],
            conn=conn,
        )
        await dispatcher.jobs.enqueue(conn, crashed.task_id)
    dispatcher.wake()
    creates_before = len(kie.requests_to("/api/v1/jobs/createTask", "POST"))
    failed = await pipeline.wait_for(crashed.task_id, lambda t: t.status == generation_pb2.FAILED)
    assert failed.error.code == "DISPATCH_OUTCOME_UNKNOWN" and "not resubmitted" in failed.error.message
    assert len(kie.requests_to("/api/v1/jobs/createTask", "POST")) == creates_before


async def test_usage_count_counts_each_completed_task_once_for_the_model_that_served_it(pipeline):
    from aigen.v1 import catalog_pb2

    async def usage(slug: str) -> int:
        model = await call(pipeline.catalog.GetModelBySlug, catalog_pb2.GetModelBySlugRequest(slug=slug))
        return model.usage_count

    before = await usage("kie-nano-banana")
    tasks = [await pipeline.generate("kie-nano-banana", prompt=f"lantern {i}") for i in range(3)]
    failing = pipeline.fakes["kie"]
    for task in tasks:
        await pipeline.settled(task.id)
    failing.script = Script(polls_to_finish=1, outcome="fail")
    failed = await pipeline.generate("kie-nano-banana", prompt="a failure")
    await pipeline.settled(failed.id)
    store = pipeline.stack.extra("catalog", "store")
    for _ in range(100):
        store.invalidate()
        if await usage("kie-nano-banana") == before + 3:
            break
        await asyncio.sleep(0.1)
    assert await usage("kie-nano-banana") == before + 3  # the failed task does not count
