"""Following a task as it changes, through the dispatcher's WatchTask stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
from aigen import errors
from aigen.grpcx.status import from_rpc_error
from aigen.v1 import generation_pb2, generation_pb2_grpc
from grpc import aio

from services.gateway.views import is_terminal


def domain_error(exc: grpc.RpcError) -> Exception:
    """The domain error a failed stream read means (as `aigen.grpcx.client.call` does for unary calls)."""
    found = from_rpc_error(exc)
    if found is not None:
        return found
    code: grpc.StatusCode | None = exc.code() if isinstance(exc, aio.AioRpcError) else None
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return errors.Unavailable("a service did not answer")
    unexpected: Exception = exc
    return unexpected


class TaskWatch:
    """An open WatchTask stream. The first `next()` raises the domain error (not found…) before
    anything is sent to the client; `updates()` then yields each new state until a terminal one."""

    def __init__(self, stub: generation_pb2_grpc.GenerationServiceStub, task_id: str, owner: str) -> None:
        self._call: aio.UnaryStreamCall = stub.WatchTask(
            generation_pb2.WatchTaskRequest(id=task_id, owner=owner)
        )

    async def next(self, within_s: float | None = None) -> generation_pb2.Task | None:
        """The next state; None when the stream ended. TimeoutError after `within_s` seconds."""
        try:
            if within_s is None:
                message = await self._call.read()
            else:
                message = await asyncio.wait_for(self._call.read(), within_s)
        except grpc.RpcError as exc:
            raise domain_error(exc) from None
        if message is aio.EOF:
            return None
        assert isinstance(message, generation_pb2.Task)
        return message

    def close(self) -> None:
        self._call.cancel()


async def wait_terminal(
    stub: generation_pb2_grpc.GenerationServiceStub, task_id: str, owner: str, seconds: float
) -> generation_pb2.Task | None:
    """The task's latest state after waiting up to `seconds` for a terminal one."""
    watch = TaskWatch(stub, task_id, owner)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    latest: generation_pb2.Task | None = None
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return latest
            try:
                task = await watch.next(remaining)
            except TimeoutError:
                return latest
            if task is None:
                return latest
            latest = task
            if is_terminal(task):
                return latest
    finally:
        watch.close()


async def updates(
    watch: TaskWatch, first: generation_pb2.Task, heartbeat_s: float
) -> AsyncIterator[generation_pb2.Task | None]:
    """`first`, then each change; None now and then while nothing changes (a heartbeat)."""
    try:
        yield first
        if is_terminal(first):
            return
        while True:
            try:
                task = await watch.next(heartbeat_s)
            except TimeoutError:
                yield None
                continue
            if task is None:
                return
            yield task
            if is_terminal(task):
                return
    finally:
        with contextlib.suppress(Exception):
            watch.close()
