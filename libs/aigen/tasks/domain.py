"""The task aggregate: its state is a fold over its events; its rules are pure functions.

Lifecycle (status as clients see it):

    PENDING ──TaskDispatched──► PROCESSING ──TaskCompleted──► (storing) ──ResultsStored──► SUCCESS
       │                            │
       └──TaskCompleted (sync)──────┘──TaskFailed──► FAILED ──TaskCompleted(late)──► (storing) …
    PENDING/PROCESSING ──TaskCancelled──► CANCELLED

A task is SUCCESS only once its results are stored (or storing fell back to the provider's URLs).
`TaskDeleted` is a soft delete: the task keeps its status, work on it stops, lists hide it.
Several services append to one task stream (dispatcher, poller, storage); each decides from the
state it just loaded and appends with that version, so a concurrent change makes one of them
reload and decide again.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from aigen.v1 import events_pb2


class Status(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({Status.SUCCESS, Status.FAILED, Status.CANCELLED})


def stream_id(task_id: str) -> str:
    return f"task-{task_id}"


def task_id_of(stream: str) -> str:
    return stream.removeprefix("task-")


@dataclass(frozen=True)
class TaskError:
    code: str
    message: str
    retryable: bool = False
    stage: str = ""


@dataclass(frozen=True)
class TaskState:
    id: str
    version: int = 0
    status: Status = Status.PENDING
    progress: float = 0.0
    created: events_pb2.TaskCreated | None = None
    model: events_pb2.ModelSnapshot | None = None  # who serves it now (changes on failover)
    provider_task_id: str = ""
    callback_requested: bool = False
    dispatch_attempts: int = 0
    model_attempts: int = 0  # dispatch attempts on the current model (reset by a failover)
    parameters: dict[str, Any] | None = None  # as sent to the current model (after failover)
    dispatch_in_flight: bool = False  # intent recorded, outcome not yet: a crash leaves this set
    failed_over_from: tuple[str, ...] = ()
    provider_results: tuple[events_pb2.ProviderResult, ...] = ()
    stored_results: tuple[events_pb2.StoredResult, ...] = ()
    completed: bool = False  # the provider finished (results may still be storing)
    results_stored: bool = False
    late: bool = False
    charge: events_pb2.ProviderCharge | None = None
    error: TaskError | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    deleted_at: datetime | None = None
    cancel_reason: str = ""
    history: tuple[str, ...] = field(default=(), repr=False)  # event short names, for debugging
    # The request that created the task (TaskCreated's metadata): work done on the task later, in
    # any process, logs under its correlation id and continues its trace.
    correlation_id: str = ""
    trace_context: dict[str, str] | None = field(default=None, repr=False)

    @property
    def exists(self) -> bool:
        return self.created is not None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def owner(self) -> str:
        return self.created.owner if self.created else ""

    @property
    def awaiting_provider(self) -> bool:
        """Dispatched and still waiting for the provider: the poller's business."""
        return self.status is Status.PROCESSING and not self.completed and not self.deleted

    @property
    def storing(self) -> bool:
        return self.completed and not self.results_stored


def evolve(state: TaskState, message: Message, at: datetime) -> TaskState:
    """The state after one event. Unknown event types leave the state as it was (but counted)."""
    changes = _changes(state, message, at)
    changes["version"] = state.version + 1
    changes["updated_at"] = at
    changes["history"] = (*state.history, type(message).__name__)
    # `dataclasses.replace` would walk the fields and run __init__: a few microseconds that every
    # process pays for every event it reads or writes. The state is frozen to its users; a copy of
    # its attributes with the changes applied is the same value, made once.
    new = object.__new__(TaskState)
    new.__dict__.update(state.__dict__)
    new.__dict__.update(changes)
    return new


