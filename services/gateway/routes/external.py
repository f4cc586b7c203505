"""The external REST API (SPEC F9, the seed's contract, plus what clients of gateways need).

Every route takes an API key (`X-API-Key`); tasks belong to the key's owner, and any other
owner's task is simply not found.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from aigen import errors
from aigen.grpcx.client import call
from aigen.netguard import NetGuardError
from aigen.v1 import catalog_pb2, common_pb2, generation_pb2
from fastapi import APIRouter, Header, Path, Query
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct
from starlette.responses import JSONResponse, StreamingResponse

from services.gateway.auth import Caller, Gw
from services.gateway.budget import money, request_id_for, usd
from services.gateway.deps import Gateway
from services.gateway.key_store import ApiKey
from services.gateway.ledger_queries import GroupBy, LedgerFilter
from services.gateway.problems import Problem, bad_field, from_domain
from services.gateway.routes.docs import problems
from services.gateway.schemas import (
    GenerationRequest,
    ModelListOut,
    ModelOut,
    QuoteOut,
    QuoteRequest,
    TaskListOut,
    TaskOut,
    UsageOut,
)
from services.gateway.views import STATUS_CODES, model_document, task_document
from services.gateway.watch import TaskWatch, updates, wait_terminal

router = APIRouter(prefix="/api/external", tags=["generation"])

MAX_CANCEL_AFTER_S = 7 * 24 * 3600
TaskId = Annotated[str, Path(min_length=1, max_length=200, description="The task id returned at submission.")]
Wait = Annotated[
    float,
    Query(ge=0, le=300, description="Hold the response up to this many seconds for a terminal status."),
]


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[!-~]{1,150}$",
        description="Same key and body: the same task; same key, other body: 422. Printable ASCII (<= 150).",
    ),
]
CancelAfter = Annotated[
    int | None,
    Header(
        alias="Cancel-After",
        ge=1,
        le=MAX_CANCEL_AFTER_S,
        description="Cancel the task if it is not done after this many seconds.",
    ),
]


def struct(values: dict[str, Any]) -> Struct:
    s = Struct()
    try:
        s.update(values)
    except (ValueError, TypeError) as exc:
        raise bad_field("parameters", f"cannot be carried as JSON: {exc}") from None
    return s


def check_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 150 or any(not (0x21 <= ord(c) <= 0x7E) for c in value):
        raise bad_field("Idempotency-Key", "must be 1 to 150 printable ASCII characters without spaces")
    return value


def deadline_of(cancel_after: int | None) -> datetime | None:
    if cancel_after is None:
        return None
    if not 1 <= cancel_after <= MAX_CANCEL_AFTER_S:
        raise bad_field("Cancel-After", f"must be between 1 and {MAX_CANCEL_AFTER_S} seconds")
    return datetime.now(UTC) + timedelta(seconds=cancel_after)


async def check_webhook(gw: Gateway, url: str | None) -> None:
    if not url:
        return
    try:
        await gw.guard.check(url)
    except NetGuardError as exc:
        raise bad_field("webhook_url", exc.reason) from None


def check_model_allowed(key: ApiKey, model_slug: str) -> None:
    if not key.allows(model_slug):
        raise Problem(403, "MODEL_NOT_ALLOWED", f"this API key may not use the model {model_slug!r}")


async def respond(gw: Gateway, task: generation_pb2.Task, status: int = 200) -> JSONResponse:
    return JSONResponse(task_document(task, await gw.links.urls(task)), status_code=status)


# --- submit ---------------------------------------------------------------------------------------


@router.post(
    "/ai-generation",
    summary="Submit a generation",
    response_model=None,
    responses={
        200: {
            "model": TaskOut,
            "description": "The task (the same one again for a repeated Idempotency-Key).",
        },
        **problems(400, 401, 402, 403, 404, 409, 413, 422, 429),
    },
)
async def submit(
    body: GenerationRequest,
    key: Caller,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
    cancel_after: CancelAfter = None,
    wait: Wait = 0,
) -> JSONResponse:
    check_model_allowed(key, body.model_slug)
    client_key = check_idempotency_key(idempotency_key)
    deadline = deadline_of(cancel_after)
    await check_webhook(gw, body.webhook_url)
    request_id = request_id_for(key.id, client_key or f"auto-{uuid.uuid4().hex}")
    parameters = struct(body.parameters)
    reserved = False
    if key.limits.enforced:
        checked: catalog_pb2.ValidateParametersResponse = await call(
            gw.services.catalog.ValidateParameters,
            catalog_pb2.ValidateParametersRequest(
                model=body.model_slug,
                parameters=parameters,
                prompt=body.prompt,
                number_of_outputs=body.number_of_outputs or 0,
                input_images=body.input_images,
            ),
        )
        reserved = (await gw.holds.reserve(key, request_id, usd(checked.quote.usd))).created
    request = generation_pb2.GenerateRequest(
        model=body.model_slug,
        prompt=body.prompt,
        input_images=body.input_images,
        number_of_outputs=body.number_of_outputs or 0,
        parameters=parameters,
        request_id=request_id,
        webhook_url=body.webhook_url or "",
        owner=key.owner,
    )
    if deadline is not None:
        request.deadline.FromDatetime(deadline)
    try:
        task: generation_pb2.Task = await call(gw.services.generation.Generate, request)
    except errors.DomainError as exc:
        # Refused outright: no task will use the reservation. (An unanswered call may still have
        # made one; its reservation waits for the task's TaskCreated or times out.)
        if reserved and not isinstance(exc, errors.Unavailable):
            await gw.holds.cancel(key.id, request_id)
        raise
    if wait > 0:
        task = (
            await wait_terminal(gw.services.generation, task.id, key.owner, min(wait, gw.settings.max_wait_s))
            or task
        )
    return await respond(gw, task)


@router.post(
    "/ai-generation/quote",
    summary="Price a generation without submitting it",
    response_model=QuoteOut,
    responses=problems(401, 403, 404, 422, 429),
)
async def quote(body: QuoteRequest, key: Caller, gw: Gw) -> dict[str, Any]:
    check_model_allowed(key, body.model_slug)
    checked: catalog_pb2.ValidateParametersResponse = await call(
        gw.services.catalog.ValidateParameters,
        catalog_pb2.ValidateParametersRequest(
            model=body.model_slug,
            parameters=struct(body.parameters),
            prompt=body.prompt,
            number_of_outputs=body.number_of_outputs or 0,
            input_images=body.input_images,
        ),
    )
    return {
        "model": body.model_slug,
        "amount": checked.quote.amount,
        "currency": checked.quote.currency,
        "usd": checked.quote.usd,
        "display": checked.quote.display,
        "numberOfOutputs": checked.number_of_outputs,
        "parameters": MessageToDict(checked.parameters),
    }


# --- models ---------------------------------------------------------------------------------------


@router.get(
    "/ai-generation/models",
    summary="Active models with their parameter fields and prices",
    response_model=ModelListOut,
    responses=problems(401, 422, 429),
)
async def models(
    key: Caller,
    gw: Gw,
    output_type: Annotated[Literal["IMAGE", "VIDEO", "AUDIO"] | None, Query()] = None,
    provider: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> JSONResponse:
    request = catalog_pb2.ListModelsRequest(active=True)
    if output_type is not None:
        request.output_type = common_pb2.OutputType.Value(output_type)
    if provider is not None:
        request.provider = provider
    try:
        listed: catalog_pb2.ListModelsResponse = await call(gw.services.catalog.ListModels, request)
    except errors.InvalidArgument as exc:
        if provider is not None:
            return JSONResponse({"models": []})  # an unknown provider has no models
        raise from_domain(exc) from None
    return JSONResponse({"models": [model_document(m) for m in listed.models if key.allows(m.slug)]})


@router.get(
    "/ai-generation/models/{slug}",
    summary="One model with its fields and price",
    response_model=ModelOut,
    responses=problems(401, 404, 422, 429),
)
async def model(
    slug: Annotated[str, Path(min_length=1, max_length=200)], key: Caller, gw: Gw
) -> JSONResponse:
    found: catalog_pb2.Model = await call(
        gw.services.catalog.GetModelBySlug, catalog_pb2.GetModelBySlugRequest(slug=slug)
    )
    if not found.active or not key.allows(found.slug):
        raise Problem(404, "MODEL_NOT_FOUND", f"model {slug!r} not found")
    return JSONResponse(model_document(found))


# --- tasks ----------------------------------------------------------------------------------------


@router.get(
    "/ai-generation",
    summary="The key owner's tasks, newest first",
    response_model=TaskListOut,
    responses=problems(401, 422, 429),
)
async def list_tasks(
    key: Caller,
    gw: Gw,
    status: Annotated[
        list[Literal["PENDING", "PROCESSING", "SUCCESS", "FAILED", "CANCELLED"]] | None, Query()
    ] = None,
    model: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
) -> JSONResponse:
    request = generation_pb2.ListTasksRequest(
        owner=key.owner,
        statuses=[STATUS_CODES[s] for s in status or ()],
        model=model or "",
        page_size=page_size,
        page_token=page_token or "",
    )
    listed: generation_pb2.ListTasksResponse = await call(gw.services.generation.ListTasks, request)
    tasks = [task_document(t, await gw.links.urls(t)) for t in listed.tasks]
    body: dict[str, Any] = {"tasks": tasks}
    if listed.next_page_token:
        body["nextPageToken"] = listed.next_page_token
    return JSONResponse(body)


async def owned_task(gw: Gateway, key: ApiKey, task_id: str) -> generation_pb2.Task:
    task: generation_pb2.Task = await call(
        gw.services.generation.GetTask, generation_pb2.GetTaskRequest(id=task_id, owner=key.owner)
    )
    if task.HasField("deleted_at"):
        raise Problem(404, "TASK_NOT_FOUND", f"task {task_id!r} not found")
    return task


@router.get(
    "/ai-generation/{task_id}",
    summary="Read a task back",
    response_model=None,
    responses={200: {"model": TaskOut, "description": "The task."}, **problems(401, 404, 422, 429)},
)
async def get_task(task_id: TaskId, key: Caller, gw: Gw, wait: Wait = 0) -> JSONResponse:
    task = await owned_task(gw, key, task_id)
    if wait > 0:
        task = (
            await wait_terminal(gw.services.generation, task_id, key.owner, min(wait, gw.settings.max_wait_s))
            or task
        )
    return await respond(gw, task)


@router.delete(
    "/ai-generation/{task_id}",
    summary="Cancel a task (and, with purge, remove it from lists)",
    response_model=None,
    responses={
        200: {"model": TaskOut, "description": "The task after the change."},
        **problems(401, 404, 409, 422, 429),
    },
)
async def cancel_task(
    task_id: TaskId,
    key: Caller,
    gw: Gw,
    purge: Annotated[
        bool, Query(description="Also delete the task (soft): it disappears from lists.")
    ] = False,
) -> JSONResponse:
    task = await owned_task(gw, key, task_id)
    if task.status in (generation_pb2.PENDING, generation_pb2.PROCESSING):
        try:
            task = await call(
                gw.services.generation.CancelTask,
                generation_pb2.CancelTaskRequest(
                    id=task_id, owner=key.owner, reason="cancelled by the client"
                ),
            )
        except errors.FailedPrecondition as exc:
            if not purge:
                raise Problem(409, "TASK_NOT_CANCELLABLE", exc.message) from None
    elif not purge:
        raise Problem(
            409,
            "TASK_NOT_CANCELLABLE",
            f"task {task_id} is already {generation_pb2.TaskStatus.Name(task.status)}",
        )
    if purge:
        task = await call(
            gw.services.generation.DeleteTask, generation_pb2.DeleteTaskRequest(id=task_id, owner=key.owner)
        )
    return await respond(gw, task)


@router.get(
    "/ai-generation/{task_id}/events",
    summary="Live progress as server-sent events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`event: task` with the task document each time it changes; the stream ends "
            "after a "
            "terminal status. Comment lines keep idle connections open.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problems(401, 404, 422, 429),
    },
)
async def task_events(task_id: TaskId, key: Caller, gw: Gw) -> StreamingResponse:
    return await event_stream(gw, task_id, key.owner)


async def event_stream(gw: Gateway, task_id: str, owner: str, *, admin: bool = False) -> StreamingResponse:
    watch = TaskWatch(gw.services.generation, task_id, owner)
    try:
        first = await watch.next(30.0)
    except BaseException:
        watch.close()
        raise
    if first is None or (first.HasField("deleted_at") and not admin):
        watch.close()
        raise Problem(404, "TASK_NOT_FOUND", f"task {task_id!r} not found")

    async def events() -> AsyncIterator[str]:
        async for task in updates(watch, first, heartbeat_s=15.0):
            if task is None:
                yield ": keep-alive\n\n"
                continue
            document = task_document(task, await gw.links.urls(task), admin=admin)
            yield f"event: task\nid: {task.version}\ndata: {json.dumps(document, separators=(',', ':'))}\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# --- usage ----------------------------------------------------------------------------------------


@router.get(
    "/usage",
    summary="The calling key's budget, what it has spent and holds, and its ledger totals",
    tags=["billing"],
    response_model=UsageOut,
    responses=problems(401, 422, 429),
)
async def usage(
    key: Caller,
    gw: Gw,
    group_by: Annotated[Literal["model", "day", "shot"], Query()] = "model",
) -> JSONResponse:
    current = await gw.keys.usage(key)
    body: dict[str, Any] = {
        "keyId": key.id,
        "owner": key.owner,
        "budgetPeriod": key.budget_period.value,
        "periodStart": current.period_start.isoformat(),
        "periodChargedUsd": money(current.period_charged_usd),
        "openUsd": money(current.open_usd),
        "openTasks": current.open_count,
        "totals": await gw.ledger.totals(GroupBy(group_by), LedgerFilter(key_id=key.id)),
        "summary": await gw.ledger.summary(LedgerFilter(key_id=key.id)),
    }
    if key.budget_usd is not None:
        body["budgetUsd"] = money(key.budget_usd)
        left = key.budget_usd - current.period_charged_usd - current.open_usd
        body["remainingUsd"] = money(max(left, usd(0)))
    return JSONResponse(body)
