"""The poller's fold of task events: exact in order, and it lets go of a task at any doubt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aigen.tasks.domain import Status, TaskState, evolve
from aigen.v1 import common_pb2, events_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.poller.fold import StreamFold

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def envelope(stream: str, version: int, message: Message) -> common_pb2.EventEnvelope:
    at = Timestamp()
    at.FromDatetime(T0 + timedelta(seconds=version))
    return common_pb2.EventEnvelope(
        event_id=f"e-{stream}-{version}",
        stream_id=stream,
        version=version,
        type=message.DESCRIPTOR.full_name,
        time=at,
        correlation_id="corr-1" if version == 1 else f"other-{version}",
        trace_context={"traceparent": "00-abc-def-01"} if version == 1 else {},
        payload=message.SerializeToString(),
    )


def events(task_id: str) -> list[Message]:
    model = events_pb2.ModelSnapshot(model_slug="kie-nano-banana", provider_slug="kie")
    return [
        events_pb2.TaskCreated(task_id=task_id, prompt="p", model=model),
        events_pb2.TaskDispatching(task_id=task_id, attempt=1, model=model),
        events_pb2.TaskDispatched(task_id=task_id, provider_task_id="pt-1", model=model),
    ]


def test_in_order_the_fold_is_the_state_a_read_gives():
    fold = StreamFold()
    folded = None
    for version, message in enumerate(events("t1"), start=1):
        folded = fold.observe(envelope("task-t1", version, message), message)
    expected = TaskState(id="t1")
    for version, message in enumerate(events("t1"), start=1):
        expected = evolve(expected, message, T0 + timedelta(seconds=version))
    assert folded is not None
    assert folded.version == 3 and folded.status is Status.PROCESSING and folded.provider_task_id == "pt-1"
    assert folded.history == expected.history and folded.updated_at == expected.updated_at
    # The first event's correlation and trace, as a read takes them.
    assert folded.correlation_id == "corr-1" and folded.trace_context == {"traceparent": "00-abc-def-01"}


def test_a_gap_a_repeat_or_a_missed_start_lets_the_task_go():
    created, dispatching, dispatched = events("t2")
    fold = StreamFold()
    assert fold.observe(envelope("task-t2", 1, created), created) is not None
    assert fold.observe(envelope("task-t2", 3, dispatched), dispatched) is None  # version 2 missing
    assert fold.take("task-t2") is None
    assert fold.observe(envelope("task-t2", 2, dispatching), dispatching) is None  # no longer followed

    fold.observe(envelope("task-t3", 1, created), created)
    fold.observe(envelope("task-t3", 2, dispatching), dispatching)
    assert fold.observe(envelope("task-t3", 2, dispatching), dispatching) is None  # a redelivery
    assert len(fold) == 0

    # A stream that started before this process: nothing to fold from.
    assert fold.observe(envelope("task-t4", 2, dispatching), dispatching) is None
    # Version 1 that is not a creation: not a task stream this fold understands.
    assert fold.observe(envelope("task-t5", 1, dispatching), dispatching) is None
    # An event type this process does not know.
    fold.observe(envelope("task-t6", 1, created), created)
    assert fold.observe(envelope("task-t6", 2, dispatching), None) is None


def test_the_fold_keeps_at_most_its_limit_oldest_dropped():
    fold = StreamFold(limit=2)
    for name in ("a", "b", "c"):
        created = events(name)[0]
        fold.observe(envelope(f"task-{name}", 1, created), created)
    assert len(fold) == 2
    assert fold.take("task-a") is None
    assert fold.take("task-c") is not None
