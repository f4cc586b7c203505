"""Provider callbacks: `POST /callbacks/{provider}/{token}`, handed to the poller.

The token names the task and carries an HMAC of it (aigen.tasks.callbacks), so a forged or
mistyped one is refused here without a service call. The poller then checks the provider's own
signature where the provider signs, and applies the outcome once: a replay answers
`accepted: false` and changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from aigen.grpcx.client import call
from aigen.tasks.callbacks import task_of
from aigen.v1 import generation_pb2
from fastapi import APIRouter, Path, Request

from services.gateway.auth import Gw
from services.gateway.problems import Problem
from services.gateway.routes.docs import problems
from services.gateway.schemas import CallbackOut

router = APIRouter(tags=["callbacks"])


async def limited_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "PAYLOAD_TOO_LARGE", f"a callback body may be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/callbacks/{provider}/{token}",
    summary="Receive a provider's callback",
    response_model=CallbackOut,
    responses=problems(401, 404, 413, 422),
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def provider_callback(
    provider: Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")],
    token: Annotated[str, Path(min_length=1, max_length=300)],
    request: Request,
    gw: Gw,
) -> dict[str, Any]:
    if not token.isascii() or task_of(gw.callback_secret, token) is None:
        raise Problem(404, "CALLBACK_TOKEN_UNKNOWN", "this callback URL was not issued by this deployment")
    body = await limited_body(request, gw.settings.max_callback_bytes)
    headers = {name.lower(): value for name, value in request.headers.items()}
    reply: generation_pb2.DeliverCallbackResponse = await call(
        gw.services.poller.DeliverCallback,
        generation_pb2.DeliverCallbackRequest(provider=provider, token=token, headers=headers, body=body),
    )
    return {"taskId": reply.task_id, "accepted": reply.accepted}
