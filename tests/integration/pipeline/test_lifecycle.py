"""The task lifecycle through real services, real PostgreSQL and NATS, and the providers' fakes."""

from __future__ import annotations

import asyncio

import pytest
from aigen import errors
from aigen.eventstore.mapper import decode
from aigen.eventstore.store import EventStore
from aigen.grpcx.client import call
from aigen.simulator.base import Script
from aigen.v1 import events_pb2, generation_pb2
from google.protobuf.struct_pb2 import Struct

from tests.integration.pipeline.conftest import HAS_STORAGE, pipeline_running


def params(**values) -> Struct:
    s = Struct()
    s.update(values)
    return s


async def event_types(pipeline, task_id: str) -> list[str]:
    store = EventStore(pipeline.stack.runtimes["dispatcher"].db)
    return [type(decode(e)).__name__ for e in await store.read_stream(f"task-{task_id}")]


async def events_of(pipeline, task_id: str) -> list:
    store = EventStore(pipeline.stack.runtimes["dispatcher"].db)
    return [decode(e) for e in await store.read_stream(f"task-{task_id}")]


async def test_async_success_with_progress(pipeline):
    kie = pipeline.fakes["kie"]
    kie.script = Script(polls_to_finish=3)
    created = await pipeline.generate("kie-4o-image", number_of_outputs=2, parameters=params(size="3:2"))
    assert created.status == generation_pb2.PENDING
    assert created.quote.amount == "7" and created.quote.usd == "0.035"
    task = await pipeline.settled(created.id)
    assert task.provider_slug == "kie" and task.provider_task_id
    assert task.results and all(r.original_url.startswith(pipeline.simulator_url) for r in task.results)
    kinds = await event_types(pipeline, created.id)
    assert kinds[:3] == ["TaskCreated", "TaskDispatching", "TaskDispatched"]
    assert "TaskCompleted" in kinds
    progress = [
        e.progress for e in await events_of(pipeline, created.id) if isinstance(e, events_pb2.TaskProgressed)
    ]
    assert progress and progress == sorted(progress) and len(set(progress)) == len(progress)
    create = kie.requests_to("/api/v1/gpt4o-image/generate", "POST")
    assert len(create) == 1 and create[0].json["nVariants"] == 2 and create[0].json["size"] == "3:2"
    if HAS_STORAGE:
        assert task.status == generation_pb2.SUCCESS and all(r.stored for r in task.results)


async def test_sync_provider_success_bytes_reach_the_task(pipeline):
    created = await pipeline.generate(
        "openai-dall-e", prompt="a red fox in snow", parameters=params(model="gpt-image-1")
    )
    task = await pipeline.settled(created.id)
    completed = next(
        e for e in await events_of(pipeline, created.id) if isinstance(e, events_pb2.TaskCompleted)
    )
    assert completed.source == "dispatch"
    assert completed.results and completed.results[0].url.startswith("blob:")
    assert "TaskDispatched" not in await event_types(pipeline, created.id)
    if HAS_STORAGE:
        assert task.status == generation_pb2.SUCCESS and task.results[0].stored and task.results[0].sha256


async def test_provider_failure_surfaces_its_message(pipeline):
    kie = pipeline.fakes["kie"]
    kie.script = Script(polls_to_finish=1, outcome="fail", fail_message="the model ran out of dreams")
    created = await pipeline.generate("kie-nano-banana")
    task = await pipeline.settled(created.id)
    assert task.status == generation_pb2.FAILED
    assert "ran out of dreams" in task.error.message
    failed = next(e for e in await events_of(pipeline, created.id) if isinstance(e, events_pb2.TaskFailed))
    assert failed.stage == "poll" and failed.provider_slug == "kie"


async def test_three_check_errors_fail_the_task(pipeline):
    kie = pipeline.fakes["kie"]
    kie.script = Script(polls_to_finish=50)
    kie.faults.add("server_error", scope="status", times=3)
    created = await pipeline.generate("kie-nano-banana")
    task = await pipeline.settled(created.id)
    assert task.status == generation_pb2.FAILED
    assert task.error.code == "POLLING_FAILED" and task.error.message.startswith("Polling failed: ")


