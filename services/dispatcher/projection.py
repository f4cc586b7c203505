"""The task list/detail read model (`task_views`), a projection of task events.

Each row is the view of its task's stream as of the newest event the projection has applied.
Within a batch, a task that got several events is written once, at its newest version — the
row depends only on the events up to that version, so a rebuild from zero yields the same rows.

The state of recently seen tasks is kept in memory (a state at version v is a fact: events never
change), so a batch usually evolves it with the batch's own events instead of reading the whole
stream again; tasks not in memory are read in one query for the batch, and the rows are written
in one pipelined round trip.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aigen.eventstore.mapper import decode
from aigen.eventstore.store import COLUMNS as EVENT_COLUMNS
from aigen.eventstore.store import Conn, RecordedEvent, recorded
from aigen.projections.runner import Projection
from aigen.tasks.domain import Status, TaskState, evolve, task_id_of
from aigen.tasks.views import PROTO_TO_STATUS, results_of, timestamp
from aigen.v1 import common_pb2, events_pb2, generation_pb2
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import Message
from psycopg.types.json import Jsonb

TASK_EVENT_TYPES = frozenset(
    cls.DESCRIPTOR.full_name
    for cls in (
        events_pb2.TaskCreated,
        events_pb2.TaskDispatching,
        events_pb2.DispatchAttemptFailed,
        events_pb2.TaskFailedOver,
        events_pb2.TaskDispatched,
        events_pb2.TaskProgressed,
        events_pb2.TaskCompleted,
        events_pb2.ResultsStored,
        events_pb2.TaskFailed,
        events_pb2.TaskCancelled,
        events_pb2.TaskDeleted,
    )
)


def _usd(value: str) -> Decimal | None:
    try:
        return Decimal(value) if value else None
    except InvalidOperation:
        return None


# Read the streams of a batch's tasks up to the versions it needs, in one query.
_READ_UPTO = f"""
SELECT {", ".join("e." + c.strip() for c in EVENT_COLUMNS.split(","))}
FROM events e JOIN unnest(%s::text[], %s::bigint[]) AS d(stream_id, upto)
  ON e.stream_id = d.stream_id AND e.version <= d.upto
