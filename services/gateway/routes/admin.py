"""The admin API (for the web UI and `aigen` with an admin token): catalog and providers, models,
every task, API keys, the ledger and webhook deliveries. Authorised by the admin token."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from aigen import errors
from aigen.grpcx.client import call
from aigen.v1 import catalog_pb2, common_pb2, generation_pb2, ops_pb2
from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import JSONResponse, StreamingResponse

from services.gateway.auth import Gw, admin
from services.gateway.budget import Period, money
from services.gateway.deliveries import list_deliveries
from services.gateway.key_store import ApiKey, KeySpec
from services.gateway.ledger_queries import GroupBy, LedgerFilter
from services.gateway.problems import Problem, bad_field
from services.gateway.routes.docs import problems
from services.gateway.routes.external import (
    CancelAfter,
    IdempotencyKey,
    check_idempotency_key,
    check_webhook,
    deadline_of,
    event_stream,
    respond,
    struct,
)
from services.gateway.routes.ops import health_document
from services.gateway.schemas import (
    AdminGenerationRequest,
    CancelRequest,
    CreatedKeyOut,
    Json,
    KeyCreate,
    KeyOut,
    KeyUpdate,
    ModelListOut,
    ModelOut,
    ModelUpdate,
    ProviderKeyUpdate,
    ProviderUpdate,
    QuoteRequest,
    TaskListOut,
    TaskOut,
)
from services.gateway.views import STATUS_CODES, model_document, provider_document, task_document
from services.gateway.watch import wait_terminal

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(admin)])

Slug = Annotated[str, Path(min_length=1, max_length=200)]
ADMIN_OWNER = "admin"
DEFAULT_CANCEL_REASON = "cancelled by an administrator"


# --- catalog --------------------------------------------------------------------------------------


@router.get("/platforms", summary="Platforms", response_model=Json, responses=problems(401))
async def platforms(gw: Gw) -> dict[str, Any]:
    listed: catalog_pb2.ListPlatformsResponse = await call(
        gw.services.catalog.ListPlatforms, catalog_pb2.ListPlatformsRequest()
    )
    return {
        "platforms": [
            {"slug": p.slug, "name": p.name, "description": p.description.en, "website": p.website}
            for p in listed.platforms
        ]
    }


@router.get(
    "/providers", summary="Providers (keys masked)", response_model=Json, responses=problems(401, 422)
)
async def providers(gw: Gw, active: bool | None = None) -> dict[str, Any]:
    request = catalog_pb2.ListProvidersRequest()
    if active is not None:
        request.active = active
    listed: catalog_pb2.ListProvidersResponse = await call(gw.services.catalog.ListProviders, request)
    return {"providers": [provider_document(p) for p in listed.providers]}


@router.get(
    "/providers/{slug}",
    summary="One provider (key masked)",
    response_model=Json,
    responses=problems(401, 404, 422),
)
async def provider(slug: Slug, gw: Gw) -> dict[str, Any]:
    found: catalog_pb2.Provider = await call(
        gw.services.catalog.GetProviderBySlug, catalog_pb2.GetProviderBySlugRequest(slug=slug)
    )
    return provider_document(found)


@router.put(
    "/providers/{slug}/api-key",
    summary="Store a provider's API key (encrypted; only its last four characters are ever shown)",
    response_model=Json,
    responses=problems(401, 404, 409, 422),
)
async def set_provider_key(slug: Slug, body: ProviderKeyUpdate, gw: Gw) -> dict[str, Any]:
    updated: catalog_pb2.Provider = await call(
        gw.services.catalog.UpdateProviderApiKey,
        catalog_pb2.UpdateProviderApiKeyRequest(provider=slug, api_key=body.api_key),
    )
    return provider_document(updated)


@router.patch(
    "/providers/{slug}",
    summary="Change a provider's settings",
    response_model=Json,
    responses=problems(401, 404, 422),
)
async def update_provider(slug: Slug, body: ProviderUpdate, gw: Gw) -> dict[str, Any]:
    request = catalog_pb2.UpdateProviderSettingsRequest(provider=slug)
    for name, value in body.model_dump(exclude_none=True).items():
        setattr(request, name, value)
    updated: catalog_pb2.Provider = await call(gw.services.catalog.UpdateProviderSettings, request)
    return provider_document(updated)


@router.post(
    "/providers/{slug}/health",
    summary="Check that a provider answers with the configured key",
    response_model=Json,
    responses=problems(401, 404, 422),
)
async def provider_health(slug: Slug, gw: Gw) -> dict[str, Any]:
    if gw.services.ops is not None:
        # Through the ops service the check is recorded, and a passing one closes an open breaker.
        with contextlib.suppress(errors.Unavailable):
            status = await call(
                gw.services.ops.health.CheckProviderHealth, ops_pb2.ProviderHealthCheckRequest(provider=slug)
            )
            return health_document(status)
    checked: catalog_pb2.ProviderHealth = await call(
        gw.services.catalog.CheckProviderHealth, catalog_pb2.CheckProviderHealthRequest(provider=slug)
    )
    document: dict[str, Any] = {
        "provider": checked.provider,
        "ok": checked.ok,
        "message": checked.message,
        "latencyMs": round(checked.latency_ms, 1),
    }
    if checked.HasField("balance"):
        document["balance"] = checked.balance
        document["balanceUnit"] = checked.balance_unit
    return document


@router.get(
    "/models", summary="Models, active or not", response_model=ModelListOut, responses=problems(401, 422)
)
async def models(
    gw: Gw,
    provider: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    output_type: Annotated[Literal["IMAGE", "VIDEO", "AUDIO"] | None, Query()] = None,
    active: bool | None = None,
) -> dict[str, Any]:
    request = catalog_pb2.ListModelsRequest(provider=provider or "")
    if output_type is not None:
        request.output_type = common_pb2.OutputType.Value(output_type)
    if active is not None:
        request.active = active
    listed: catalog_pb2.ListModelsResponse = await call(gw.services.catalog.ListModels, request)
    return {"models": [model_document(m, admin=True) for m in listed.models]}


@router.get("/models/{slug}", summary="One model", response_model=ModelOut, responses=problems(401, 404, 422))
async def model(slug: Slug, gw: Gw) -> dict[str, Any]:
    found: catalog_pb2.Model = await call(
        gw.services.catalog.GetModelBySlug, catalog_pb2.GetModelBySlugRequest(slug=slug)
    )
    return model_document(found, admin=True)


@router.patch(
    "/models/{slug}",
    summary="Activate or deactivate a model",
    response_model=ModelOut,
    responses=problems(401, 404, 422),
)
async def update_model(slug: Slug, body: ModelUpdate, gw: Gw) -> dict[str, Any]:
    request = catalog_pb2.UpdateModelStatusRequest(model=slug)
    if body.active is not None:
        request.active = body.active
    if body.sort_order is not None:
        request.sort_order = body.sort_order
    updated: catalog_pb2.Model = await call(gw.services.catalog.UpdateModelStatus, request)
    return model_document(updated, admin=True)


@router.post(
    "/quote",
    summary="Price a generation as its form is being filled in (the prompt may still be empty)",
    response_model=Json,
    responses=problems(401, 404, 422),
)
async def quote(body: QuoteRequest, gw: Gw) -> dict[str, Any]:
    # The admin generate form shows the price as parameters change: invalid parameters are
    # refused with their fields named, a missing prompt is not (it does not change the price).
    priced: common_pb2.PriceQuote = await call(
        gw.services.catalog.QuotePrice,
        catalog_pb2.QuotePriceRequest(
            model=body.model_slug,
            parameters=struct(body.parameters),
            number_of_outputs=body.number_of_outputs or 0,
            prompt=body.prompt,
            input_image_count=len(body.input_images),
        ),
    )
    return {
        "model": body.model_slug,
        "amount": priced.amount,
        "currency": priced.currency,
        "usd": priced.usd,
        "display": priced.display,
    }


# --- tasks ----------------------------------------------------------------------------------------


@router.post(
    "/tasks",
    summary="Submit a generation as the admin",
    response_model=None,
    responses={200: {"model": TaskOut, "description": "The task."}, **problems(401, 404, 409, 422)},
)
async def submit(
    body: AdminGenerationRequest,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
    cancel_after: CancelAfter = None,
    wait: Annotated[float, Query(ge=0, le=300)] = 0,
) -> JSONResponse:
    await check_webhook(gw, body.webhook_url)
    request = generation_pb2.GenerateRequest(
        model=body.model_slug,
        prompt=body.prompt,
        input_images=body.input_images,
        number_of_outputs=body.number_of_outputs or 0,
        parameters=struct(body.parameters),
        request_id=check_idempotency_key(idempotency_key) or "",
        webhook_url=body.webhook_url or "",
        owner=body.owner or ADMIN_OWNER,
        shot_id=body.shot_id or "",
    )
    deadline = deadline_of(cancel_after)
    if deadline is not None:
        request.deadline.FromDatetime(deadline)
    task: generation_pb2.Task = await call(gw.services.generation.Generate, request)
    if wait > 0:
        task = (
            await wait_terminal(gw.services.generation, task.id, "", min(wait, gw.settings.max_wait_s))
            or task
        )
    return await respond(gw, task)


@router.get(
    "/tasks", summary="Every task, newest first", response_model=TaskListOut, responses=problems(401, 422)
)
async def tasks(
    gw: Gw,
    status: Annotated[
        list[Literal["PENDING", "PROCESSING", "SUCCESS", "FAILED", "CANCELLED"]] | None, Query()
    ] = None,
    model: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    provider: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    shot_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    include_deleted: bool = False,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
) -> JSONResponse:
    request = generation_pb2.ListTasksRequest(
        statuses=[STATUS_CODES[s] for s in status or ()],
        model=model or "",
        provider=provider or "",
        owner=owner or "",
        shot_id=shot_id or "",
        include_deleted=include_deleted,
        page_size=page_size,
        page_token=page_token or "",
    )
    listed: generation_pb2.ListTasksResponse = await call(gw.services.generation.ListTasks, request)
    body: dict[str, Any] = {
        "tasks": [task_document(t, await gw.links.urls(t), admin=True) for t in listed.tasks]
    }
    if listed.next_page_token:
        body["nextPageToken"] = listed.next_page_token
    return JSONResponse(body)


TaskId = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/tasks/{task_id}", summary="One task", response_model=TaskOut, responses=problems(401, 404, 422))
async def task(task_id: TaskId, gw: Gw) -> JSONResponse:
    found: generation_pb2.Task = await call(
        gw.services.generation.GetTask, generation_pb2.GetTaskRequest(id=task_id)
    )
    return JSONResponse(task_document(found, await gw.links.urls(found), admin=True))


@router.post(
    "/tasks/{task_id}/cancel",
    summary="Cancel a task",
    response_model=TaskOut,
    responses=problems(401, 404, 409, 422),
)
async def cancel(task_id: TaskId, gw: Gw, body: CancelRequest | None = None) -> JSONResponse:
    reason = body.reason if body is not None else DEFAULT_CANCEL_REASON
    try:
        found: generation_pb2.Task = await call(
            gw.services.generation.CancelTask, generation_pb2.CancelTaskRequest(id=task_id, reason=reason)
        )
    except errors.FailedPrecondition as exc:
        raise Problem(409, "TASK_NOT_CANCELLABLE", exc.message) from None
    return JSONResponse(task_document(found, await gw.links.urls(found), admin=True))


@router.delete(
    "/tasks/{task_id}",
    summary="Delete a task (soft)",
    response_model=TaskOut,
    responses=problems(401, 404, 422),
)
async def delete(task_id: TaskId, gw: Gw) -> JSONResponse:
    found: generation_pb2.Task = await call(
        gw.services.generation.DeleteTask, generation_pb2.DeleteTaskRequest(id=task_id)
    )
    return JSONResponse(task_document(found, await gw.links.urls(found), admin=True))


@router.get(
    "/tasks/{task_id}/events",
    summary="Live progress of any task (server-sent events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "As the external API's events.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problems(401, 404, 422),
    },
)
async def task_events(task_id: TaskId, gw: Gw) -> StreamingResponse:
    return await event_stream(gw, task_id, "", admin=True)


@router.get(
    "/tasks/{task_id}/webhooks",
    summary="A task's webhook deliveries and every attempt",
    response_model=Json,
    responses=problems(401, 422),
)
async def task_webhooks(task_id: TaskId, gw: Gw) -> dict[str, Any]:
    return {"deliveries": await list_deliveries(gw.db, task_id=task_id)}


@router.get(
    "/webhooks", summary="Recent webhook deliveries", response_model=Json, responses=problems(401, 422)
)
async def webhooks(gw: Gw, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    return {"deliveries": await list_deliveries(gw.db, limit=limit)}


# --- API keys -------------------------------------------------------------------------------------


def key_document(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "owner": key.owner,
        "state": key.state(datetime.now(UTC)),
        "allowedModels": list(key.allowed_models) if key.allowed_models is not None else None,
        "ratePerMinute": key.rate_per_minute,
        "burst": key.burst,
        "maxConcurrent": key.max_concurrent,
        "budgetUsd": money(key.budget_usd) if key.budget_usd is not None else None,
        "budgetPeriod": key.budget_period.value,
        "expiresAt": key.expires_at.isoformat() if key.expires_at else None,
        "revokedAt": key.revoked_at.isoformat() if key.revoked_at else None,
        "createdAt": key.created_at.isoformat(),
    }


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise bad_field(field, "needs a time zone (e.g. 2030-01-01T00:00:00Z)")
    return value


@router.post(
    "/keys",
    summary="Create an API key (the key and its webhook secret are shown only in this response)",
    response_model=CreatedKeyOut,
    status_code=201,
    responses=problems(401, 422),
)
async def create_key(body: KeyCreate, gw: Gw) -> dict[str, Any]:
    created = await gw.keys.create(
        KeySpec(
            name=body.name,
            owner=body.owner,
            allowed_models=body.allowed_models,
            rate_per_minute=body.rate_per_minute,
            burst=body.burst,
            max_concurrent=body.max_concurrent,
            budget_usd=body.budget_usd,
            budget_period=Period(body.budget_period),
            expires_at=_aware(body.expires_at, "expires_at"),
        )
    )
    return {**key_document(created.key), "key": created.secret, "webhookSecret": created.webhook_secret}


@router.get("/keys", summary="API keys (prefixes only)", response_model=Json, responses=problems(401, 422))
async def list_keys(
    gw: Gw,
    owner: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    include_revoked: bool = True,
) -> dict[str, Any]:
    return {
        "keys": [key_document(k) for k in await gw.keys.list(owner=owner, include_revoked=include_revoked)]
    }


KeyId = Annotated[str, Path(min_length=1, max_length=100)]


@router.get(
    "/keys/{key_id}",
    summary="One API key with its current usage",
    response_model=KeyOut,
    responses=problems(401, 404, 422),
)
async def get_key(key_id: KeyId, gw: Gw) -> dict[str, Any]:
    key = await gw.keys.require(key_id)
    usage = await gw.keys.usage(key)
    return {
        **key_document(key),
        "usage": {
            "periodStart": usage.period_start.isoformat(),
            "periodChargedUsd": money(usage.period_charged_usd),
            "openUsd": money(usage.open_usd),
            "openTasks": usage.open_count,
        },
    }


@router.patch(
    "/keys/{key_id}",
    summary="Change an API key's limits",
    response_model=KeyOut,
    responses=problems(401, 404, 422),
)
async def update_key(key_id: KeyId, body: KeyUpdate, gw: Gw) -> dict[str, Any]:
    changes: dict[str, object] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if name == "budget_period":
            if value is None:
                raise bad_field(name, "cannot be null; use total, day, week or month")
            value = Period(value)
        elif name == "name" and value is None:
            raise bad_field(name, "cannot be null")
        elif name == "expires_at":
            value = _aware(value, name)
        changes[name] = value
    return key_document(await gw.keys.update(key_id, changes))


@router.delete(
    "/keys/{key_id}",
    summary="Revoke an API key (at once)",
    response_model=KeyOut,
    responses=problems(401, 404, 422),
)
async def revoke_key(key_id: KeyId, gw: Gw) -> dict[str, Any]:
    return key_document(await gw.keys.revoke(key_id))


# --- ledger ---------------------------------------------------------------------------------------


async def ledger_filter(
    key_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    model: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    shot_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    since: Annotated[date | None, Query(description="First UTC day, inclusive.")] = None,
    until: Annotated[date | None, Query(description="Last UTC day, inclusive.")] = None,
) -> LedgerFilter:
    return LedgerFilter(key_id=key_id, owner=owner, model=model, shot_id=shot_id, since=since, until=until)


Filter = Annotated[LedgerFilter, Depends(ledger_filter)]


@router.get(
    "/ledger",
    summary="Ledger totals by key, model, shot, day or owner",
    tags=["billing"],
    response_model=Json,
    responses=problems(401, 422),
)
async def ledger(
    gw: Gw,
    where: Filter,
    group_by: Annotated[Literal["key", "model", "shot", "day", "owner"], Query()] = "key",
) -> dict[str, Any]:
    return {
        "groupBy": group_by,
        "totals": await gw.ledger.totals(GroupBy(group_by), where),
        "summary": await gw.ledger.summary(where),
    }


@router.get(
    "/ledger/tasks",
    summary="Ledger rows per task",
    tags=["billing"],
    response_model=Json,
    responses=problems(401, 422),
)
async def ledger_tasks(
    gw: Gw, where: Filter, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    return {"tasks": await gw.ledger.tasks(where, limit)}
