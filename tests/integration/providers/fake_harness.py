"""Driving a provider adapter against its fake over real HTTP, configured from the model's own
definition the way the dispatcher configures it (settings and parameters cross a protobuf Struct)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import aigen.modeldefs
import httpx
from aigen.modeldefs.schema import DefinitionFile, ModelDef
from aigen.modeldefs.yamlfile import parse_yaml
from aigen.providers.base import BaseAdapter
from aigen.providers.types import (
    AdapterResult,
    CallbackRequest,
    GenerationRequest,
    ModelConfig,
    Outcome,
    OutputType,
    ProviderConfig,
)
from aigen.simulator.base import FakeProvider, media_bytes
from aigen.simulator.serving import serve_asgi, serve_fake
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DEFINITIONS = Path(aigen.modeldefs.__file__).parent / "definitions"
PNG = media_bytes("png")
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
NOT_AN_IMAGE_DATA_URL = "data:image/png;base64," + base64.b64encode(b"plain text, not pixels").decode()


@cache
def definition(slug: str) -> ModelDef:
    for path in sorted(DEFINITIONS.glob("*.yaml")):
        if path.stem not in ("replicate", "openai", "elevenlabs", "pollo", "tuzi"):
            continue
        for model in DefinitionFile.model_validate(parse_yaml(path.read_text())).models:
            if model.slug == slug:
                return model
    raise LookupError(slug)


def through_struct(values: Mapping[str, Any]) -> dict[str, Any]:
    """What a mapping looks like after the catalog/dispatcher carried it in a protobuf Struct."""
    struct = Struct()
    struct.update(dict(values))
    return MessageToDict(struct)


def parameters(slug: str, **overrides: Any) -> dict[str, Any]:
    """Validated parameters as the dispatcher hands them over: defaults applied, then overrides."""
    values = {f.key: f.default for f in definition(slug).fields if f.default is not None}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return through_struct(values)


def adapter_for(
    slug: str,
    fake: FakeProvider,
    http: httpx.AsyncClient,
    *,
    api_key: str | None = None,
    provider_settings: Mapping[str, Any] | None = None,
) -> BaseAdapter:
    model = definition(slug)
    module = importlib.import_module(f"aigen.providers.{model.provider}")
    cls: type[BaseAdapter] = module.ADAPTERS[model.adapter]
    config = ModelConfig(
        slug=slug,
        adapter_name=model.adapter,
        output_type=OutputType(model.output_type),
        provider=ProviderConfig(
            slug=model.provider,
            api_endpoint=fake.base_url,
            api_key=fake.api_key if api_key is None else api_key,
            settings=dict(provider_settings or {}),
        ),
        settings=through_struct(model.adapter_settings),
    )
    return cls(config, http)


def request(slug: str, prompt: str = "a red fox in snow", **kw: Any) -> GenerationRequest:
    params = kw.pop("params", {})
    return GenerationRequest(prompt=prompt, parameters=parameters(slug, **params), **kw)


@contextlib.asynccontextmanager
async def served(fake: FakeProvider, timeout: float = 10.0) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_fake(fake), httpx.AsyncClient(timeout=timeout) as http:
        yield http


async def finish(
    adapter: BaseAdapter, first: AdapterResult, limit: int = 10
) -> tuple[AdapterResult, list[AdapterResult]]:
    """Check status until the task leaves PROCESSING; returns the end and every step on the way."""
    steps = [first]
    result = first
    while result.outcome is Outcome.PROCESSING and len(steps) <= limit:
        assert result.provider_task_id
        result = await adapter.check_status(result.provider_task_id)
        steps.append(result)
    return result, steps


async def download(http: httpx.AsyncClient, url: str) -> bytes:
    reply = await http.get(url)
    assert reply.status_code == 200, url
    return reply.content


class Sleeps:
    """A `sleep` for `with_retries` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class CallbackSink:
    """A real HTTP endpoint that keeps what providers POST to it."""

    url: str = ""
    received: list[CallbackRequest] = field(default_factory=list)

    async def wait(self, count: int = 1, timeout: float = 5.0) -> list[CallbackRequest]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.received) < count and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert len(self.received) >= count, "no callback arrived"
        return self.received


@contextlib.asynccontextmanager
async def callback_sink() -> AsyncIterator[CallbackSink]:
    sink = CallbackSink()

    async def receive(request: Request) -> Response:
        sink.received.append(
            CallbackRequest(
                headers={k.lower(): v for k, v in request.headers.items()},
                body=await request.body(),
                query=dict(request.query_params),
            )
        )
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook/{task}", receive, methods=["POST"])])
    async with serve_asgi(app) as url:
        sink.url = f"{url}/hook/t1"
        yield sink


def forged(callback: CallbackRequest, **headers: str) -> CallbackRequest:
    return CallbackRequest(headers={**callback.headers, **headers}, body=callback.body, query=callback.query)