ORDER BY e.stream_id, e.version
"""


class TaskProjection(Projection):
    name = "tasks"
    tables = ("task_views",)
    types = TASK_EVENT_TYPES

    def __init__(self, *, remember: int = 20_000) -> None:
        self._batch: dict[str, list[tuple[RecordedEvent, Message]]] = {}
        self._states: OrderedDict[str, TaskState] = OrderedDict()  # least recently used first
        self._remember = remember

    def begin_batch(self) -> None:
        self._batch = {}

    async def apply(self, conn: Conn, event: RecordedEvent, message: Message) -> None:
        self._batch.setdefault(event.stream_id, []).append((event, message))

    async def end_batch(self, conn: Conn) -> None:
        batch, self._batch = self._batch, {}
        states: dict[str, TaskState] = {}
        unknown: dict[str, int] = {}
        for stream, events in batch.items():
            state = self._states.get(stream)
            if state is None and events[0][0].version == 1:
                state = TaskState(id=task_id_of(stream))
            if state is None or state.version != events[0][0].version - 1:
                unknown[stream] = events[-1][0].version  # not in memory (or not at that version)
                continue
            for event, message in events:
                state = evolve(state, message, event.recorded_at)
            states[stream] = state
        if unknown:
            rows = await (await conn.execute(_READ_UPTO, (list(unknown), list(unknown.values())))).fetchall()
            for row in rows:
                event = recorded(row)
                state = states.get(event.stream_id) or TaskState(id=task_id_of(event.stream_id))
                states[event.stream_id] = evolve(state, decode(event), event.recorded_at)
        written = [state for state in states.values() if state.exists]
        if written:
            await conn.cursor().executemany(UPSERT, [_row(state) for state in written])
        for stream, state in states.items():
            self._states[stream] = state
            self._states.move_to_end(stream)
        while len(self._states) > self._remember:
            self._states.popitem(last=False)


UPSERT = """
        INSERT INTO task_views (task_id, version, status, progress, model_id, model_slug, provider_slug,
            output_type, prompt, input_images, number_of_outputs, parameters, results, results_stored,
            provider_task_id, error_code, error_message, quote, quote_usd, charge, charge_usd, shot_id,
            owner, request_id, webhook_url, created_at, updated_at, completed_at, deleted_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
            %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (task_id) DO UPDATE SET version = EXCLUDED.version, status = EXCLUDED.status,
            progress = EXCLUDED.progress, model_id = EXCLUDED.model_id, model_slug = EXCLUDED.model_slug,
            provider_slug = EXCLUDED.provider_slug, parameters = EXCLUDED.parameters,
            results = EXCLUDED.results, results_stored = EXCLUDED.results_stored,
            provider_task_id = EXCLUDED.provider_task_id, error_code = EXCLUDED.error_code,
            error_message = EXCLUDED.error_message, charge = EXCLUDED.charge,
            charge_usd = EXCLUDED.charge_usd,
            updated_at = EXCLUDED.updated_at, completed_at = EXCLUDED.completed_at,
            deleted_at = EXCLUDED.deleted_at
        WHERE task_views.version < EXCLUDED.version
        """


def _row(state: TaskState) -> tuple[Any, ...]:
    """The row of `task_view(state)`, made from the state itself: the projection writes one per
    task and batch, and building the whole client view first cost more than the rest."""
    created = state.created
    assert created is not None  # only tasks that exist are written
    model = state.model
    charge = state.charge
    if state.status is Status.FAILED and state.error is not None:
        error_code, error_message = state.error.code, state.error.message
    elif state.status is Status.CANCELLED:
        error_code, error_message = "CANCELLED", state.cancel_reason
    else:
        error_code, error_message = "", ""
    return (
        state.id,
        state.version,
        state.status.value,
        state.progress,
        model.model_id if model else "",
        model.model_slug if model else "",
        model.provider_slug if model else "",
        common_pb2.OutputType.Name(created.model.output_type),
        created.prompt,
        Jsonb(list(created.input_images)),
        created.number_of_outputs,
        Jsonb(state.parameters or {}),
        Jsonb([MessageToDict(r, preserving_proto_field_name=True) for r in results_of(state)]),
        state.results_stored,
        state.provider_task_id,
        error_code or None,
        error_message or None,
        Jsonb(_flat_dict(created.quote)),
        _usd(created.quote.usd) or Decimal(0),
        Jsonb(_flat_dict(charge)) if charge is not None else None,
        _usd(charge.usd) if charge is not None else None,
        created.shot_id,
        created.owner,
        created.request_id,
        created.webhook_url,
        state.created_at,
        state.updated_at,
        state.completed_at if state.terminal else None,
        state.deleted_at,
    )


def _flat_dict(message: Message) -> dict[str, Any]:
    """What `MessageToDict(message, preserving_proto_field_name=True)` gives for a message of
    string fields only (a price quote, a charge): its set fields by name, at a tenth of the cost.
    Written for every task row, so it counts."""
    return {field.name: value for field, value in message.ListFields()}


COLUMNS = (
    "task_id, version, status, progress, model_id, model_slug, provider_slug, output_type, prompt, "
    "input_images, number_of_outputs, parameters, results, results_stored, provider_task_id, error_code, "
    "error_message, quote, charge, shot_id, owner, request_id, webhook_url, created_at, updated_at, "
    "completed_at, deleted_at"
)


def task_from_row(row: Sequence[Any]) -> generation_pb2.Task:
    (
        task_id, version, status, progress, model_id, model_slug, provider_slug, output_type, prompt,
        input_images, number_of_outputs, parameters, results, results_stored, provider_task_id,
        error_code, error_message, quote, charge, shot_id, owner, request_id, webhook_url,
        created_at, updated_at, completed_at, deleted_at,
    ) = row  # fmt: skip
    task = generation_pb2.Task(
        id=task_id,
        version=version,
        status=_status_proto(status),
        progress=progress,
        model_id=model_id,
        model_slug=model_slug,
        provider_slug=provider_slug,
        output_type=common_pb2.OutputType.Value(output_type),
        prompt=prompt,
        input_images=list(input_images or []),
        number_of_outputs=number_of_outputs,
        results_stored=results_stored,
        provider_task_id=provider_task_id,
        shot_id=shot_id,
        owner=owner,
        request_id=request_id,
        webhook_url=webhook_url,
    )
    task.parameters.update(parameters or {})
    for result in results or []:
        task.results.append(ParseDict(result, generation_pb2.TaskResult()))
    if error_code or error_message:
        task.error.code = error_code or ""
        task.error.message = error_message or ""
    ParseDict(quote or {}, task.quote)
    if charge:
        ParseDict(charge, task.charge)
    for name, at in (
        ("created_at", created_at),
        ("updated_at", updated_at),
        ("completed_at", completed_at),
        ("deleted_at", deleted_at),
    ):
        ts = timestamp(at)
        if ts is not None:
            getattr(task, name).CopyFrom(ts)
    return task


def _status_proto(status: str) -> generation_pb2.TaskStatus.ValueType:
    for proto, domain in PROTO_TO_STATUS.items():
        if domain.value == status:
            return proto
    return generation_pb2.TASK_STATUS_UNSPECIFIED


def encode_cursor(created_at: datetime, task_id: str) -> str:
    import base64

    raw = json.dumps({"c": created_at.isoformat(), "i": task_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, str] | None:
    import base64

    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        return datetime.fromisoformat(data["c"]), str(data["i"])
    except (ValueError, KeyError, TypeError):
        return None
