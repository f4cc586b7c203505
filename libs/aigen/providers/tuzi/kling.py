"""Kling on TuZi, in Kling's official format under `/kling/v1/videos/{text2video|image2video}`.

A new-api gateway may convert these routes to its unified video API and answer in the
OpenAI-video shape (`{id, status: queued|in_progress|completed|failed, progress, …}`) instead of
Kling's `{code, message, data: {task_id, task_status, …}}`: both are read.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from aigen.providers.base import HttpReply
from aigen.providers.inputs import ImageLimits, checked_images
from aigen.providers.mapping import map_parameters
from aigen.providers.tuzi.common import TuziAdapter, json_or_none
from aigen.providers.types import (
    AdapterError,
    AdapterResult,
    ErrorCode,
    GenerationRequest,
    ResultItem,
)

TEXT2VIDEO = "text2video"
IMAGE2VIDEO = "image2video"
# Only text-to-video takes an aspect ratio; image-to-video follows the image.
TEXT_ONLY_FIELDS = frozenset({"aspect_ratio"})
_CONTENT_RE = re.compile(r"content secur|sensitive|risk control|policy", re.IGNORECASE)


def kling_error_code(code: int) -> tuple[ErrorCode, bool]:
    """Kling's business codes → our code and whether a retry can help."""
    if 1000 <= code <= 1004 or code == 1103:
        return ErrorCode.AUTH_FAILED, False
    if 1100 <= code <= 1102:
        return ErrorCode.INSUFFICIENT_CREDITS, False
    if 1200 <= code <= 1299:
        return ErrorCode.INVALID_REQUEST, False
    if code == 1301:
        return ErrorCode.CONTENT_POLICY, False
    if code in (1302, 1303):
        return ErrorCode.RATE_LIMITED, True
    if code >= 5000:
        return ErrorCode.PROVIDER_UNAVAILABLE, True
    return ErrorCode.INVALID_REQUEST, False


