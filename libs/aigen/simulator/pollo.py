"""Fake Pollo AI platform API: `{code, message, data}` envelopes, zod-style validation issues,
generations waiting → processing → succeed | failed, credits charged at submission, signed-URL
uploads, and webhooks signed per the docs (X-Webhook-*) or the older single X-Signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aigen.simulator.base import FakeProvider, FakeTask, Fault
from aigen.simulator.stages import advance, stage_of, standard_signature_headers, take_low_balance

Spec = dict[str, Any]

VEO3: Spec = {
    "prompt_max": 2000,
    "enums": {"length": [4, 6, 8], "aspectRatio": ["16:9", "9:16"], "resolution": ["720p", "1080p"]},
    "strings": {"negativePrompt": 2000},
    "bools": ["generateAudio"],
    "ints": {"seed": (0, 2**32 - 1)},
    "urls": ["image"],
    "image_only": False,
    "credits_per_second": 10,
    "default_length": 8,
}
KLING_COMMON: Spec = {
    "prompt_max": 2500,
    "enums": {"length": [5, 10], "aspectRatio": ["16:9", "9:16", "1:1"]},
    "strings": {"negativePrompt": 2500},
    "bools": [],
    "ints": {"strength": (0, 100)},
    "urls": ["image"],
    "image_only": False,
    "credits_per_second": 4,
    "default_length": 5,
}
MODELS: dict[str, Spec] = {
    "google/veo3": VEO3,
    "google/veo3-fast": {**VEO3, "credits_per_second": 5},
    "kling-ai/kling-v2": KLING_COMMON,
    "kling-ai/kling-v2-1-master": KLING_COMMON,
    "kling-ai/kling-v1-6": {
        **KLING_COMMON,
        "enums": {**KLING_COMMON["enums"], "mode": ["std", "pro"]},
        "urls": ["image", "imageTail"],
        "credits_per_second": 2,
    },
    "kling-ai/kling-v2-1": {
        **KLING_COMMON,
        "enums": {**KLING_COMMON["enums"], "mode": ["std", "pro"]},
        "urls": ["image", "imageTail"],
        "image_only": True,
    },
}


def envelope(data: Any) -> JSONResponse:
    return JSONResponse({"code": "SUCCESS", "message": "success", "data": data})


def refusal(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status)


def issue(path: list[str | int], message: str, code: str = "custom") -> dict[str, Any]:
    return {"code": code, "message": message, "path": path}


def input_issues(spec: Spec, data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        return [issue(["input"], "Required", "invalid_type")]
    problems: list[dict[str, Any]] = []
    prompt = data.get("prompt")
    has_image = "image" in data
    if prompt is None and not has_image:
        problems.append(issue(["input", "prompt"], "Required", "invalid_type"))
    elif prompt is not None and (not isinstance(prompt, str) or len(prompt) > spec["prompt_max"]):
        problems.append(
            issue(
                ["input", "prompt"],
                f"String must contain at most {spec['prompt_max']} character(s)",
                "too_big",
            )
        )
    if spec["image_only"] and not has_image:
        problems.append(issue(["input", "image"], "Required", "invalid_type"))
    for key, allowed in spec["enums"].items():
        if key in data and data[key] not in allowed:
            problems.append(
                issue(
                    ["input", key],
                    f"Invalid enum value. Expected {' | '.join(repr(a) for a in allowed)}, "
                    f"received {data[key]!r}",
                    "invalid_enum_value",
                )
            )
    for key, limit in spec["strings"].items():
        if key in data and (not isinstance(data[key], str) or len(data[key]) > limit):
            problems.append(
                issue(["input", key], f"String must contain at most {limit} character(s)", "too_big")
            )
    for key in spec["bools"]:
        if key in data and not isinstance(data[key], bool):
            problems.append(issue(["input", key], "Expected boolean", "invalid_type"))
    for key, (low, high) in spec["ints"].items():
        value = data.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
        ):
            problems.append(issue(["input", key], f"Number must be between {low} and {high}", "too_big"))
    for key in spec["urls"]:
        value = data.get(key)
        # Real Pollo wants HTTPS; the fake serves its uploads over plain http on loopback.
        if value is not None and not (isinstance(value, str) and re.match(r"^https?://", value)):
            problems.append(issue(["input", key], "Invalid url", "invalid_string"))
    for key in ("image", "imageTail"):
        if key in data and key not in spec["urls"]:
            problems.append(issue(["input", key], f"Unrecognized key: {key!r}", "unrecognized_keys"))
    return problems


class PolloFake(FakeProvider):
    slug = "pollo"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.signature_scheme = "docs"  # "docs": X-Webhook-*; "hex": a single X-Signature
        self.uploads: dict[str, tuple[str, bytes]] = {}  # key → (content type, bytes)
        self._signed: dict[str, str] = {}  # upload key → file name

    def provider_routes(self) -> list[BaseRoute]:
        return [
            Route("/generation/{taskId}/status", self.status, methods=["GET"]),
            Route("/generation/{brand}/{model}", self.create, methods=["POST"]),
            Route("/credit/balance", self.credit_balance, methods=["GET"]),
            Route("/file/sign", self.file_sign, methods=["POST"]),
            Route("/upload/{key}", self.upload, methods=["PUT"]),
        ]

    def unauthorized(self, request: Request) -> Response | None:
        key = request.headers.get("x-api-key")
        if key == self.api_key:
            return None
        if not key:
            return refusal(401, "UNAUTHORIZED", "Missing API key. Pass it in the x-api-key header.")
        return refusal(404, "NOT_FOUND", "API key not found")

    async def fault_response(self, fault: Fault) -> Response | None:
        if fault.kind == "rate_limit":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return JSONResponse(
                {"code": "TOO_MANY_REQUESTS", "message": "Too many requests"},
                status_code=429,
                headers=headers,
            )
        if fault.kind == "server_error":
            return refusal(500, "INTERNAL_SERVER_ERROR", "Internal server error")
        if fault.kind == "auth":
            return refusal(401, "UNAUTHORIZED", "Invalid API key")
        return await super().fault_response(fault)

    # --- generation ----------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        task_fault = self.take_task_fault()
        if (fault := await self.guard("create")) is not None:
            return fault
        model = f"{request.path_params['brand']}/{request.path_params['model']}"
        spec = MODELS.get(model)
        if spec is None:
            return refusal(404, "NOT_FOUND", f"Model {model} not found")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return refusal(400, "BAD_REQUEST", "Invalid JSON body")
        if not isinstance(body, dict):
            return refusal(
                400,
                "BAD_REQUEST",
                "Input validation failed",
                issues=[issue([], "Expected object", "invalid_type")],
            )
        problems = input_issues(spec, body.get("input"))
        hook = body.get("webhookUrl")
        if hook is not None and not (isinstance(hook, str) and re.match(r"^https?://", hook)):
            problems.append(issue(["webhookUrl"], "Invalid url", "invalid_string"))
        if problems:
            return refusal(400, "BAD_REQUEST", "Input validation failed", issues=problems)
        if task_fault == "content_policy":
            return refusal(400, "BAD_REQUEST", "Your prompt was flagged by our content moderation system.")
        credits = spec["credits_per_second"] * int(body["input"].get("length", spec["default_length"]))
        if self.balance < credits:
            return refusal(403, "FORBIDDEN", "Not enough credits. Please add more.")
        self.balance -= credits
        task = self.new_task(model, body, callback_url=hook, credit=credits)
        if task_fault == "fail":
            task.outcome = "fail"
        if hook:
            self.schedule_callback(task, self._deliver)
        return envelope({"taskId": task.id, "status": "waiting"})

    async def status(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        task_id = request.path_params["taskId"]
        with self.status_check(task_id):
            if (fault := await self.guard("status")) is not None:
                return fault
            task = self.tasks.get(task_id)
            if task is None:
                return refusal(404, "NOT_FOUND", "Task not found")
            advance(task)
            return envelope(self.task_view(task))

    def task_view(self, task: FakeTask) -> dict[str, Any]:
        stage = stage_of(task)
        status, url, fail = {"queued": "waiting", "running": "processing"}.get(stage, "succeed"), "", ""
        if stage == "done":
            if task.outcome == "success":
                url = self.media_url("mp4", f"pollo-{task.id}")
            else:
                status, fail = "failed", task.fail_message
        return {
            "taskId": task.id,
            "credit": task.extra["credit"],
            "generations": [
                {
                    "id": f"g_{task.id}",
                    "status": status,
                    "failMsg": fail,
                    "url": url,
                    "mediaType": "video",
                    "createdDate": "2025-01-01T00:00:00.000Z",
                    "updatedDate": "2025-01-01T00:00:01.000Z",
                }
            ],
        }

    async def _deliver(self, task: FakeTask) -> None:
        assert task.callback_url is not None
        view = self.task_view(task)
        body = json.dumps({**view, "status": view["generations"][0]["status"]}).encode()
        headers: dict[str, str] = {}
        if self.callback_secret and self.signature_scheme == "docs":
            headers = standard_signature_headers(self.callback_secret, body, prefix="X-Webhook-")
        elif self.callback_secret:
            headers = {
                "X-Signature": hmac.new(self.callback_secret.encode(), body, hashlib.sha256).hexdigest()
            }
        await self.send_callback(task.callback_url, body, headers)

    # --- credits and uploads -------------------------------------------------------------------

    async def credit_balance(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        low = take_low_balance(self)  # before guard(), which would swallow it
        if (fault := await self.guard("any")) is not None:
            return fault
        available = 0.5 if low else round(self.balance, 2)
        return envelope({"availableCredits": available, "totalCredits": max(available, 10_000)})

    async def file_sign(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        problems = []
        if not isinstance(body, dict) or body.get("action") != "putObject":
            problems.append(
                issue(["action"], 'Invalid literal value, expected "putObject"', "invalid_literal")
            )
        if not isinstance(body, dict) or not isinstance(body.get("filename"), str):
            problems.append(issue(["filename"], "Required", "invalid_type"))
        if not isinstance(body, dict) or body.get("type") not in ("image/png", "image/jpeg", "image/jpg"):
            problems.append(issue(["type"], "Unsupported file type", "custom"))
        if problems:
            return refusal(400, "BAD_REQUEST", "Input validation failed", issues=problems)
        assert isinstance(body, dict)
        key = uuid.uuid4().hex
        ext = "png" if body["type"] == "image/png" else "jpg"
        self._signed[key] = f"{key}.{ext}"
        signature = base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()).decode().rstrip("=")
        return envelope(
            {
                "signedUrl": f"{self.base_url}/upload/{key}?X-Amz-Signature={signature}",
                # The fake serves its sample PNG for any uploaded name.
                "fileUrl": self.media_url("png", f"upload-{key}"),
            }
        )

    async def upload(self, request: Request) -> Response:
        key = request.path_params["key"]
        if key not in self._signed or "authorization" in request.headers or "x-api-key" in request.headers:
            # Presigned storage: unknown keys and stray credentials are refused.
            return Response(
                "<Error><Code>AccessDenied</Code></Error>", status_code=403, media_type="application/xml"
            )
        self.uploads[key] = (request.headers.get("content-type", ""), await request.body())
        return Response(status_code=200)
