"""Midjourney on TuZi through the midjourney-proxy protocol (`/mj/submit/imagine`, `/mj/task/{id}/fetch`).

Midjourney takes its options as flags inside the prompt (`--ar 16:9 --v 7`); the definition's
fields are turned into those flags. Submit answers arrive as HTTP 200 with a `code`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from aigen.providers.base import HttpReply
from aigen.providers.images import InputImageError, fetch_image_bytes
from aigen.providers.inputs import ImageLimits, checked_images
from aigen.providers.mapping import wire_value
from aigen.providers.tuzi.common import TuziAdapter, json_or_none
from aigen.providers.types import (
    AdapterError,
    AdapterResult,
    ErrorCode,
    GenerationRequest,
    ResultItem,
)

ACCEPTED = frozenset({1, 21, 22})  # submitted, already exists, queued
RETRYABLE = {
    23: ErrorCode.PROVIDER_UNAVAILABLE,
    9: ErrorCode.PROVIDER_UNAVAILABLE,
    3: ErrorCode.PROVIDER_UNAVAILABLE,
    30: ErrorCode.RATE_LIMITED,
}
BANNED = 24
# Field key → Midjourney prompt flag.
DEFAULT_FLAGS = {"aspect_ratio": "--ar", "version": "--v", "stylize": "--s", "chaos": "--chaos"}
NIJI = "NIJI_JOURNEY"
_FAILED_FOR_CONTENT = re.compile(r"banned|moderat|blocked|sensitive|restricted", re.IGNORECASE)


def parse_progress(value: Any) -> float | None:
    """ "45%" → 0.45."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 100
    if isinstance(value, str):
        match = re.match(r"\s*(\d+(?:\.\d+)?)\s*%?", value)
        if match:
            return float(match.group(1)) / 100
    return None


