"""Studio for the web UI: every StudioService RPC as `POST /admin/studio/<Method>`.

The body is the RPC's request message in protobuf JSON (camelCase or snake_case field names);
the answer is its response message in protobuf JSON. The routes are made from the service
descriptor, so a new Studio RPC is reachable without touching the gateway.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aigen.grpcx.client import call
from aigen.v1 import studio_pb2
from fastapi import APIRouter, Depends, Request
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import Message

from services.gateway.auth import admin
from services.gateway.deps import gateway_of
from services.gateway.problems import Problem, bad_field
from services.gateway.routes.callbacks import limited_body
from services.gateway.routes.docs import problems
from services.gateway.schemas import has_nul

router = APIRouter(prefix="/admin/studio", tags=["studio"], dependencies=[Depends(admin)])

_SERVICE = studio_pb2.DESCRIPTOR.services_by_name["StudioService"]
_MAX_BODY = 4 * 1024 * 1024


def _route(method: MethodDescriptor) -> Callable[[Request], Awaitable[dict[str, Any]]]:
    request_class = message_factory.GetMessageClass(method.input_type)

    async def handler(request: Request) -> dict[str, Any]:
        gw = gateway_of(request)
        if gw.services.studio is None:
            raise Problem(404, "STUDIO_NOT_AVAILABLE", "the Studio service is not configured")
        raw = await limited_body(request, _MAX_BODY)
        try:
            document = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise Problem(400, "MALFORMED_JSON", "the request body is not valid JSON") from None
        if not isinstance(document, dict):
            raise bad_field("body", f"must be a JSON object ({method.input_type.name})")
        if has_nul(document):
            raise bad_field("body", "must not contain NUL characters")
        message: Message = request_class()
        try:
            ParseDict(document, message)
        except (ParseError, ValueError, TypeError) as exc:
            raise bad_field("body", str(exc).splitlines()[0]) from None
        reply: Message = await call(getattr(gw.services.studio, method.name), message)
        return MessageToDict(reply, always_print_fields_with_no_presence=True)

    handler.__name__ = f"studio_{method.name}"
    return handler


for _method in _SERVICE.methods:
    if _method.client_streaming or _method.server_streaming:
        continue
    router.add_api_route(
        f"/{_method.name}",
        _route(_method),
        methods=["POST"],
        summary=f"Studio {_method.name} ({_method.input_type.name} → {_method.output_type.name})",
        responses=problems(400, 401, 404, 409, 413, 422),
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {"schema": {"type": "object", "title": _method.input_type.name}}
                },
            }
        },
    )
