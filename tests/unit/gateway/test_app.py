"""The HTTP application's shell, without services: OpenAPI, CORS, body limits, NUL, request ids."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from aigen.netguard import NetGuard

from services.gateway.app import create_app
from services.gateway.deps import Gateway, Services
from services.gateway.links import ResultLinks
from services.gateway.ratelimit import RateLimiter
from services.gateway.settings import GatewaySettings


def app_with(**settings: Any):
    gateway = Gateway(
        settings=GatewaySettings(admin_token="t" * 20, **settings),
        public_url="http://testserver",
        db=None,  # type: ignore[arg-type]
        services=Services(None, None, None, None, None),  # type: ignore[arg-type]
        keys=None,  # type: ignore[arg-type]
        limiter=RateLimiter(),
        holds=None,  # type: ignore[arg-type]
        ledger=None,  # type: ignore[arg-type]
        links=ResultLinks(None, None),
        signer=None,
        guard=NetGuard(),
        callback_secret="s" * 32,
    )
    return create_app(gateway)


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=app_with(cors_origins=("https://ui.example",), max_body_bytes=2048))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_openapi_is_31_and_errors_are_problem_json(client):
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    submit = document["paths"]["/api/external/ai-generation"]["post"]
    assert set(submit["responses"]) >= {"200", "401", "402", "404", "422", "429"}
    assert list(submit["responses"]["402"]["content"]) == ["application/problem+json"]
    assert "Retry-After" in submit["responses"]["429"]["headers"]
    assert "X-API-Key" in {
        p["name"] for p in document["components"]["securitySchemes"].values() if "name" in p
    }
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert (await client.get("/docs")).status_code == 200


async def test_cors_allows_the_configured_origin_only(client):
    preflight = {"Origin": "https://ui.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-api-key,idempotency-key,content-type"}  # fmt: skip
    allowed = await client.options("/api/external/ai-generation", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
    refused = await client.options(
        "/api/external/ai-generation", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in refused.headers


async def test_limits_nul_and_request_ids(client):
    large = await client.post("/api/external/ai-generation", content=b"x" * 4096, headers={"X-API-Key": "k"})
    assert large.status_code == 413
    assert large.json()["code"] == "PAYLOAD_TOO_LARGE"
    nul = await client.get("/admin/tasks?owner=a%00b")
    assert nul.status_code == 422
    assert nul.json()["errors"] == [{"field": "owner", "message": "must not contain NUL characters"}]
    assert (await client.get("/files/a%00b?exp=1&sig=x")).status_code == 404
    echoed = await client.get("/healthz", headers={"X-Request-Id": "req-123"})
    assert echoed.headers["x-request-id"] == "req-123"
    assert len((await client.get("/healthz")).headers["x-request-id"]) == 32
    missing = await client.get("/admin/keys")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    foreign = await client.post("/callbacks/kie/t%C3%B6k%C3%A9n", content=b"{}")
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "CALLBACK_TOKEN_UNKNOWN"
    unknown = await client.get("/no/such/path")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")


def test_no_endpoint_or_dependency_runs_in_a_worker_thread():
    """FastAPI runs plain-function endpoints and dependencies in a thread pool: a thread hand-off
    per request that the gateway, whose work is all asynchronous, has no use for."""
    import inspect

    from fastapi.dependencies.utils import get_dependant
    from fastapi.routing import APIRoute

    def sync_calls(dependant, where: str) -> list[str]:
        found = []
        call = dependant.call
        if call is not None:
            target = call if inspect.isfunction(call) or inspect.ismethod(call) else type(call).__call__
            if not inspect.iscoroutinefunction(target):
                found.append(f"{where}: {getattr(call, '__name__', type(call).__name__)}")
        for sub in dependant.dependencies:
            found += sync_calls(sub, where)
        return found

    from services.gateway.routes import admin, callbacks, external, files, ops, studio

    routers = [m.router for m in (admin, callbacks, external, files, ops, studio)]
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    routes += [r for r in app_with().routes if isinstance(r, APIRoute)]
    assert len(routes) > 20
    offenders = [name for route in routes for name in sync_calls(route.dependant, route.path)]
    offenders += [
        name
        for router in routers
        for depends in router.dependencies
        for name in sync_calls(get_dependant(path="", call=depends.dependency), "router")
    ]
    assert offenders == []