def _changes(s: TaskState, message: Message, at: datetime) -> dict[str, Any]:
    if isinstance(message, events_pb2.TaskCreated):
        return {
            "created": message,
            "model": message.model,
            "parameters": MessageToDict(message.parameters),
            "created_at": at,
            "status": Status.PENDING,
        }
    if isinstance(message, events_pb2.TaskDispatching):
        return {
            "dispatch_attempts": s.dispatch_attempts + 1,
            "model_attempts": s.model_attempts + 1,
            "dispatch_in_flight": True,
            "model": message.model,
        }
    if isinstance(message, events_pb2.DispatchAttemptFailed):
        return {"dispatch_in_flight": False}
    if isinstance(message, events_pb2.TaskFailedOver):
        return {
            "failed_over_from": (*s.failed_over_from, message.from_model_slug),
            "model": message.model,
            "parameters": MessageToDict(message.parameters),
            "model_attempts": 0,
        }
    if isinstance(message, events_pb2.TaskDispatched):
        return {
            "status": Status.PROCESSING,
            "provider_task_id": message.provider_task_id,
            "model": message.model,
            "callback_requested": message.callback_requested,
            "dispatch_in_flight": False,
        }
    if isinstance(message, events_pb2.TaskProgressed):
        return {"progress": max(s.progress, min(1.0, message.progress))}
    if isinstance(message, events_pb2.TaskCompleted):
        return {
            "status": Status.PROCESSING,
            "completed": True,
            "late": message.late,
            "provider_results": tuple(message.results),
            "charge": message.charge if message.HasField("charge") else s.charge,
            "progress": 1.0,
            "dispatch_in_flight": False,
            "error": None if message.late else s.error,
            "completed_at": at,
        }
    if isinstance(message, events_pb2.ResultsStored):
        return {"status": Status.SUCCESS, "results_stored": True, "stored_results": tuple(message.results)}
    if isinstance(message, events_pb2.TaskFailed):
        return {
            "status": Status.FAILED,
            "dispatch_in_flight": False,
            "error": TaskError(message.code, message.message, message.retryable, message.stage),
            "completed_at": at,
        }
    if isinstance(message, events_pb2.TaskCancelled):
        return {"status": Status.CANCELLED, "cancel_reason": message.reason, "completed_at": at}
    if isinstance(message, events_pb2.TaskDeleted):
        return {"deleted_at": at}
    return {}


def replay(task_id: str, events: Iterable[tuple[Message, datetime]]) -> TaskState:
    state = TaskState(id=task_id)
    for message, at in events:
        state = evolve(state, message, at)
    return state


# --- rules --------------------------------------------------------------------------------------


class RuleViolation(Exception):
    """A command that the task's current state does not allow."""


def failover_chain(state: TaskState) -> list[str]:
    """Model slugs in the order they may serve this task: the chosen one, then its alternatives."""
    if state.created is None:
        return []
    return [state.created.model.model_slug, *state.created.model.alternatives]


def next_alternative(state: TaskState) -> str | None:
    """The model to fail over to next, or None when the chain is exhausted."""
    tried = {*state.failed_over_from, state.model.model_slug if state.model else ""}
    for slug in failover_chain(state):
        if slug not in tried:
            return slug
    return None


def may_dispatch(state: TaskState) -> bool:
    return (
        state.exists and state.status is Status.PENDING and not state.deleted and not state.dispatch_in_flight
    )


def may_record_provider_outcome(state: TaskState) -> bool:
    """A poll or callback result still matters."""
    return state.exists and state.status is Status.PROCESSING and not state.completed and not state.deleted


def may_accept_late_completion(state: TaskState) -> bool:
    """After a timeout failure, a late success is recorded rather than losing paid-for media."""
    return (
        state.status is Status.FAILED
        and state.error is not None
        and state.error.stage == "timeout"
        and not state.completed
        and not state.deleted
    )


def cancel(state: TaskState, reason: str, requested_by: str) -> events_pb2.TaskCancelled:
    if not state.exists:
        raise RuleViolation("no such task")
    if state.terminal:
        raise RuleViolation(f"the task is already {state.status.value}")
    if state.completed:
        raise RuleViolation("the provider already finished; the results are being stored")
    return events_pb2.TaskCancelled(task_id=state.id, reason=reason or "cancelled", requested_by=requested_by)


def delete(state: TaskState, requested_by: str) -> events_pb2.TaskDeleted | None:
    """Soft delete; deleting twice is a no-op (None)."""
    if not state.exists:
        raise RuleViolation("no such task")
    if state.deleted:
        return None
    return events_pb2.TaskDeleted(task_id=state.id, requested_by=requested_by)
