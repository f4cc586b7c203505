"""ElevenLabs text-to-speech: the prompt is the text; the audio comes back in the response body."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any

import httpx

from aigen.providers.base import AuthStyle, BaseAdapter, HttpReply
from aigen.providers.health import probe
from aigen.providers.inputs import ImageLimits, checked_images
from aigen.providers.mapping import map_parameters
from aigen.providers.types import (
    AdapterError,
    AdapterResult,
    ErrorCode,
    GenerationRequest,
    HealthResult,
    ProviderCost,
    ResultItem,
)

# Voice settings travel nested under `voice_settings`; a definition's `maps_to` says the same.
VOICE_SETTINGS = ("stability", "similarity_boost", "style", "use_speaker_boost", "speed")
DEFAULT_FIELD_MAP = {key: f"voice_settings.{key}" for key in VOICE_SETTINGS}
# Parameters that are not body fields: the voice goes in the path, the format in the query.
NOT_BODY = frozenset({"voice_id", "output_format"})

NOT_RETRYABLE = {
    "invalid_api_key": ErrorCode.AUTH_FAILED,
    "quota_exceeded": ErrorCode.INSUFFICIENT_CREDITS,
    "voice_not_found": ErrorCode.INVALID_REQUEST,
    "max_character_limit_exceeded": ErrorCode.INVALID_REQUEST,
}
# Too many requests in flight for the plan: retry once others have finished.
CONCURRENCY_RETRY_AFTER = 2.0


class ElevenLabsTTSAdapter(BaseAdapter):
    auth_style = AuthStyle.XI_API_KEY
    default_images = ImageLimits(max=0)

    def build_body(self, request: GenerationRequest) -> dict[str, Any]:
        field_map = {**DEFAULT_FIELD_MAP, **(self.setting("field_map") or {})}
        body = map_parameters(request.parameters, field_map, skip=NOT_BODY)
        body["text"] = request.prompt
        body.setdefault("model_id", self.setting("model_id", "eleven_multilingual_v2"))
        return body

    async def dispatch(self, request: GenerationRequest) -> AdapterResult:
        if err := self.missing_key_error():
            return AdapterResult.failure(err)
        limits = ImageLimits.from_setting(self.setting("input_images"), self.default_images)
        checked = checked_images(request.input_images, limits)
        if isinstance(checked, AdapterError):
            return AdapterResult.failure(checked)
        voice_id = request.parameters.get("voice_id") or self.setting("voice_id")
        if not voice_id:
            return AdapterResult.failure(
                AdapterError(ErrorCode.INVALID_REQUEST, "elevenlabs: no voice_id given", retryable=False)
            )
        output_format = request.parameters.get("output_format") or self.setting(
            "output_format", "mp3_44100_128"
        )
        reply = await self.request(
            "POST",
            f"/v1/text-to-speech/{voice_id}",
            params={"output_format": output_format},
            json_body=self.build_body(request),
            headers={"Accept": "audio/*"},
            timeout=httpx.Timeout(float(self.setting("timeout_s", 180.0)), connect=10.0),
        )
        if isinstance(reply, AdapterError):
            return AdapterResult.failure(reply)
        if reply.status != 200:
            return AdapterResult.failure(self.error_of(reply))
        content_type = reply.headers.get("content-type", "").split(";")[0].strip().lower()
        if not reply.content or not (
            content_type.startswith("audio/") or content_type == "application/octet-stream"
        ):
            return AdapterResult.failure(self.bad_response(reply, f"expected audio, got {content_type!r}"))
        cost = self._cost(reply)
        extra = {k: reply.headers[k] for k in ("request-id", "history-item-id") if k in reply.headers}
        item = ResultItem(self.model.output_type, data=reply.content, content_type=content_type, extra=extra)
        return AdapterResult.success([item], cost=cost, provider_state="completed")

    @staticmethod
    def _cost(reply: HttpReply) -> ProviderCost | None:
        for header in ("character-cost", "x-character-count"):
            value = reply.headers.get(header)
            if value:
                try:
                    return ProviderCost(float(value), "characters")
                except ValueError:
                    continue
        return None

    def error_of(self, reply: HttpReply) -> AdapterError:
        body: Any = None
        try:
            body = reply.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        detail = body.get("detail") if isinstance(body, dict) else None
        status_word: str | None = None
        message = f"HTTP {reply.status}"
        if isinstance(detail, dict):
            status_word = str(detail.get("status") or "") or None
            message = str(detail.get("message") or status_word or message)
        elif isinstance(detail, list):
            # FastAPI validation: [{loc, msg, type}]
            parts = [
                f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
                for d in detail
                if isinstance(d, dict)
            ]
            message = "; ".join(parts) or message
        elif isinstance(detail, str):
            message = detail
        err = dataclasses.replace(self.http_error(reply, f"elevenlabs: {message}"), provider_code=status_word)
        if status_word in NOT_RETRYABLE:
            return dataclasses.replace(err, code=NOT_RETRYABLE[status_word], retryable=False)
        if status_word == "system_busy":
            return dataclasses.replace(err, code=ErrorCode.PROVIDER_UNAVAILABLE, retryable=True)
        if status_word == "too_many_concurrent_requests":
            return dataclasses.replace(
                err,
                code=ErrorCode.RATE_LIMITED,
                retryable=True,
                retry_after=err.retry_after if err.retry_after is not None else CONCURRENCY_RETRY_AFTER,
            )
        if reply.status == 409:
            err = dataclasses.replace(err, code=ErrorCode.PROVIDER_UNAVAILABLE, retryable=True)
        if err.code is ErrorCode.RATE_LIMITED and err.retry_after is None:
            reset = reply.headers.get("x-ratelimit-reset")
            if reset:
                with contextlib.suppress(ValueError):
                    err = dataclasses.replace(err, retry_after=max(0.0, float(reset) - time.time()))
        return err

    async def health(self) -> HealthResult:
        """The subscription read is free and tells how many characters are left."""
        checked = await probe(
            self, "/v1/user/subscription", refusal=lambda reply: self.error_of(reply).message
        )
        if isinstance(checked, HealthResult):
            return checked
        body = self.json_of(checked.reply)
        if not isinstance(body, dict):
            return checked.unhealthy("subscription answer is not an object")
        try:
            left = float(body["character_limit"]) - float(body["character_count"])
        except (KeyError, TypeError, ValueError):
            return checked.healthy("reachable (no character counts)")
        return checked.healthy(f"tier {body.get('tier', '?')}", balance=left, balance_unit="characters")


ADAPTERS: dict[str, type[BaseAdapter]] = {"ElevenLabsTTSAdapter": ElevenLabsTTSAdapter}
