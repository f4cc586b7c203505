"""Serving the Kie fake over real HTTP and building adapter configs from kie.yaml, for the Kie tests.

One loopback server per test module hosts whichever `KieFake` the current test installed (a
fresh one per test, so tests never share state) plus a sink that records the callbacks the fake
sends. Starting a server per test would cost more than the tests themselves.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aigen.modeldefs
import httpx
import yaml
from aigen.modeldefs.schema import DefinitionFile, ModelDef
from aigen.providers.base import BaseAdapter
from aigen.providers.kie import ADAPTERS
from aigen.providers.types import (
    AdapterResult,
    CallbackRequest,
    GenerationRequest,
    ModelConfig,
    Outcome,
    OutputType,
    ProviderConfig,
)
from aigen.simulator.kie import KieFake

KIE_YAML = Path(aigen.modeldefs.__file__).parent / "definitions" / "kie.yaml"
API_KEY = "kie-test-key-7f3a9c"
PROMPT = "a red fox crossing a snowy field at dawn"
SORA_LINK = "https://sora.chatgpt.com/p/s_68f0c0ffee"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SINK_PATH = "/__sink__/callback"


def definitions() -> DefinitionFile:
    return DefinitionFile.model_validate(yaml.safe_load(KIE_YAML.read_text()))


MODELS: dict[str, ModelDef] = {m.slug: m for m in definitions().models}
CALLABLE = [slug for slug, m in MODELS.items() if m.available]


@dataclass
class Sink:
    """Callbacks received, as the gateway would hand them to an adapter."""

    received: list[CallbackRequest] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, count: int = 1, timeout: float = 5.0) -> list[CallbackRequest]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


class FakeHost:
    """ASGI app routing to the current test's fake, and to the callback sink."""

    def __init__(self) -> None:
        self.base_url = ""
        self._fake: KieFake | None = None
        self.sink = Sink()

    @property
    def fake(self) -> KieFake:
        assert self._fake is not None, "no fake installed"
        return self._fake

    def install(self, **kwargs: Any) -> KieFake:
        fake = KieFake(api_key=API_KEY, **kwargs)
        fake.base_url = self.base_url
        self._fake = fake
        self.sink = Sink()
        return fake

    @property
    def callback_url(self) -> str:
        return self.base_url + SINK_PATH

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == SINK_PATH:
            await self._sink(scope, receive, send)
            return
        await self.fake(scope, receive, send)

    @staticmethod
    def _task_id(body: bytes) -> str:
        try:
            data = json.loads(body).get("data") or {}
            return str(data.get("taskId") or data.get("task_id") or "")
        except (ValueError, AttributeError):
            return ""

    async def _sink(self, scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = b"".join(chunks)
        # A task of an earlier test may still call back; only the current fake's tasks count.
        if self._task_id(body) in self.fake.tasks:
            self.sink.received.append(CallbackRequest(headers=headers, body=body))
            self.sink.arrived.set()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def model_config(
    model: ModelDef,
    base_url: str,
    *,
    api_key: str = API_KEY,
    provider_settings: Mapping[str, Any] | None = None,
) -> ModelConfig:
    """What the catalog hands the adapter: adapter settings plus the definition's image limits
    and field destinations; the upload host pointed at the fake too."""
    settings: dict[str, Any] = dict(model.adapter_settings)
    settings["input_images"] = model.input_images.model_dump(mode="json")
    field_map = {f.key: f.maps_to for f in model.fields if f.maps_to}
    if field_map:
        settings["field_map"] = field_map
    return ModelConfig(
        slug=model.slug,
        adapter_name=model.adapter,
        output_type=OutputType(model.output_type),
        provider=ProviderConfig(
            slug="kie",
            api_endpoint=base_url,
            api_key=api_key,
            settings={"upload_endpoint": base_url, **(provider_settings or {})},
        ),
        settings=settings,
    )


def adapter_for(
    slug: str,
    fake: KieFake,
    http: httpx.AsyncClient,
    *,
    api_key: str = API_KEY,
    provider_settings: Mapping[str, Any] | None = None,
) -> BaseAdapter:
    model = MODELS[slug]
    config = model_config(model, fake.base_url, api_key=api_key, provider_settings=provider_settings)
    return ADAPTERS[model.adapter](config, http)


def parent_kind(model: ModelDef) -> str | None:
    if model.adapter == "KieVeo31ExtendAdapter":
        return "veo"
    if model.adapter == "KieRunwayExtendAdapter":
        return "runway"
    return None


def default_parameters(model: ModelDef, fake: KieFake) -> dict[str, Any]:
    """Field defaults, as validation would apply them; required fields without one get a value."""
    parameters: dict[str, Any] = {f.key: f.default for f in model.fields if f.default is not None}
    for f in model.fields:
        if f.required and f.default is None:
            if f.key == "taskId":
                kind = parent_kind(model)
                assert kind is not None
                parameters["taskId"] = fake.finished_task(kind)
            elif f.key == "video_url":
                parameters["video_url"] = SORA_LINK
            else:
                raise AssertionError(f"{model.slug}: no sample value for required field {f.key}")
    return parameters


def image_url(fake: KieFake, index: int) -> str:
    return fake.media_url("png", f"input_{index}")


def sample_request(model: ModelDef, fake: KieFake, *, callback_url: str | None = None) -> GenerationRequest:
    return GenerationRequest(
        prompt=PROMPT if model.prompt.required else "",
        input_images=[image_url(fake, i) for i in range(model.input_images.min)],
        number_of_outputs=model.outputs.default,
        parameters=default_parameters(model, fake),
        callback_url=callback_url,
    )


def png_data_url() -> str:
    from aigen.simulator.base import media_bytes

    return "data:image/png;base64," + base64.b64encode(media_bytes("png")).decode()


async def poll_until_done(adapter: BaseAdapter, task_id: str, limit: int = 20) -> list[AdapterResult]:
    """Every status answer until the task leaves PROCESSING."""
    seen: list[AdapterResult] = []
    for _ in range(limit):
        result = await adapter.check_status(task_id)
        seen.append(result)
        if result.outcome is not Outcome.PROCESSING:
            return seen
    raise AssertionError(f"task {task_id} still processing after {limit} checks")


async def download(http: httpx.AsyncClient, url: str) -> tuple[bytes, str]:
    response = await http.get(url)
    assert response.status_code == 200, url
    return response.content, response.headers.get("content-type", "")


def is_real_media(data: bytes, kind: OutputType) -> bool:
    if kind is OutputType.IMAGE:
        return data.startswith(PNG_MAGIC) or data.startswith(b"\xff\xd8\xff")
    return data[4:8] == b"ftyp"
