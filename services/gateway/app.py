"""The gateway's HTTP application: routes, error documents, CORS, limits, OpenAPI 3.1."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from aigen import context, errors
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway import problems
from services.gateway.deps import Gateway
from services.gateway.observe import Observe, metrics_endpoint
from services.gateway.routes import admin, callbacks, external, files, ops, studio
from services.gateway.schemas import ProblemOut
from services.gateway.web import mount as mount_web_ui

DESCRIPTION = """\
One request to many AI media providers, tracked until the result is stored.

**Authentication.** The external API (`/api/external/…`) takes an API key in `X-API-Key`; the
admin API (`/admin/…`) takes the admin token as `Authorization: Bearer <token>`.

**Errors** are `application/problem+json` documents with a stable `code` (e.g. `API_KEY_INVALID`,
`BUDGET_EXCEEDED`, `RATE_LIMITED`, `TASK_NOT_FOUND`); invalid input lists each field in `errors`.

**Statuses** are PENDING, PROCESSING, SUCCESS and FAILED, plus CANCELLED for tasks cancelled by a
client, an admin or their `Cancel-After` deadline.
"""


class BodyLimit:
    """Refuses request bodies over `limit` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._too_large(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise problems.Problem(
                        413, "PAYLOAD_TOO_LARGE", f"request bodies may be at most {self.limit} bytes"
                    )
            return message

        await self.app(scope, limited, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = problems.Problem(
            413, "PAYLOAD_TOO_LARGE", f"request bodies may be at most {self.limit} bytes"
        )
        await problem.response(scope.get("path", ""))(scope, receive, send)


def _nul_parameters(query: str) -> list[str]:
    pairs = parse_qsl(query, keep_blank_values=True)
    return sorted(
        {name if "\x00" not in name else "query" for name, value in pairs if "\x00" in name + value}
    )


class RejectNul:
    """NUL characters in a path or query never mean anything here and cannot be stored as text:
    a path with one matches nothing (404), a query parameter with one is invalid (422)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            if "\x00" in path:
                problem = problems.Problem(404, "NOT_FOUND", "no such resource")
                await problem.response()(scope, receive, send)
                return
            query = scope.get("query_string", b"").decode("latin-1")
            bad = _nul_parameters(query) if "%00" in query or "\x00" in query else []
            if bad:
                problem = problems.Problem(
                    422,
                    "INVALID_ARGUMENT",
                    "query parameters must not contain NUL characters",
                    [problems.FieldError(name, "must not contain NUL characters") for name in bad],
                )
                await problem.response(path)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Correlation:
    """Binds a correlation id for the request (from X-Request-Id, or new) and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-request-id"), "")
        correlation = given if 0 < len(given) <= 100 and given.isprintable() else context.new_correlation_id()

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", correlation.encode())]
            await send(message)

        with context.bound(correlation=correlation):
            await self.app(scope, receive, tagged)


def create_app(gw: Gateway) -> FastAPI:
    app = FastAPI(
        title="aigen gateway",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.gateway = gw
    app.add_exception_handler(problems.Problem, problems.problem_handler)
    app.add_exception_handler(errors.DomainError, problems.domain_handler)
    app.add_exception_handler(RequestValidationError, problems.validation_handler)
    app.add_exception_handler(StarletteHTTPException, problems.http_handler)
    app.add_exception_handler(Exception, problems.unexpected_handler)
    app.include_router(external.router)
    app.include_router(admin.router)
    app.include_router(ops.router)
    app.include_router(studio.router)
    app.include_router(callbacks.router)
    app.include_router(files.router)
    mount_web_ui(app)

    @app.get("/healthz", tags=["health"], summary="Liveness", include_in_schema=True)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness: the database answers",
        responses={503: {"model": ProblemOut, "description": "The database does not answer."}},
    )
    async def readyz() -> JSONResponse:
        try:
            async with gw.db.connection() as conn:
                await conn.execute("SELECT 1")
        except Exception:
            return problems.Problem(503, "NOT_READY", "the database does not answer").response("/readyz")
        return JSONResponse({"status": "ready"})

    if gw.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(gw.settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-API-Key",
                "Idempotency-Key",
                "Cancel-After",
                "X-Request-Id",
            ],
            expose_headers=["Retry-After", "X-Request-Id"],
            max_age=600,
        )
    app.add_middleware(BodyLimit, limit=gw.settings.max_body_bytes)
    app.add_middleware(RejectNul)
    app.add_middleware(Correlation)
    app.add_middleware(Observe)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with error responses declared as problem+json (what they are)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        openapi_version="3.1.0",
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.get("responses", {})
            for status, response in responses.items():
                if not str(status).startswith(("4", "5")):
                    continue
                response["content"] = {
                    problems.MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}
                }
                if str(status) in ("429", "503"):
                    response["headers"] = {
                        "Retry-After": {
                            "description": "Seconds to wait before retrying.",
                            "schema": {"type": "integer"},
                        }
                    }
                response.setdefault("description", "Error.")
    app.openapi_schema = document
    return document