async def test_cancel_during_polling_stops_checks(pipeline):
    kie = pipeline.fakes["kie"]
    kie.script = Script(polls_to_finish=10_000)
    created = await pipeline.generate("kie-nano-banana")
    await pipeline.wait_for(created.id, lambda t: t.status == generation_pb2.PROCESSING)
    await asyncio.sleep(0.5)
    cancelled = await call(
        pipeline.generation.CancelTask,
        generation_pb2.CancelTaskRequest(id=created.id, reason="changed my mind"),
    )
    assert cancelled.status == generation_pb2.CANCELLED
    checks = len(kie.requests_to("/api/v1/jobs/recordInfo"))
    await asyncio.sleep(1.0)
    assert len(kie.requests_to("/api/v1/jobs/recordInfo")) <= checks + 1  # one check may have been in flight
    with pytest.raises(errors.FailedPrecondition):
        await call(pipeline.generation.CancelTask, generation_pb2.CancelTaskRequest(id=created.id))


async def test_delete_during_polling_stops_checks(pipeline):
    kie = pipeline.fakes["kie"]
    kie.script = Script(polls_to_finish=10_000)
    created = await pipeline.generate("kie-nano-banana")
    await pipeline.wait_for(created.id, lambda t: t.status == generation_pb2.PROCESSING)
    deleted = await call(pipeline.generation.DeleteTask, generation_pb2.DeleteTaskRequest(id=created.id))
    assert deleted.HasField("deleted_at")
    checks = len(kie.requests_to("/api/v1/jobs/recordInfo"))
    await asyncio.sleep(1.0)
    assert len(kie.requests_to("/api/v1/jobs/recordInfo")) <= checks + 1
    again = await call(pipeline.generation.DeleteTask, generation_pb2.DeleteTaskRequest(id=created.id))
    assert again.version == deleted.version  # deleting twice changes nothing


async def test_failover_to_an_alternative_provider(pipeline):
    kie = pipeline.fakes["kie"]
    kie.faults.create_failure_rate = 1.0  # Kie answers 500 to every submission
    created = await pipeline.generate(
        "kie-kling-v2-master-text-to-video",
        prompt="a paper boat on a rainy street",
        parameters=params(duration="5"),
    )
    task = await pipeline.settled(created.id, timeout=60)
    assert task.provider_slug != "kie", task
    served = task.model_slug
    assert served in ("tuzi-kling", "pollo-kling")
    history = await events_of(pipeline, created.id)
    over = [e for e in history if isinstance(e, events_pb2.TaskFailedOver)]
    assert (
        over
        and over[0].from_model_slug == "kie-kling-v2-master-text-to-video"
        and over[0].to_model_slug == served
    )
    attempts = [e for e in history if isinstance(e, events_pb2.DispatchAttemptFailed)]
    assert len(attempts) == 3 and all(a.provider_slug == "kie" for a in attempts)
    assert len(kie.requests_to("/api/v1/jobs/createTask", "POST")) == 3


async def test_timeout_fails_naming_the_limit(pg_url, nats_url, monkeypatch, tmp_path):
    env = {"AIGEN_POLL_MAX_DURATION_S": "1.0", "AIGEN_POLL_RECONCILE_AFTER_S": "off"}
    async with pipeline_running(pg_url, nats_url, monkeypatch, tmp_path, env=env) as pipeline:
        pipeline.fakes["kie"].script = Script(polls_to_finish=10_000)
        created = await pipeline.generate("kie-nano-banana")
        task = await pipeline.settled(created.id)
        assert task.status == generation_pb2.FAILED and task.error.code == "TIMEOUT"
        assert "limit 1s" in task.error.message


async def test_attempts_limit_fails_naming_it(pg_url, nats_url, monkeypatch, tmp_path):
    env = {"AIGEN_POLL_MAX_ATTEMPTS": "3", "AIGEN_POLL_RECONCILE_AFTER_S": "off"}
    async with pipeline_running(pg_url, nats_url, monkeypatch, tmp_path, env=env) as pipeline:
        kie = pipeline.fakes["kie"]
        kie.script = Script(polls_to_finish=10_000)
        created = await pipeline.generate("kie-nano-banana")
        task = await pipeline.settled(created.id)
        assert task.error.code == "POLL_ATTEMPTS_EXHAUSTED"
        assert task.error.message == "Task did not complete after 3 polling attempts"
        assert len(kie.requests_to("/api/v1/jobs/recordInfo")) == 3


