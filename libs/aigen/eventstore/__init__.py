"""The event log on PostgreSQL: optimistic concurrency per stream, global order, idempotent appends."""

from aigen.eventstore.store import (
    ANY_VERSION,
    AppendResult,
    ConcurrencyError,
    EventStore,
    NewEvent,
    RecordedEvent,
)

__all__ = [
    "ANY_VERSION",
    "AppendResult",
    "ConcurrencyError",
    "EventStore",
    "NewEvent",
    "RecordedEvent",
]
