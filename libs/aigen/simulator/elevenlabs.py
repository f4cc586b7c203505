"""Fake ElevenLabs text-to-speech: audio bytes in the response, character quota, FastAPI-style 422s
and `{"detail": {"status", "message"}}` errors."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aigen.simulator.base import FakeProvider, Fault, media_bytes
from aigen.simulator.stages import take_low_balance

VOICES = {
    "JBFqnCBsd6RMkjVDRZzb": "George",
    "21m00Tcm4TlvDq8ikWAM": "Rachel",
    "EXAVITQu4vr4xnSDxMaL": "Sarah",
    "pNInz6obpgDQGcFmaJgB": "Adam",
}
# Characters per request, by model.
MODELS = {
    "eleven_multilingual_v2": 10_000,
    "eleven_v3": 5_000,
    "eleven_flash_v2_5": 40_000,
    "eleven_turbo_v2_5": 40_000,
    "eleven_flash_v2": 30_000,
    "eleven_turbo_v2": 30_000,
}
HALF_PRICE = ("eleven_flash", "eleven_turbo")
OUTPUT_FORMATS = [
    *(
        f"mp3_{r}"
        for r in ("22050_32", "24000_48", "44100_32", "44100_64", "44100_96", "44100_128", "44100_192")
    ),
    *(f"opus_48000_{b}" for b in (32, 64, 96, 128, 192)),
    *(f"pcm_{r}" for r in (8000, 16000, 22050, 24000, 32000, 44100, 48000)),
    "ulaw_8000",
    "alaw_8000",
]
SETTING_RANGES = {
    "stability": (0.0, 1.0),
    "similarity_boost": (0.0, 1.0),
    "style": (0.0, 1.0),
    "speed": (0.7, 1.2),
}
CHARACTER_LIMIT = 100_000


def detail(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": {"status": code, "message": message}}, status_code=status, headers=headers)


def unprocessable(*problems: tuple[list[Any], str, str]) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"loc": loc, "msg": msg, "type": kind} for loc, msg, kind in problems]}, status_code=422
    )


class ElevenLabsFake(FakeProvider):
    slug = "elevenlabs"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        # What a "rate_limit" fault answers: concurrency limit, or the system being busy.
        self.rate_limit_status = "too_many_concurrent_requests"

    def provider_routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/text-to-speech/{voice_id}", self.tts, methods=["POST"]),
            Route("/v1/user/subscription", self.subscription, methods=["GET"]),
            Route("/v1/voices", self.voices, methods=["GET"]),
        ]

    def unauthorized(self, request: Request) -> Response | None:
        if request.headers.get("xi-api-key") == self.api_key:
            return None
        return detail(401, "invalid_api_key", "Invalid API key")

    async def fault_response(self, fault: Fault) -> Response | None:
        if fault.kind == "rate_limit":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            message = (
                "Too many concurrent requests for your subscription."
                if self.rate_limit_status == "too_many_concurrent_requests"
                else "Our servers are experiencing high traffic. Please try again later."
            )
            return detail(429, self.rate_limit_status, message, headers)
        if fault.kind == "server_error":
            return detail(500, "internal_server_error", "An internal error occurred.")
        if fault.kind == "auth":
            return detail(401, "invalid_api_key", "Invalid API key")
        return await super().fault_response(fault)

    async def tts(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        task_fault = self.take_task_fault()
        if (fault := await self.guard("create")) is not None:
            return fault
        output_format = request.query_params.get("output_format", "mp3_44100_128")
        if output_format not in OUTPUT_FORMATS:
            return unprocessable(
                (["query", "output_format"], "Input should be a valid output format", "enum")
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            return unprocessable((["body"], "JSON decode error", "json_invalid"))
        if not isinstance(body, dict):
            return unprocessable((["body"], "Input should be a valid dictionary", "dict_type"))
        problems = self._problems(body)
        if problems:
            return unprocessable(*problems)
        voice_id = request.path_params["voice_id"]
        if voice_id not in VOICES:
            return detail(400, "voice_not_found", f"A voice with voice_id {voice_id} was not found.")
        text: str = body["text"]
        model_id = body.get("model_id", "eleven_multilingual_v2")
        if len(text) > MODELS[model_id]:
            return detail(
                400,
                "max_character_limit_exceeded",
                f"You are sending {len(text)} characters with a single request, "
                f"but the maximum is {MODELS[model_id]}.",
            )
        cost = math.ceil(len(text) / 2) if model_id.startswith(HALF_PRICE) else len(text)
        if cost > self.balance:
            return detail(
                401,
                "quota_exceeded",
                f"This request exceeds your quota. You have {int(self.balance)} credits remaining, "
                f"while {cost} credits are required for this request.",
            )
        if task_fault == "fail":
            return detail(500, "internal_server_error", self.script.fail_message)
        self.balance -= cost
        media = "audio/mpeg" if output_format.startswith("mp3") else "application/octet-stream"
        return Response(
            media_bytes("mp3"),
            media_type=media,
            headers={
                "request-id": uuid.uuid4().hex,
                "history-item-id": uuid.uuid4().hex[:20],
                "x-character-count": str(len(text)),
                "character-cost": str(cost),
            },
        )

    @staticmethod
    def _problems(body: dict[str, Any]) -> list[tuple[list[Any], str, str]]:
        problems: list[tuple[list[Any], str, str]] = []
        text = body.get("text")
        if text is None:
            problems.append((["body", "text"], "Field required", "missing"))
        elif not isinstance(text, str) or not text.strip():
            problems.append((["body", "text"], "Input should be a non-empty string", "string_type"))
        model_id = body.get("model_id", "eleven_multilingual_v2")
        if model_id not in MODELS:
            problems.append((["body", "model_id"], f"Model {model_id!r} does not exist", "value_error"))
        settings = body.get("voice_settings")
        if settings is not None:
            if not isinstance(settings, dict):
                problems.append(
                    (["body", "voice_settings"], "Input should be a valid dictionary", "dict_type")
                )
            else:
                for key, (low, high) in SETTING_RANGES.items():
                    value = settings.get(key)
                    if value is None:
                        continue
                    if (
                        isinstance(value, bool)
                        or not isinstance(value, int | float)
                        or not low <= value <= high
                    ):
                        problems.append(
                            (
                                ["body", "voice_settings", key],
                                f"Input should be between {low} and {high}",
                                "value_error",
                            )
                        )
                boost = settings.get("use_speaker_boost")
                if boost is not None and not isinstance(boost, bool):
                    problems.append(
                        (
                            ["body", "voice_settings", "use_speaker_boost"],
                            "Input should be a valid boolean",
                            "bool_type",
                        )
                    )
        seed = body.get("seed")
        if seed is not None and (
            not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= 4294967295
        ):
            problems.append((["body", "seed"], "Input should be between 0 and 4294967295", "value_error"))
        normalization = body.get("apply_text_normalization")
        if normalization is not None and normalization not in ("auto", "on", "off"):
            problems.append(
                (["body", "apply_text_normalization"], "Input should be 'auto', 'on' or 'off'", "enum")
            )
        return problems

    async def subscription(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        low = take_low_balance(self)  # before guard(), which would swallow it
        if (fault := await self.guard("any")) is not None:
            return fault
        left = 5 if low else max(0, int(self.balance))
        limit = max(CHARACTER_LIMIT, left)
        return JSONResponse(
            {
                "tier": "creator",
                "character_count": limit - left,
                "character_limit": limit,
                "can_extend_character_limit": True,
                "allowed_to_extend_character_limit": True,
                "next_character_count_reset_unix": 1_900_000_000,
                "voice_limit": 30,
                "status": "active",
                "currency": "usd",
            }
        )

    async def voices(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        return JSONResponse(
            {
                "voices": [
                    {
                        "voice_id": vid,
                        "name": name,
                        "category": "premade",
                        "labels": {},
                        "preview_url": self.media_url("mp3", vid),
                    }
                    for vid, name in VOICES.items()
                ]
            }
        )
