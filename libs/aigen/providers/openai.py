"""OpenAI Images: synchronous generation (`/v1/images/generations`) and editing (`/v1/images/edits`).

The OpenAI model (dall-e-2, dall-e-3, gpt-image-1 …) is the `model` parameter when the definition
offers the choice, else the `model` setting.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

import httpx

from aigen.providers.base import BaseAdapter, HttpReply
from aigen.providers.health import probe
from aigen.providers.images import InputImageError, fetch_image_bytes, sniff_image_type
from aigen.providers.inputs import ImageLimits, checked_images
from aigen.providers.mapping import map_parameters
from aigen.providers.types import (
    AdapterError,
    AdapterResult,
    ErrorCode,
    GenerationRequest,
    HealthResult,
    ResultItem,
)

CONTENT_POLICY_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
BILLING_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})

# Which request fields each model family understands; others are left out rather than refused.
DALLE_ONLY = frozenset({"response_format"})
DALLE3_ONLY = frozenset({"style"})
GPT_IMAGE_ONLY = frozenset(
    {"background", "output_format", "output_compression", "moderation", "input_fidelity"}
)
NOT_FOR_EDITS = frozenset({"style", "moderation"})


def is_gpt_image(model: str) -> bool:
    return model.startswith(("gpt-image", "chatgpt-image"))


class OpenAIImagesAdapter(BaseAdapter):
    default_images = ImageLimits(max=16, max_bytes=25 * 1024 * 1024)

    def _request_fields(self, request: GenerationRequest, model: str, *, edit: bool) -> dict[str, Any]:
        drop = set(NOT_FOR_EDITS) if edit else set()
        if is_gpt_image(model):
            drop |= DALLE_ONLY | DALLE3_ONLY
        else:
            drop |= GPT_IMAGE_ONLY
            if model != "dall-e-3":
                drop |= DALLE3_ONLY
        if edit and model != "dall-e-2":
            drop |= DALLE_ONLY
        fields = map_parameters(request.parameters, self.setting("field_map"), skip=drop | {"model"})
        outputs = self.setting("outputs_parameter", "n")
        if outputs and outputs not in fields:
            fields[outputs] = request.number_of_outputs
        fields["model"] = model
        fields["prompt"] = request.prompt
        return fields

    def _timeout(self) -> httpx.Timeout:
        # GPT image renders at high quality can take minutes; the call is synchronous.
        return httpx.Timeout(float(self.setting("timeout_s", 300.0)), connect=10.0)

    async def dispatch(self, request: GenerationRequest) -> AdapterResult:
        if err := self.missing_key_error():
            return AdapterResult.failure(err)
        limits = ImageLimits.from_setting(self.setting("input_images"), self.default_images)
        checked = checked_images(request.input_images, limits)
        if isinstance(checked, AdapterError):
            return AdapterResult.failure(checked)
        model = str(request.parameters.get("model") or self.setting("model", "dall-e-3"))
        if not checked:
            body = self._request_fields(request, model, edit=False)
            reply = await self.request(
                "POST", "/v1/images/generations", json_body=body, timeout=self._timeout()
            )
            return self._images_reply(reply)
        if model == "dall-e-3":
            return AdapterResult.failure(
                AdapterError(
                    ErrorCode.INVALID_REQUEST,
                    "openai: dall-e-3 cannot edit images; choose dall-e-2 or a GPT image model",
                    retryable=False,
                )
            )
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        # dall-e-2 edits one image (`image`); GPT image models take several (`image[]`).
        part = "image" if model == "dall-e-2" else "image[]"
        for image in checked[: 1 if model == "dall-e-2" else len(checked)]:
            try:
                data, mime = await fetch_image_bytes(self.http, image, max_bytes=limits.max_bytes)
            except InputImageError as exc:
                return AdapterResult.failure(exc.to_adapter_error())
            ext = mime.split("/")[-1].replace("jpeg", "jpg")
            files.append((part, (f"image-{image.index}.{ext}", data, mime)))
        fields = self._request_fields(request, model, edit=True)
        form = {
            k: v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in fields.items()
        }
        reply = await self.request(
            "POST", "/v1/images/edits", data=form, files=files, timeout=self._timeout()
        )
        return self._images_reply(reply)

    def _images_reply(self, reply: HttpReply | AdapterError) -> AdapterResult:
        if isinstance(reply, AdapterError):
            return AdapterResult.failure(reply)
        if reply.status != 200:
            return AdapterResult.failure(self.error_of(reply))
        body = self.json_of(reply)
        if isinstance(body, AdapterError):
            return AdapterResult.failure(body)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not data:
            return AdapterResult.failure(self.bad_response(reply, "no data[] in the response"))
        usage = body.get("usage")
        items: list[ResultItem] = []
        for entry in data:
            if not isinstance(entry, dict):
                return AdapterResult.failure(self.bad_response(reply, "data[] entry is not an object"))
            extra: dict[str, Any] = {}
            if entry.get("revised_prompt"):
                extra["revised_prompt"] = entry["revised_prompt"]
            if isinstance(usage, dict):
                extra["usage"] = usage
            if isinstance(entry.get("b64_json"), str):
                try:
                    raw = base64.b64decode(entry["b64_json"], validate=True)
                except (binascii.Error, ValueError):
                    return AdapterResult.failure(self.bad_response(reply, "b64_json is not base64"))
                mime = sniff_image_type(raw) or _mime_of_format(body.get("output_format"))
                items.append(ResultItem(self.model.output_type, data=raw, content_type=mime, extra=extra))
            elif isinstance(entry.get("url"), str) and entry["url"]:
                items.append(ResultItem(self.model.output_type, url=entry["url"], extra=extra))
            else:
                return AdapterResult.failure(
                    self.bad_response(reply, "data[] entry has neither url nor b64_json")
                )
        return AdapterResult.success(items, provider_state="completed")

    def error_of(self, reply: HttpReply) -> AdapterError:
        body: Any = None
        try:
            body = reply.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        message = f"HTTP {reply.status}"
        code: str | None = None
        if isinstance(error, dict):
            message = str(error.get("message") or message)
            code = str(error.get("code") or error.get("type") or "") or None
        err = dataclasses.replace(self.http_error(reply, f"openai: {message}"), provider_code=code)
        if code in CONTENT_POLICY_CODES:
            return dataclasses.replace(err, code=ErrorCode.CONTENT_POLICY, retryable=False)
        if code in BILLING_CODES:
            return dataclasses.replace(err, code=ErrorCode.INSUFFICIENT_CREDITS, retryable=False)
        if reply.status == 409:
            # OpenAI's own client retries conflicts: they are transient on its side.
            err = dataclasses.replace(err, code=ErrorCode.PROVIDER_UNAVAILABLE, retryable=True)
        should_retry = reply.headers.get("x-should-retry", "").lower()
        if should_retry in ("true", "false"):
            err = dataclasses.replace(err, retryable=should_retry == "true")
        return err

    async def health(self) -> HealthResult:
        checked = await probe(self, "/v1/models", refusal=lambda reply: self.error_of(reply).message)
        if isinstance(checked, HealthResult):
            return checked
        body = self.json_of(checked.reply)
        count = len(body["data"]) if isinstance(body, dict) and isinstance(body.get("data"), list) else 0
        return checked.healthy(f"{count} models visible")


def _mime_of_format(output_format: Any) -> str:
    return {"jpeg": "image/jpeg", "webp": "image/webp"}.get(str(output_format), "image/png")


ADAPTERS: dict[str, type[BaseAdapter]] = {"OpenAIDalleAdapter": OpenAIImagesAdapter}
