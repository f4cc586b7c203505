"""Task states folded from the schedule consumer's own deliveries, so that a task's first check
needs no read of its stream.

The schedule consumer sees every event of every task stream, in the log's order (the relay
publishes them in commit order). Folding a stream's events gives exactly the state a read would,
as long as its versions arrive 1, 2, 3… without a gap: any gap or repeat (a redelivery, an event
handled out of turn, a stream whose start came before this process) drops the task here, and its
first check reads the stream as before. A folded state that has since moved on (a cancel between
the dispatch and the check) is no different from any cached state of the worker: its next append
meets a concurrency conflict, after which the task is read afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC

from aigen.tasks.domain import TaskState, evolve, task_id_of
from aigen.v1 import common_pb2, events_pb2
from google.protobuf.message import Message

# Tasks between their creation and their dispatch, at most; a few seconds' worth at a high rate.
DEFAULT_LIMIT = 20_000


class StreamFold:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._states: OrderedDict[str, TaskState] = OrderedDict()  # oldest first
        self._limit = limit

    def __len__(self) -> int:
        return len(self._states)

    def observe(self, envelope: common_pb2.EventEnvelope, message: Message | None) -> TaskState | None:
        """The task's state after this event, if every event before it was observed in order."""
        stream = envelope.stream_id
        if envelope.version == 1:
            if not isinstance(message, events_pb2.TaskCreated):
                return None
            # As a read would: the request's correlation and trace come from the first event.
            state = TaskState(
                id=task_id_of(stream),
                correlation_id=envelope.correlation_id,
                trace_context=dict(envelope.trace_context) or None,
            )
        else:
            previous = self._states.pop(stream, None)
            if previous is None or previous.version != envelope.version - 1 or message is None:
                return None  # a gap, a repeat or an unknown event: this task is read when needed
            state = previous
        state = evolve(state, message, envelope.time.ToDatetime(tzinfo=UTC))
        self._states[stream] = state
        while len(self._states) > self._limit:
            self._states.popitem(last=False)
        return state

    def take(self, stream: str) -> TaskState | None:
        """Stop following a task (handed over, or finished); its state so far."""
        return self._states.pop(stream, None)
