"""The pipeline with the ops service: catalog, dispatcher, poller, storage and ops in-process on
real PostgreSQL and NATS, every provider pointed at its fake. Evaluation runs every 0.2 s and
the breaker cache lives 0.1 s, so a test sees decisions within a second; thresholds are set per
test through the environment, as a deployment would set them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aigen.eventstore.mapper import decode
from aigen.eventstore.store import EventStore
from aigen.grpcx.client import call
from aigen.v1 import generation_pb2, ops_pb2, ops_pb2_grpc
from google.protobuf.message import Message

from tests.integration.pipeline.conftest import HAS_STORAGE, Pipeline, pipeline_running

FAST = {
    "AIGEN_OPS_EVALUATE_S": "0.2",
    "AIGEN_OPS_HEALTH_INTERVAL_S": "0",
    "AIGEN_BREAKER_CACHE_S": "0.1",
}
SERVICES = ("catalog", "dispatcher", "poller", *(("storage",) if HAS_STORAGE else ()), "ops")
TERMINAL = (generation_pb2.SUCCESS, generation_pb2.FAILED, generation_pb2.CANCELLED)


@dataclass
class Ops:
    pipeline: Pipeline
    health: ops_pb2_grpc.HealthCheckServiceStub
    errors: ops_pb2_grpc.ErrorLogServiceStub
    alerts: ops_pb2_grpc.SystemAlertServiceStub

    @property
    def store(self) -> EventStore:
        return EventStore(self.pipeline.stack.runtimes["dispatcher"].db)

    @property
    def evaluator(self) -> Any:
        return self.pipeline.stack.extra("ops", "evaluator")

    async def stream(self, stream_id: str) -> list[Message]:
        return [decode(e) for e in await self.store.read_stream(stream_id)]

    async def stream_types(self, stream_id: str) -> list[str]:
        return [type(m).__name__ for m in await self.stream(stream_id)]

    async def eventually(
        self, probe: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout: float = 30.0
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await probe()
            if done(value):
                return value
            if loop.time() > deadline:
                raise AssertionError(f"never happened; last value: {value!r}")
            await asyncio.sleep(0.1)

    async def rounds(self, count: int = 3) -> None:
        """Let the evaluator run `count` more rounds (a condition that lasts stays deduplicated)."""
        start = self.evaluator.ticks
        await self.eventually(lambda: _ticks(self.evaluator), lambda t: t >= start + count)

    async def alerts_of(self, rule: str, subject: str = "", status: int = 0) -> list[ops_pb2.Alert]:
        reply = await call(
            self.alerts.ListAlerts, ops_pb2.ListAlertsRequest(rule=rule, subject=subject, status=status)
        )
        return list(reply.alerts)

    async def settled(self, task_id: str, timeout: float = 60.0) -> generation_pb2.Task:
        return await self.pipeline.wait_for(task_id, lambda t: t.status in TERMINAL, timeout)


async def _ticks(evaluator: Any) -> int:
    return int(evaluator.ticks)


@contextlib.asynccontextmanager
async def ops_running(
    pg_url: str,
    nats_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    *,
    env: dict[str, str] | None = None,
    services: tuple[str, ...] = SERVICES,
) -> AsyncIterator[Ops]:
    async with pipeline_running(
        pg_url, nats_url, monkeypatch, tmp_path, env={**FAST, **(env or {})}, services=services
    ) as pipeline:
        channel = pipeline.stack.channel("ops")
        yield Ops(
            pipeline,
            ops_pb2_grpc.HealthCheckServiceStub(channel),
            ops_pb2_grpc.ErrorLogServiceStub(channel),
            ops_pb2_grpc.SystemAlertServiceStub(channel),
        )


@pytest.fixture
async def ops(pg_url, nats_url, monkeypatch, tmp_path) -> AsyncIterator[Ops]:
    async with ops_running(pg_url, nats_url, monkeypatch, tmp_path) as harness:
        yield harness
