"""The task read model's row says what the client view of the same state says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aigen.tasks.domain import TaskState, evolve
from aigen.tasks.views import task_view
from aigen.v1 import common_pb2, events_pb2
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct

from services.dispatcher.projection import COLUMNS, UPSERT, _row, task_from_row

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def created() -> events_pb2.TaskCreated:
    parameters = Struct()
    parameters.update({"size": "3:2", "seed": 7})
    event = events_pb2.TaskCreated(
        task_id="t1",
        prompt="a lighthouse",
        input_images=["https://example.com/a.png"],
        number_of_outputs=2,
        parameters=parameters,
        shot_id="shot-1",
        owner="acct-1",
        request_id="req-1",
        webhook_url="https://example.com/hook",
        model=events_pb2.ModelSnapshot(
            model_id="m-1", model_slug="kie-4o-image", provider_slug="kie", output_type=common_pb2.IMAGE
        ),
    )
    event.quote.amount, event.quote.currency, event.quote.usd = "7", "credits", "0.035"
    return event


def dispatched() -> list[Message]:
    model = created().model
    return [
        created(),
        events_pb2.TaskDispatching(task_id="t1", attempt=1, model=model),
        events_pb2.TaskDispatched(task_id="t1", provider_task_id="pt-9", model=model),
        events_pb2.TaskProgressed(task_id="t1", progress=0.4),
    ]


def completed() -> events_pb2.TaskCompleted:
    return events_pb2.TaskCompleted(
        task_id="t1",
        source="poll",
        results=[events_pb2.ProviderResult(type="image", url="https://cdn.example.com/1.png")],
        charge=events_pb2.ProviderCharge(amount="6", currency="credits", usd="0.03"),
    )


HISTORIES = {
    "created": [created()],
    "processing": dispatched(),
    "completed": [*dispatched(), completed()],
    "stored": [
        *dispatched(),
        completed(),
        events_pb2.ResultsStored(
            task_id="t1",
            results=[
                events_pb2.StoredResult(
                    type="image",
                    url="https://bucket.example.com/t1/0.png",
                    original_url="https://cdn.example.com/1.png",
                    storage_key="t1/0.png",
                    content_type="image/png",
                    size=1234,
                    sha256="ab" * 32,
                    stored=True,
                )
            ],
        ),
    ],
    "failed": [
        *dispatched(),
        events_pb2.TaskFailed(task_id="t1", code="TIMEOUT", message="too long", stage="timeout"),
    ],
    "cancelled": [*dispatched(), events_pb2.TaskCancelled(task_id="t1", reason="changed my mind")],
    "deleted": [*dispatched(), events_pb2.TaskCancelled(task_id="t1"), events_pb2.TaskDeleted(task_id="t1")],
}


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_the_row_reads_back_as_the_view_of_the_state(name):
    state = TaskState(id="t1")
    for i, message in enumerate(HISTORIES[name]):
        state = evolve(state, message, T0 + timedelta(seconds=i))
    upsert_columns = [c.strip() for c in UPSERT.split("(", 2)[1].split(")")[0].split(",")]
    row = dict(zip(upsert_columns, _row(state), strict=True))
    selected = [getattr(row[c], "obj", row[c]) for c in (c.strip() for c in COLUMNS.split(","))]
    assert task_from_row(selected) == task_view(state)


def test_the_flat_messages_written_as_json_have_string_fields_only():
    """The row writes quotes and charges field by field, as MessageToDict does for strings."""
    from google.protobuf.descriptor import FieldDescriptor
    from google.protobuf.json_format import MessageToDict

    from services.dispatcher.projection import _flat_dict

    for message in (created().quote, completed().charge):
        assert {f.type for f in message.DESCRIPTOR.fields} == {FieldDescriptor.TYPE_STRING}
        assert _flat_dict(message) == MessageToDict(message, preserving_proto_field_name=True)
