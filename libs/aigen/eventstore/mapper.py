"""Event messages ⇄ log rows. Payloads are the protobuf messages of protos/aigen/v1/events.proto.

Old event shapes are upcast here, on the way in, never in handlers: a handler only ever sees the
current message type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.message import DecodeError, Message

from aigen import context
from aigen.eventstore.store import NewEvent, RecordedEvent
from aigen.v1 import events_pb2, ledger_pb2, ops_pb2

EVENT_TYPES: dict[str, type[Message]] = {}

# type name → function turning an old payload into (current type name, current payload).
UPCASTERS: dict[str, Callable[[bytes], tuple[str, bytes]]] = {}


class UnknownEventType(LookupError):
    def __init__(self, position: int, type_name: str) -> None:
        super().__init__(f"event at position {position} has unknown type {type_name!r}")
        self.position = position
        self.type_name = type_name


class MalformedEvent(ValueError):
    def __init__(self, position: int, type_name: str, reason: str) -> None:
        super().__init__(f"event at position {position} ({type_name}) cannot be decoded: {reason}")
        self.position = position
        self.type_name = type_name


def register(*classes: type[Message]) -> None:
    for cls in classes:
        EVENT_TYPES[cls.DESCRIPTOR.full_name] = cls


register(
    events_pb2.TaskCreated,
    events_pb2.TaskDispatching,
    events_pb2.DispatchAttemptFailed,
    events_pb2.TaskDispatched,
    events_pb2.TaskProgressed,
    events_pb2.TaskCompleted,
    events_pb2.ResultsStored,
    events_pb2.TaskFailed,
    events_pb2.TaskCancelled,
    events_pb2.TaskDeleted,
    events_pb2.TaskFailedOver,
)
# The billing ledger's events (stream "ledger-<account>"), appended by the gateway.
register(
    ledger_pb2.HoldPlaced,
    ledger_pb2.HoldReleased,
    ledger_pb2.ChargeSettled,
    ledger_pb2.LateChargeRecorded,
)
# Operations: provider health, breaker transitions, the error log, alerts (see ops.proto).
register(
    ops_pb2.ProviderHealthChecked,
    ops_pb2.ProviderErrorRecorded,
    ops_pb2.ProviderCooledDown,
    ops_pb2.ProviderRecovered,
    ops_pb2.AlertRaised,
    ops_pb2.AlertResolved,
)


def type_name(message: Message | type[Message]) -> str:
    return message.DESCRIPTOR.full_name


def short_type(name: str) -> str:
    """`aigen.v1.TaskCreated` → `TaskCreated`."""
    return name.rsplit(".", 1)[-1]


def current_metadata(
    *, causation_id: str | None = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Metadata for events appended now: the correlation id in context, trace context, causation."""
    meta: dict[str, Any] = {}
    if (cid := context.correlation_id.get()) is not None:
        meta["correlation_id"] = cid
    if causation_id:
        meta["causation_id"] = causation_id
    from aigen.tracing import current_trace_context  # late: tracing is optional at import time

    trace = current_trace_context()
    if trace:
        meta["trace_context"] = trace
    if extra:
        meta.update(extra)
    return meta


def to_new_event(message: Message, *, metadata: Mapping[str, Any] | None = None) -> NewEvent:
    name = type_name(message)
    if name not in EVENT_TYPES:
        raise LookupError(f"{name} is not a registered event type")
    return NewEvent(
        type=name,
        payload=message.SerializeToString(deterministic=True),
        metadata=dict(metadata) if metadata is not None else current_metadata(),
    )


def decode(event: RecordedEvent) -> Message:
    name, payload = event.type, event.payload
    upcast = UPCASTERS.get(name)
    if upcast is not None:
        name, payload = upcast(payload)
    cls = EVENT_TYPES.get(name)
    if cls is None:
        raise UnknownEventType(event.global_position, event.type)
    message = cls()
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise MalformedEvent(event.global_position, event.type, str(exc) or "bad protobuf") from None
    return message
