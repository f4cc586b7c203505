"""Crash suite: kill -9 the dispatcher, the poller and storage at random moments while 200 tasks
run, restart them, and check that nothing was lost, nothing was paid for twice and nothing was
stored twice — and that the task read model equals a rebuild from the log."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import uuid

import psycopg
import pytest
from aigen import errors
from aigen.db.pool import connect as connect_db
from aigen.devtools.servers import drop_streams
from aigen.grpcx.client import call, channel
from aigen.projections.runner import ProjectionRunner
from aigen.simulator.base import Script
from aigen.simulator.catalog import SimulatorApp, make_fakes, simulator_env
from aigen.simulator.serving import serve_asgi
from aigen.v1 import generation_pb2, generation_pb2_grpc

from services.dispatcher.projection import TaskProjection
from tests.support.processes import ProcessStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TASKS = 200
TERMINAL = (generation_pb2.SUCCESS, generation_pb2.FAILED, generation_pb2.CANCELLED)
VICTIMS = ("dispatcher", "poller", "storage")


async def submit(stub, i: int) -> str:
    """A client that retries with the same idempotency key until the dispatcher answers."""
    request = generation_pb2.GenerateRequest(
        model="kie-nano-banana",
        prompt=f"crash suite task {i:03d}",
        request_id=f"crash-{i:03d}",
        owner="crash",
    )
    for _ in range(200):
        try:
            task = await call(stub.Generate, request, timeout=10)
            return str(task.id)
        except (errors.Unavailable, errors.Conflict):
            await asyncio.sleep(0.2)
        except Exception as exc:  # a connection dropped mid-call by a kill
            if (
                "UNAVAILABLE" not in repr(exc)
                and "DEADLINE" not in repr(exc)
                and "CANCELLED" not in repr(exc)
            ):
                raise
            await asyncio.sleep(0.2)
    raise AssertionError(f"task {i} could not be submitted")


async def test_crash_suite_kill9_loses_nothing_pays_once_stores_once(pg_url, nats_url, tmp_path):
    rng = random.Random(20261129)
    schema = f"crash_{uuid.uuid4().hex[:10]}"
    namespace = f"crash{uuid.uuid4().hex[:10]}"
    fakes = make_fakes(seconds_to_finish=1.5)
    kie = fakes["kie"]
    kie.script = Script(seconds_to_finish=1.5)
    simulator = SimulatorApp(fakes)
    stack: ProcessStack | None = None
    async with serve_asgi(simulator) as sim_url:
        simulator.set_base_url(sim_url)
        env = {
            **simulator_env(sim_url),
            "AIGEN_DATABASE_URL": pg_url,
            "AIGEN_DB_SCHEMA": schema,
            "AIGEN_NATS_URL": nats_url,
            "AIGEN_NATS_NAMESPACE": namespace,
            "AIGEN_SECRET_KEY": "crash-suite-secret-0123456789abcdef",
            "AIGEN_STORAGE_DIR": str(tmp_path / "objects"),
            "AIGEN_NETGUARD_ALLOW": "127.0.0.1",
            "AIGEN_POLL_INTERVAL_S": "0.4",
            "AIGEN_LOG_FORMAT": "text",
            "AIGEN_LOG_LEVEL": "WARNING",
        }
        stack = ProcessStack.create(["catalog", *VICTIMS], env, tmp_path / "logs")
        try:
            await stack.start_all()
            async with channel(stack.services["dispatcher"].address) as ch:
                stub = generation_pb2_grpc.GenerationServiceStub(ch)
                submitting = asyncio.gather(*(submit(stub, i) for i in range(TASKS)))
                chaos_until = asyncio.get_running_loop().time() + 20
                while asyncio.get_running_loop().time() < chaos_until:
                    await asyncio.sleep(rng.uniform(0.5, 1.5))
                    victim = stack.services[rng.choice(VICTIMS)]
                    victim.kill9()
                    await asyncio.sleep(rng.uniform(0.1, 0.8))
                    victim.start()
                ids = await submitting
                for service in stack.services.values():
                    if not service.alive():
                        service.start()
                    await service.serving()
                assert len(set(ids)) == TASKS

                async def all_terminal() -> list[generation_pb2.Task]:
                    return [await call(stub.GetTask, generation_pb2.GetTaskRequest(id=i)) for i in ids]

                deadline = asyncio.get_running_loop().time() + 240
                while True:
                    tasks = await all_terminal()
                    if all(t.status in TERMINAL for t in tasks):
                        break
                    if asyncio.get_running_loop().time() > deadline:
                        stuck = [
                            (t.id, generation_pb2.TaskStatus.Name(t.status))
                            for t in tasks
                            if t.status not in TERMINAL
                        ]
                        raise AssertionError(
                            f"{len(stuck)} tasks never finished: {stuck[:5]}\n{stack.logs('poller')}"
                        )
                    await asyncio.sleep(1.0)
        finally:
            stack.stop_all()

        kills = {name: s.kills for name, s in stack.services.items()}
        assert sum(kills.values()) >= 8, kills

        # Nothing lost: every task terminal; failures only where a crash hid the provider's answer.
        outcomes = collections.Counter(generation_pb2.TaskStatus.Name(t.status) for t in tasks)
        failed = [t for t in tasks if t.status != generation_pb2.SUCCESS]
        assert all(t.error.code == "DISPATCH_OUTCOME_UNKNOWN" for t in failed), [
            (t.id, t.error) for t in failed
        ]
        # Such failures come only from dispatches a kill -9 of the dispatcher cut short: at most
        # its dispatch workers in flight (32) per kill, and none when it was never killed.
        assert len(failed) <= kills["dispatcher"] * 32, (outcomes, kills)
        assert outcomes["SUCCESS"] > 0, outcomes

        # Never paid twice: at most one submission per task reached the provider.
        # (A dispatcher killed mid-send leaves a request with a cut-off body: the fake refused it,
        # nothing was submitted, so it is not counted.)
        per_prompt = collections.Counter(
            json.loads(r.body)["input"]["prompt"]
            for r in kie.requests_to("/api/v1/jobs/createTask", "POST")
            if r.body.startswith(b"{") and r.body.endswith(b"}")
        )
        assert max(per_prompt.values()) == 1, per_prompt.most_common(3)
        assert len(per_prompt) >= outcomes["SUCCESS"]

        # Stored once: one ResultsStored per successful task, one object per stored result.
        db = await connect_db(pg_url, schema)
        try:
            async with db.connection() as conn:
                stored_events = collections.Counter(
                    r[0]
                    for r in await (
                        await conn.execute(
                            "SELECT stream_id FROM events WHERE type = 'aigen.v1.ResultsStored'"
                        )
                    ).fetchall()
                )
            assert set(stored_events.values()) == {1} and len(stored_events) == outcomes["SUCCESS"]
            root = tmp_path / "objects"
            objects = [
                p
                for p in root.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
            ]
            results = sum(len(t.results) for t in tasks if t.status == generation_pb2.SUCCESS)
            assert len(objects) == results

            # The read model equals a rebuild from the log.
            runner = ProjectionRunner(db, TaskProjection())
            await runner.catch_up()
            async with db.connection() as conn:
                live = await (await conn.execute("SELECT * FROM task_views ORDER BY task_id")).fetchall()
            await runner.rebuild()
            async with db.connection() as conn:
                rebuilt = await (await conn.execute("SELECT * FROM task_views ORDER BY task_id")).fetchall()
            assert rebuilt == live and len(live) == TASKS
        finally:
            await db.close()
            async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            with contextlib.suppress(Exception):
                await drop_streams(nats_url, namespace)
