"""A task as clients see it (generation_pb2.Task), from its state."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from aigen.tasks.blobs import BLOB_SCHEME
from aigen.tasks.domain import Status, TaskState
from aigen.v1 import generation_pb2

STATUS_TO_PROTO = {
    Status.PENDING: generation_pb2.PENDING,
    Status.PROCESSING: generation_pb2.PROCESSING,
    Status.SUCCESS: generation_pb2.SUCCESS,
    Status.FAILED: generation_pb2.FAILED,
    Status.CANCELLED: generation_pb2.CANCELLED,
}
PROTO_TO_STATUS = {v: k for k, v in STATUS_TO_PROTO.items()}


def timestamp(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


def results_of(state: TaskState) -> list[generation_pb2.TaskResult]:
    if state.results_stored:
        return [
            generation_pb2.TaskResult(
                type=r.type,
                url=r.url,
                original_url=r.original_url,
                storage_key=r.storage_key,
                content_type=r.content_type,
                size=r.size,
                sha256=r.sha256,
                stored=r.stored,
            )
            for r in state.stored_results
        ]
    # Provider results are shown while they are being stored, except staged bytes (no URL yet).
    return [
        generation_pb2.TaskResult(type=r.type, url=r.url, original_url=r.url, content_type=r.content_type)
        for r in state.provider_results
        if r.url and not r.url.startswith(BLOB_SCHEME)
    ]


def task_view(state: TaskState) -> generation_pb2.Task:
    created = state.created
    model = state.model
    task = generation_pb2.Task(
        id=state.id,
        status=STATUS_TO_PROTO[state.status],
        progress=state.progress,
        model_id=model.model_id if model else "",
        model_slug=model.model_slug if model else "",
        provider_slug=model.provider_slug if model else "",
        provider_task_id=state.provider_task_id,
        version=state.version,
        results_stored=state.results_stored,
    )
    if created is not None:
        task.prompt = created.prompt
        task.input_images.extend(created.input_images)
        task.number_of_outputs = created.number_of_outputs
        parameters = Struct()
        parameters.update(state.parameters or {})
        task.parameters.CopyFrom(parameters)
        task.quote.CopyFrom(created.quote)
        task.shot_id = created.shot_id
        task.owner = created.owner
        task.output_type = created.model.output_type
        task.request_id = created.request_id
        task.webhook_url = created.webhook_url
    task.results.extend(results_of(state))
    if state.error is not None and state.status is Status.FAILED:
        task.error.CopyFrom(
            generation_pb2.TaskError(
                code=state.error.code, message=state.error.message, retryable=state.error.retryable
            )
        )
    if state.status is Status.CANCELLED:
        task.error.CopyFrom(generation_pb2.TaskError(code="CANCELLED", message=state.cancel_reason))
    if state.charge is not None:
        task.charge.CopyFrom(state.charge)
    for name, at in (
        ("created_at", state.created_at),
        ("updated_at", state.updated_at),
        ("completed_at", state.completed_at if state.terminal else None),
        ("deleted_at", state.deleted_at),
    ):
        ts = timestamp(at)
        if ts is not None:
            getattr(task, name).CopyFrom(ts)
    return task
