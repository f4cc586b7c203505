"""Loading a task from its stream and appending its next events with optimistic concurrency."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from aigen.eventstore.mapper import decode, to_new_event
from aigen.eventstore.store import ConcurrencyError, Conn, EventStore
from aigen.tasks.domain import TaskState, evolve, stream_id

log = logging.getLogger("aigen.tasks")

Decide = Callable[[TaskState], Sequence[Message] | None]
AsyncDecide = Callable[[TaskState], Awaitable[Sequence[Message] | None]]


def with_origin(state: TaskState, metadata: Mapping[str, Any]) -> TaskState:
    """The state with the correlation id and trace of the request that created the task, from
    its first event's metadata."""
    trace = metadata.get("trace_context")
    return replace(
        state,
        correlation_id=str(metadata.get("correlation_id") or ""),
        trace_context={str(k): str(v) for k, v in trace.items()} if isinstance(trace, dict) else None,
    )


def advanced(state: TaskState, messages: Sequence[Message]) -> TaskState:
    """The state after `messages` were appended to it (now)."""
    now = datetime.now(UTC)
    for message in messages:
        state = evolve(state, message, now)
    return state


class TaskRepository:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def load(self, task_id: str, *, conn: Conn | None = None) -> TaskState:
        state = TaskState(id=task_id)
        events = await self.store.read_stream(stream_id(task_id), conn=conn)
        for event in events:
            state = evolve(state, decode(event), event.recorded_at)
        return with_origin(state, events[0].metadata) if events else state

    async def append(
        self,
        state: TaskState,
        messages: Sequence[Message],
        *,
        request_id: str | None = None,
        conn: Conn | None = None,
    ) -> TaskState:
        """Append after `state` (its version is the expected one); returns the new state."""
        if not messages:
            return state
        result = await self.store.append(
            stream_id(state.id),
            state.version,
            [to_new_event(m) for m in messages],
            request_id=request_id,
            conn=conn,
        )
        if result.duplicate:
            return await self.load(state.id, conn=conn)
        return advanced(state, messages)

    async def update(self, task_id: str, decide: Decide, *, attempts: int = 8) -> TaskState:
        """Load, decide, append; on a concurrent change, load again and decide again."""
        for _ in range(attempts):
            state = await self.load(task_id)
            messages = decide(state)
            if not messages:
                return state
            try:
                return await self.append(state, messages)
            except ConcurrencyError:
                continue
        raise ConcurrencyError(stream_id(task_id), -1, -1)
