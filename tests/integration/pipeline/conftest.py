"""The task pipeline in-process: catalog, dispatcher, poller (and storage when present) on real
PostgreSQL and NATS, with every provider pointed at its fake and the local provider served."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import psycopg
import pytest
from aigen.config import Settings
from aigen.devtools.servers import drop_streams
from aigen.grpcx.client import call
from aigen.providers.local.service import create_app as create_local_provider
from aigen.simulator.base import FakeProvider, Script
from aigen.simulator.catalog import SimulatorApp, make_fakes, simulator_env
from aigen.simulator.serving import serve_asgi
from aigen.v1 import catalog_pb2_grpc, generation_pb2, generation_pb2_grpc

from tests.support.stack import Stack, running_stack

SECRET = "pipeline-test-secret-key-0123456789"
HAS_STORAGE = importlib.util.find_spec("services.storage.server") is not None


@dataclass
class Pipeline:
    stack: Stack
    fakes: dict[str, FakeProvider]
    generation: generation_pb2_grpc.GenerationServiceStub
    catalog: catalog_pb2_grpc.CatalogServiceStub
    poller: generation_pb2_grpc.PollerServiceStub | None
    simulator_url: str

    async def generate(
        self, model: str, prompt: str = "a lighthouse at dusk", **fields
    ) -> generation_pb2.Task:
        request = generation_pb2.GenerateRequest(model=model, prompt=prompt, **fields)
        return await call(self.generation.Generate, request)

    async def get(self, task_id: str) -> generation_pb2.Task:
        return await call(self.generation.GetTask, generation_pb2.GetTaskRequest(id=task_id))

    async def wait_for(self, task_id: str, predicate, timeout: float = 30.0) -> generation_pb2.Task:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            task = await self.get(task_id)
            if predicate(task):
                return task
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"task {task_id} never got there; last: {task}")
            await asyncio.sleep(0.05)

    async def settled(self, task_id: str, timeout: float = 30.0) -> generation_pb2.Task:
        """Until the task is terminal, or completed by the provider when no storage runs."""

        def done(t: generation_pb2.Task) -> bool:
            if t.status in (generation_pb2.SUCCESS, generation_pb2.FAILED, generation_pb2.CANCELLED):
                return True
            return (
                not HAS_STORAGE
                and t.progress >= 1.0
                and t.status == generation_pb2.PROCESSING
                and bool(t.results)
            )

        return await self.wait_for(task_id, done, timeout)


class CallbackReceiver:
    """Stands in for the gateway's callback endpoint: forwards provider POSTs to the poller."""

    def __init__(self) -> None:
        self.poller: generation_pb2_grpc.PollerServiceStub | None = None
        self.answers: list[tuple[int, dict]] = []
        self.bodies: list[tuple[str, dict[str, str], bytes]] = []

    async def __call__(self, scope, receive, send) -> None:
        from aigen import errors
        from starlette.requests import Request
        from starlette.responses import JSONResponse

        request = Request(scope, receive)
        _, _, provider, token = request.url.path.split("/", 3)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.bodies.append((request.url.path, headers, body))
        assert self.poller is not None
        try:
            reply = await call(
                self.poller.DeliverCallback,
                generation_pb2.DeliverCallbackRequest(
                    provider=provider, token=token, headers=headers, body=body
                ),
            )
            answer = (200, {"task_id": reply.task_id, "accepted": reply.accepted})
        except errors.Unauthenticated as exc:
            answer = (401, {"error": str(exc)})
        except errors.DomainError as exc:
            answer = (400, {"error": str(exc)})
        self.answers.append(answer)
        await JSONResponse(answer[1], status_code=answer[0])(scope, receive, send)


@contextlib.asynccontextmanager
async def pipeline_running(
    pg_url: str,
    nats_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
    *,
    services=None,
    env=None,
    callbacks: CallbackReceiver | None = None,
) -> AsyncIterator[Pipeline]:
    schema = f"p_{uuid.uuid4().hex[:12]}"
    namespace = f"p{uuid.uuid4().hex[:12]}"
    fakes = make_fakes(seconds_to_finish=None)
    for fake in fakes.values():
        fake.script = Script(polls_to_finish=2)
    simulator = SimulatorApp(fakes)
    try:
        async with contextlib.AsyncExitStack() as exits:
            sim_url = await exits.enter_async_context(serve_asgi(simulator))
            local_url = await exits.enter_async_context(serve_asgi(create_local_provider(tmp_path / "local")))
            callback_url = (
                await exits.enter_async_context(serve_asgi(callbacks)) if callbacks is not None else None
            )
            simulator.set_base_url(sim_url)
            for key, value in simulator_env(sim_url).items():
                monkeypatch.setenv(key, value)
            monkeypatch.setenv("AIGEN_PROVIDER_LOCAL_ENDPOINT", local_url)
            monkeypatch.setenv("AIGEN_NETGUARD_ALLOW", "127.0.0.1")
            monkeypatch.setenv("AIGEN_STORAGE_DIR", str(tmp_path / "objects"))
            monkeypatch.setenv("AIGEN_POLL_INTERVAL_S", "0.2")
            for key, value in (env or {}).items():
                monkeypatch.setenv(key, value)
            settings = Settings(
                callback_base_url=callback_url,
                database_url=pg_url,
                db_schema=schema,
                nats_url=nats_url,
                nats_namespace=namespace,
                secret_key=SECRET,
                home=tmp_path,
                log_format="text",
            )
            wanted = services or ("catalog", "dispatcher", "poller", *(("storage",) if HAS_STORAGE else ()))
            stack = await exits.enter_async_context(running_stack(settings, wanted))
            poller = (
                generation_pb2_grpc.PollerServiceStub(stack.channel("poller")) if "poller" in wanted else None
            )
            if callbacks is not None:
                callbacks.poller = poller
            yield Pipeline(
                stack=stack,
                fakes=fakes,
                generation=generation_pb2_grpc.GenerationServiceStub(stack.channel("dispatcher")),
                catalog=catalog_pb2_grpc.CatalogServiceStub(stack.channel("catalog")),
                poller=poller,
                simulator_url=sim_url,
            )
    finally:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await drop_streams(nats_url, namespace)


@pytest.fixture
async def pipeline(pg_url, nats_url, monkeypatch, tmp_path) -> AsyncIterator[Pipeline]:
    async with pipeline_running(pg_url, nats_url, monkeypatch, tmp_path) as p:
        yield p