class TuziMidjourneyAdapter(TuziAdapter):
    default_images = ImageLimits(max=5)

    def auth_headers(self) -> dict[str, str]:
        # new-api reads the Bearer token; plain midjourney-proxy deployments read mj-api-secret.
        return {**super().auth_headers(), "mj-api-secret": self.api_key}

    def build_prompt(self, prompt: str, parameters: Mapping[str, Any]) -> str:
        if not prompt.strip():
            return ""  # flags alone are no prompt: let the provider refuse it
        flags = {**DEFAULT_FLAGS, **(self.setting("prompt_flags") or {})}
        parts = [prompt.strip()]
        niji = parameters.get("botType") == NIJI
        for key, flag in flags.items():
            value = wire_value(parameters.get(key))
            if value is None or value == "" or (niji and flag == "--v"):
                continue
            if re.search(rf"(^|\s){re.escape(flag)}\s", prompt + " "):
                continue  # the user already wrote this flag
            parts.append(f"{flag} {value}")
        return " ".join(p for p in parts if p)

    async def dispatch(self, request: GenerationRequest) -> AdapterResult:
        if err := self.missing_key_error():
            return AdapterResult.failure(err)
        limits = ImageLimits.from_setting(self.setting("input_images"), self.default_images)
        checked = checked_images(request.input_images, limits)
        if isinstance(checked, AdapterError):
            return AdapterResult.failure(checked)
        base64_array: list[str] = []
        for image in checked:
            try:
                data, mime = await fetch_image_bytes(self.http, image, max_bytes=limits.max_bytes)
            except InputImageError as exc:
                return AdapterResult.failure(exc.to_adapter_error())
            base64_array.append(dataclasses.replace(image, data=data, mime_type=mime).data_url())
        params = request.parameters
        body: dict[str, Any] = {
            "prompt": self.build_prompt(request.prompt, params),
            "base64Array": base64_array,
            "botType": params.get("botType") or "MID_JOURNEY",
        }
        if params.get("mode"):
            body["accountFilter"] = {"modes": [params["mode"]]}
        if request.reference:
            body["state"] = request.reference
        reply = await self.request("POST", "/mj/submit/imagine", json_body=body)
        if isinstance(reply, AdapterError):
            return AdapterResult.failure(reply)
        answer = json_or_none(reply)
        if reply.status != 200:
            return AdapterResult.failure(self.gateway_error(reply, answer))
        if not isinstance(answer, dict):
            return AdapterResult.failure(self.bad_response(reply, "submit answer is not a JSON object"))
        if "error" in answer and isinstance(answer["error"], dict):
            return AdapterResult.failure(self.gateway_error(reply, answer))
        code = answer.get("code")
        if code in ACCEPTED:
            task_id = answer.get("result")
            if not isinstance(task_id, str | int) or isinstance(task_id, bool) or task_id == "":
                return AdapterResult.failure(self.bad_response(reply, "accepted without a task id"))
            return AdapterResult.processing(str(task_id), 0.0, provider_state=f"code {code}")
        if not isinstance(code, int):
            return AdapterResult.failure(self.bad_response(reply, "submit answer without a code"))
        return AdapterResult.failure(self.submit_error(reply, answer, code))

    def submit_error(self, reply: HttpReply, answer: dict[str, Any], code: int) -> AdapterError:
        description = str(answer.get("description") or "")
        base = dataclasses.replace(
            self.bad_response(reply, "refused"),
            message=f"tuzi midjourney: {description or f'code {code}'}",
            provider_code=str(code),
        )
        if code == BANNED:
            properties = answer.get("properties")
            word = properties.get("bannedWord") if isinstance(properties, dict) else None
            message = base.message + (f" (banned word: {word})" if word else "")
            return dataclasses.replace(base, code=ErrorCode.CONTENT_POLICY, message=message, retryable=False)
        if code in RETRYABLE:
            return dataclasses.replace(base, code=RETRYABLE[code], retryable=True)
        if code == 4:
            if "insert_midjourney_task_failed" in description:
                return dataclasses.replace(base, code=ErrorCode.PROVIDER_UNAVAILABLE, retryable=True)
            if "quota" in description.lower():
                return dataclasses.replace(base, code=ErrorCode.INSUFFICIENT_CREDITS, retryable=False)
            return dataclasses.replace(base, code=ErrorCode.INVALID_REQUEST, retryable=False)
        return dataclasses.replace(base, code=ErrorCode.GENERATION_FAILED, retryable=False)

    async def check_status(self, provider_task_id: str) -> AdapterResult:
        if err := self.missing_key_error():
            return AdapterResult.failure(err, provider_task_id=provider_task_id)
        reply = await self.request("GET", f"/mj/task/{provider_task_id}/fetch")
        if isinstance(reply, AdapterError):
            return AdapterResult.failure(reply, provider_task_id=provider_task_id)
        task = json_or_none(reply)
        if reply.status != 200:
            return AdapterResult.failure(self.gateway_error(reply, task), provider_task_id=provider_task_id)
        if task is None and reply.content.strip() in (b"", b"null"):
            return AdapterResult.failure(
                AdapterError(
                    ErrorCode.NOT_FOUND, f"tuzi midjourney: no task {provider_task_id}", retryable=False
                ),
                provider_task_id=provider_task_id,
            )
        if not isinstance(task, dict):
            return AdapterResult.failure(
                self.bad_response(reply, "task is not a JSON object"), provider_task_id=provider_task_id
            )
        if "id" not in task and isinstance(task.get("code"), int):
            err = self.submit_error(reply, task, task["code"])
            if re.search(r"no[t_ ]*found", str(task.get("description", "")), re.IGNORECASE):
                err = dataclasses.replace(err, code=ErrorCode.NOT_FOUND, retryable=False)
            return AdapterResult.failure(err, provider_task_id=provider_task_id)
        return self.task_result(task, provider_task_id, reply)

    def task_result(self, task: dict[str, Any], task_id: str, reply: HttpReply) -> AdapterResult:
        status = task.get("status") or ""
        if status in ("", "NOT_START", "SUBMITTED"):
            return AdapterResult.processing(task_id, 0.0, provider_state=status or "NOT_START")
        if status == "IN_PROGRESS":
            return AdapterResult.processing(
                task_id, parse_progress(task.get("progress")), provider_state=status
            )
        if status == "SUCCESS":
            grid = task.get("imageUrl")
            singles = [
                u["url"] if isinstance(u, dict) else u
                for u in task.get("imageUrls") or []
                if (isinstance(u, dict) and isinstance(u.get("url"), str)) or isinstance(u, str)
            ]
            urls = singles or ([grid] if isinstance(grid, str) and grid else [])
            if not urls:
                return AdapterResult.failure(
                    self.bad_response(reply, "SUCCESS without imageUrl"), provider_task_id=task_id
                )
            extra: dict[str, Any] = {}
            if isinstance(grid, str) and singles:
                extra["grid_url"] = grid
            if isinstance(task.get("buttons"), list):
                extra["buttons"] = [b.get("customId") for b in task["buttons"] if isinstance(b, dict)]
            items = [ResultItem(self.model.output_type, url=u, extra=extra) for u in urls]
            return AdapterResult.success(items, provider_task_id=task_id, provider_state=status)
        if status == "FAILURE":
            reason = str(task.get("failReason") or "Midjourney task failed")
            code = (
                ErrorCode.CONTENT_POLICY
                if _FAILED_FOR_CONTENT.search(reason)
                else ErrorCode.GENERATION_FAILED
            )
            return AdapterResult.failure(
                AdapterError(code, f"tuzi midjourney: {reason}", retryable=False, provider_code=status),
                provider_task_id=task_id,
                provider_state=status,
            )
        return AdapterResult.failure(
            self.bad_response(reply, f"unknown status {status!r}"), provider_task_id=task_id
        )