class TuziKlingAdapter(TuziAdapter):
    default_images = ImageLimits(max=2)

    async def dispatch(self, request: GenerationRequest) -> AdapterResult:
        if err := self.missing_key_error():
            return AdapterResult.failure(err)
        limits = ImageLimits.from_setting(self.setting("input_images"), self.default_images)
        checked = checked_images(request.input_images, limits)
        if isinstance(checked, AdapterError):
            return AdapterResult.failure(checked)
        kind = IMAGE2VIDEO if checked else TEXT2VIDEO
        body = map_parameters(
            request.parameters,
            self.setting("field_map"),
            skip=TEXT_ONLY_FIELDS if checked else (),
        )
        body["model_name"] = self.setting("model_name", "kling-v1")
        if request.prompt:
            body["prompt"] = request.prompt
        if "duration" in body:
            body["duration"] = str(body["duration"])  # Kling wants "5", not 5
        # Kling takes an image as a URL or as raw base64 without the data-URL prefix.
        for field_name, image in zip(("image", "image_tail"), checked, strict=False):
            if image.data is not None:
                body[field_name] = image.data_url().split(",", 1)[1]
            else:
                body[field_name] = image.url
        reply = await self.request("POST", f"/kling/v1/videos/{kind}", json_body=body)
        return self._task_reply(reply, kind, None)

    async def check_status(self, provider_task_id: str) -> AdapterResult:
        if err := self.missing_key_error():
            return AdapterResult.failure(err, provider_task_id=provider_task_id)
        kind, _, task_id = provider_task_id.rpartition(":")
        kind = kind if kind in (TEXT2VIDEO, IMAGE2VIDEO) else TEXT2VIDEO
        reply = await self.request("GET", f"/kling/v1/videos/{kind}/{task_id}")
        return self._task_reply(reply, kind, provider_task_id)

    # --- replies -------------------------------------------------------------------------------

    def _task_reply(self, reply: HttpReply | AdapterError, kind: str, known_id: str | None) -> AdapterResult:
        if isinstance(reply, AdapterError):
            return AdapterResult.failure(reply, provider_task_id=known_id)
        body = json_or_none(reply)
        if reply.status != 200:
            return AdapterResult.failure(self.error_of(reply, body), provider_task_id=known_id)
        if not isinstance(body, dict):
            return AdapterResult.failure(
                self.bad_response(reply, "body is not a JSON object"), provider_task_id=known_id
            )
        # A failed OpenAI-video task carries `error` too; only a bare `error` is a refusal.
        if isinstance(body.get("error"), dict) and "status" not in body:
            return AdapterResult.failure(self.gateway_error(reply, body), provider_task_id=known_id)
        if isinstance(body.get("code"), int) and body["code"] != 0:
            return AdapterResult.failure(self.error_of(reply, body), provider_task_id=known_id)
        if isinstance(body.get("data"), dict):
            return self._kling_task(body["data"], kind, reply)
        if isinstance(body.get("status"), str):
            return self._openai_video(body, kind, reply)
        return AdapterResult.failure(
            self.bad_response(reply, "neither a Kling nor a video task"), provider_task_id=known_id
        )

    def _kling_task(self, data: dict[str, Any], kind: str, reply: HttpReply) -> AdapterResult:
        raw_id = data.get("task_id")
        if not isinstance(raw_id, str | int) or raw_id == "":
            return AdapterResult.failure(self.bad_response(reply, "no data.task_id"))
        task_id = f"{kind}:{raw_id}"
        status = data.get("task_status")
        if status == "submitted":
            return AdapterResult.processing(task_id, 0.0, provider_state=status)
        if status == "processing":
            return AdapterResult.processing(task_id, None, provider_state=status)
        if status == "succeed":
            result = data.get("task_result")
            videos = result.get("videos") if isinstance(result, dict) else None
            items = [
                ResultItem(
                    self.model.output_type,
                    url=v["url"],
                    extra={"duration": v.get("duration"), "id": v.get("id")},
                )
                for v in (videos or [])
                if isinstance(v, dict) and isinstance(v.get("url"), str) and v["url"]
            ]
            if not items:
                return AdapterResult.failure(
                    self.bad_response(reply, "succeed without videos"), provider_task_id=task_id
                )
            return AdapterResult.success(items, provider_task_id=task_id, provider_state=status)
        if status == "failed":
            return self._failed(
                task_id, str(data.get("task_status_msg") or "video generation failed"), status
            )
        return AdapterResult.failure(
            self.bad_response(reply, f"unknown task_status {status!r}"), provider_task_id=task_id
        )

    def _openai_video(self, body: dict[str, Any], kind: str, reply: HttpReply) -> AdapterResult:
        raw_id = body.get("task_id") or body.get("id")
        if not isinstance(raw_id, str | int) or raw_id == "":
            return AdapterResult.failure(self.bad_response(reply, "video task without an id"))
        task_id = f"{kind}:{raw_id}"
        status = body["status"]
        progress = body.get("progress")
        fraction = (
            progress / 100 if isinstance(progress, int | float) and not isinstance(progress, bool) else None
        )
        if status in ("queued", "submitted", "not_start"):
            return AdapterResult.processing(task_id, fraction or 0.0, provider_state=status)
        if status in ("in_progress", "processing"):
            return AdapterResult.processing(task_id, fraction, provider_state=status)
        if status in ("completed", "succeeded", "success"):
            url = _video_url(body)
            if not url:
                return AdapterResult.failure(
                    self.bad_response(reply, "completed without a video url"), provider_task_id=task_id
                )
            return AdapterResult.success(
                [ResultItem(self.model.output_type, url=url)], provider_task_id=task_id, provider_state=status
            )
        if status in ("failed", "failure"):
            error = body.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            return self._failed(
                task_id, str(message or body.get("fail_reason") or "video generation failed"), status
            )
        return AdapterResult.failure(
            self.bad_response(reply, f"unknown status {status!r}"), provider_task_id=task_id
        )

    def _failed(self, task_id: str, message: str, status: str) -> AdapterResult:
        code = ErrorCode.CONTENT_POLICY if _CONTENT_RE.search(message) else ErrorCode.GENERATION_FAILED
        return AdapterResult.failure(
            AdapterError(code, f"tuzi kling: {message}", retryable=False, provider_code=status),
            provider_task_id=task_id,
            provider_state=status,
        )

    def error_of(self, reply: HttpReply, body: Any) -> AdapterError:
        if reply.status == 404:
            return self.gateway_error(reply, body)  # an unknown task id or route, whatever the code
        if (
            isinstance(body, dict)
            and isinstance(body.get("code"), int)
            and not isinstance(body["code"], bool)
        ):
            code, retryable = kling_error_code(body["code"])
            base = self.http_error(reply, f"tuzi kling: {body.get('message') or body['code']}")
            if reply.status == 200 and code is ErrorCode.INVALID_REQUEST and body["code"] < 1200:
                code = ErrorCode.PROVIDER_BAD_RESPONSE
            return dataclasses.replace(base, code=code, retryable=retryable, provider_code=str(body["code"]))
        return self.gateway_error(reply, body)


def _video_url(body: dict[str, Any]) -> str | None:
    # new-api versions and forks put the URL in different places.
    candidates = [
        (body.get("metadata") or {}).get("url") if isinstance(body.get("metadata"), dict) else None,
        body.get("video_url"),
        (body.get("output") or {}).get("video_url") if isinstance(body.get("output"), dict) else None,
        body.get("url"),
    ]
    return next((c for c in candidates if isinstance(c, str) and c), None)
