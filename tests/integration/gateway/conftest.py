"""The gateway in-process over the real pipeline (catalog, dispatcher, poller, storage, and Studio
when present), real PostgreSQL and NATS, every provider's fake and the local provider; served by
uvicorn on a free port, so tests speak real HTTP to it."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aigen.runtime import stop
from aigen.simulator.serving import reserve_port, serve_asgi

from services.gateway.server import GatewayProcess, running, start
from services.gateway.settings import GatewaySettings
from tests.integration.pipeline.conftest import Pipeline, pipeline_running

ADMIN_TOKEN = "gateway-test-admin-token-0123456789"
HAS_STUDIO = importlib.util.find_spec("services.studio.server") is not None


class LateApp:
    """Where providers' callbacks go: the gateway app, once it exists (the pipeline must know the
    callback URL before the gateway can be built on top of it)."""

    def __init__(self) -> None:
        self.app: Any = None
        self.poller: Any = None  # set by the pipeline fixture; the gateway finds the poller itself

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "a callback arrived before the gateway started"
        await self.app(scope, receive, send)


@dataclass
class Harness:
    pipeline: Pipeline
    process: GatewayProcess
    url: str
    http: httpx.AsyncClient

    @property
    def gateway(self):
        return self.process.gateway

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def create_key(self, **spec: Any) -> dict[str, Any]:
        reply = await self.admin("POST", "/admin/keys", json={"name": spec.pop("name", "test key"), **spec})
        assert reply.status_code == 201, reply.text
        return reply.json()

    async def as_key(self, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": key, **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def eventually(
        self, probe: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout: float = 30.0
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await probe()
            if done(value):
                return value
            if loop.time() > deadline:
                raise AssertionError(f"never happened; last value: {value!r}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def gateway_running(
    pg_url: str,
    nats_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    *,
    env: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    studio: bool = False,
) -> AsyncIterator[Harness]:
    listener = reserve_port()  # held from now: no connection opened meanwhile can take the port
    port = listener.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    late = LateApp()
    services = (
        "catalog",
        "dispatcher",
        "poller",
        "storage",
        *(("studio",) if studio and HAS_STUDIO else ()),
        "ops",
    )
    env = {"AIGEN_GATEWAY_URL": url, "AIGEN_OPS_HEALTH_INTERVAL_S": "0", **(env or {})}
    async with pipeline_running(
        pg_url, nats_url, monkeypatch, tmp_path, env=env, callbacks=late, services=services
    ) as pipeline:
        base = pipeline.stack.settings.with_(gateway_url=url, run_relay=False)
        gw_settings = GatewaySettings(
            port=port,
            admin_token=ADMIN_TOKEN,
            key_cache_s=0.0,
            webhook_schedule=(0.3, 0.3, 0.3),
            **(settings or {}),
        )
        process = await start(base, gw_settings)
        if "studio" not in services:
            process.gateway.services.studio = None
        late.app = process.app
        try:
            async with (
                running(process),
                serve_asgi(process.app, sock=listener),
                httpx.AsyncClient(base_url=url, timeout=60.0) as http,
            ):
                yield Harness(pipeline, process, url, http)
        finally:
            await stop(process.runtime)
            listener.close()  # already closed by the server that took it, unless it never started


@pytest.fixture
async def gw(pg_url, nats_url, monkeypatch, tmp_path) -> AsyncIterator[Harness]:
    async with gateway_running(pg_url, nats_url, monkeypatch, tmp_path) as harness:
        yield harness