async def test_late_success_after_timeout_is_reconciled(pg_url, nats_url, monkeypatch, tmp_path):
    env = {"AIGEN_POLL_MAX_DURATION_S": "0.6", "AIGEN_POLL_RECONCILE_AFTER_S": "1.0"}
    async with pipeline_running(pg_url, nats_url, monkeypatch, tmp_path, env=env) as pipeline:
        kie = pipeline.fakes["kie"]
        kie.script = Script(seconds_to_finish=1.2)
        created = await pipeline.generate("kie-nano-banana")
        failed = await pipeline.wait_for(created.id, lambda t: t.status == generation_pb2.FAILED)
        assert failed.error.code == "TIMEOUT"
        task = await pipeline.wait_for(created.id, lambda t: bool(t.results), timeout=20)
        completed = next(
            e for e in await events_of(pipeline, created.id) if isinstance(e, events_pb2.TaskCompleted)
        )
        assert completed.late and completed.source == "reconcile"
        assert task.results[0].original_url.startswith(pipeline.simulator_url)


async def test_local_provider_end_to_end(pipeline):
    created = await pipeline.generate(
        "local-image", prompt="a quiet harbour", parameters=params(width=320, height=240)
    )
    task = await pipeline.settled(created.id)
    assert task.provider_slug == "local" and task.results
    if HAS_STORAGE:
        assert task.status == generation_pb2.SUCCESS


async def test_first_check_uses_the_state_folded_from_the_tasks_events(pipeline):
    """The poller builds a dispatched task's state from the events its schedule consumer already
    receives: the same state a read of the stream gives, so its checks read nothing."""
    pipeline.fakes["kie"].script = Script(polls_to_finish=10**6)
    worker = pipeline.stack.extra("poller", "worker")
    created = await pipeline.generate("kie-nano-banana", prompt="a quiet harbour")
    await pipeline.wait_for(created.id, lambda t: t.status == generation_pb2.PROCESSING)
    for _ in range(100):
        if worker.checks >= 2:
            break
        await asyncio.sleep(0.1)
    assert worker.checks >= 2
    assert worker.stream_reads == 0
    cached = worker.cached(created.id)
    loaded = await worker.repo.load(created.id)
    assert cached is not None
    assert cached.history == loaded.history == ("TaskCreated", "TaskDispatching", "TaskDispatched")
    for name in ("version", "status", "model", "created", "provider_task_id", "parameters", "created_at"):
        assert getattr(cached, name) == getattr(loaded, name), name
    assert cached.correlation_id == loaded.correlation_id and cached.correlation_id


async def test_a_dispatcher_without_workers_serves_the_api_and_leaves_dispatching_to_others(
    pg_url, nats_url, monkeypatch, tmp_path
):
    """AIGEN_DISPATCH_WORKERS=0: submissions are accepted and queued, no provider is called here."""
    async with pipeline_running(
        pg_url, nats_url, monkeypatch, tmp_path, env={"AIGEN_DISPATCH_WORKERS": "0"}
    ) as pipeline:
        created = await pipeline.generate("kie-nano-banana", prompt="left for another replica")
        assert created.status == generation_pb2.PENDING
        await asyncio.sleep(1.5)
        assert (await pipeline.get(created.id)).status == generation_pb2.PENDING
        assert pipeline.fakes["kie"].requests_to("/api/v1/jobs/createTask", "POST") == []
        db = pipeline.stack.runtimes["dispatcher"].db
        async with db.connection() as conn:
            queued = await (await conn.execute("SELECT key FROM dispatch_jobs")).fetchall()
        assert [row[0] for row in queued] == [created.id]


async def test_a_bad_dispatch_workers_setting_stops_the_dispatcher_with_one_clear_line(monkeypatch):
    from aigen.config import ConfigError

    from services.dispatcher.server import dispatch_workers

    monkeypatch.setenv("AIGEN_DISPATCH_WORKERS", "many")
    with pytest.raises(ConfigError, match="AIGEN_DISPATCH_WORKERS must be a whole number"):
        dispatch_workers()
    monkeypatch.setenv("AIGEN_DISPATCH_WORKERS", "-1")
    with pytest.raises(ConfigError, match="0 \\(API only\\) or more"):
        dispatch_workers()
    monkeypatch.setenv("AIGEN_DISPATCH_WORKERS", "4")
    assert dispatch_workers() == 4
