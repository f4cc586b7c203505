"""Fake TuZi gateway: Kling in its official format (or, like some new-api relays, in the
OpenAI-video shape) and Midjourney through the midjourney-proxy protocol. Gateway refusals
(auth, limits) use the OpenAI-style `{"error": {…}}` body; MJ answers `{code, description}`."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aigen.simulator.base import FakeProvider, FakeTask, Fault
from aigen.simulator.stages import advance, stage_of

KLING_MODELS = {
    "kling-v1",
    "kling-v1-5",
    "kling-v1-6",
    "kling-v2-master",
    "kling-v2-1",
    "kling-v2-1-master",
    "kling-v2-5-turbo",
    "kling-v2-6",
}
KINDS = ("text2video", "image2video")
BANNED_WORDS = ("gore", "nsfw")
RAW_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def gateway_error(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "new_api_error", "code": code}},
        status_code=status,
        headers=headers,
    )


def kling_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "request_id": uuid.uuid4().hex}, status_code=status
    )


def mj_answer(code: int, description: str, result: str | None = None, **properties: Any) -> JSONResponse:
    return JSONResponse(
        {"code": code, "description": description, "result": result, "properties": properties}
    )


class TuziFake(FakeProvider):
    slug = "tuzi"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.kling_shape: Literal["kling", "openai"] = "kling"
        # Submit codes to answer instead of accepting (23 queue full, 9 failure, 30 limited, 22 queued …).
        self.mj_submit_codes: list[int] = []

    def provider_routes(self) -> list[BaseRoute]:
        return [
            Route("/kling/v1/videos/{kind}", self.kling_create, methods=["POST"]),
            Route("/kling/v1/videos/{kind}/{task_id}", self.kling_get, methods=["GET"]),
            Route("/mj/submit/imagine", self.mj_imagine, methods=["POST"]),
            Route("/mj/task/{id}/fetch", self.mj_fetch, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
        ]

    def unauthorized(self, request: Request) -> Response | None:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if bearer == self.api_key or (not bearer and request.headers.get("mj-api-secret") == self.api_key):
            return None
        return gateway_error(401, "Invalid token (无效的令牌)", "invalid_token")

    async def fault_response(self, fault: Fault) -> Response | None:
        if fault.kind == "rate_limit":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return gateway_error(
                429, "The upstream load is saturated, please try again later", "rate_limit", headers
            )
        if fault.kind == "server_error":
            return gateway_error(500, "upstream error: do request failed", "do_request_failed")
        if fault.kind == "auth":
            return gateway_error(401, "Invalid token (无效的令牌)", "invalid_token")
        return await super().fault_response(fault)

    async def models(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        if (fault := await self.guard("any")) is not None:
            return fault
        names = ["mj_imagine", "kling-v2-master", "kling-v1-6", "gpt-4o-mini"]
        return JSONResponse(
            {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "tuzi"} for n in names]}
        )

    # --- Kling ---------------------------------------------------------------------------------

    async def kling_create(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        task_fault = self.take_task_fault()
        if (fault := await self.guard("create")) is not None:
            return fault
        kind = request.path_params["kind"]
        if kind not in KINDS:
            return gateway_error(404, "Invalid URL (POST /kling/v1/videos/" + kind + ")")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return kling_error(400, 1200, "Invalid request: body is not JSON")
        problem = self._kling_problem(kind, body)
        if problem:
            return kling_error(400, 1201, problem)
        if task_fault == "content_policy":
            return kling_error(400, 1301, "Trigger the content security policy of the platform")
        if self.balance <= 0:
            return kling_error(429, 1102, "Account resource pack is exhausted")
        self.balance -= 1
        task = self.new_task(kind, body)
        if task_fault == "fail":
            task.outcome = "fail"
        return JSONResponse(self._kling_view(task))

    @staticmethod
    def _kling_problem(kind: str, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "request body must be an object"
        if body.get("model_name", "kling-v1") not in KLING_MODELS:
            return f"model_name {body.get('model_name')!r} is not supported"
        prompt = body.get("prompt")
        if kind == "text2video" and not (isinstance(prompt, str) and prompt.strip()):
            return "prompt is required"
        for key in ("prompt", "negative_prompt"):
            if key in body and (not isinstance(body[key], str) or len(body[key]) > 2500):
                return f"{key} must be a string of at most 2500 characters"
        if body.get("mode", "std") not in ("std", "pro"):
            return "mode must be std or pro"
        if body.get("duration", "5") not in ("5", "10"):
            return 'duration must be "5" or "10"'
        if "cfg_scale" in body and not (
            isinstance(body["cfg_scale"], int | float) and 0 <= body["cfg_scale"] <= 1
        ):
            return "cfg_scale must be between 0 and 1"
        if kind == "text2video" and body.get("aspect_ratio", "16:9") not in ("16:9", "9:16", "1:1"):
            return "aspect_ratio must be 16:9, 9:16 or 1:1"
        if kind == "image2video" and "image" not in body:
            return "image is required"
        for key in ("image", "image_tail"):
            value = body.get(key)
            if value is None:
                continue
            # A URL or raw base64: a data-URL prefix is refused by Kling.
            if not isinstance(value, str) or not (
                value.startswith(("http://", "https://")) or RAW_BASE64.match(value)
            ):
                return f"{key} must be an image URL or raw base64 data"
        return None

    async def kling_get(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        task_id = request.path_params["task_id"]
        with self.status_check(task_id):
            if (fault := await self.guard("status")) is not None:
                return fault
            task = self.tasks.get(task_id)
            if task is None or task.kind != request.path_params["kind"]:
                return kling_error(404, 1203, "task not found")
            advance(task)
            return JSONResponse(self._kling_view(task))

    def _kling_view(self, task: FakeTask) -> dict[str, Any]:
        stage = stage_of(task)
        now_ms = int(time.time() * 1000)
        url = self.media_url("mp4", f"kling-{task.id}")
        if self.kling_shape == "openai":
            status = {"queued": "queued", "running": "in_progress"}.get(stage, "completed")
            view: dict[str, Any] = {
                "id": task.id,
                "task_id": task.id,
                "object": "video",
                "model": task.request.get("model_name"),
                "status": status,
                "progress": int(task.progress() * 100) if stage != "queued" else 0,
                "created_at": int(task.created_at),
            }
            if stage == "done" and task.outcome == "success":
                view["metadata"] = {"url": url}
                view["completed_at"] = int(time.time())
            elif stage == "done":
                view["status"] = "failed"
                view["error"] = {"message": task.fail_message, "code": "task_failed"}
            return view
        status = {"queued": "submitted", "running": "processing"}.get(stage, "succeed")
        data: dict[str, Any] = {
            "task_id": task.id,
            "task_status": status,
            "task_status_msg": "",
            "task_info": {"external_task_id": task.request.get("external_task_id")},
            "created_at": now_ms,
            "updated_at": now_ms,
        }
        if stage == "done" and task.outcome == "success":
            data["task_result"] = {
                "videos": [
                    {"id": f"v_{task.id}", "url": url, "duration": str(task.request.get("duration", "5"))}
                ]
            }
        elif stage == "done":
            data["task_status"] = "failed"
            data["task_status_msg"] = task.fail_message
        return {"code": 0, "message": "SUCCEED", "request_id": uuid.uuid4().hex, "data": data}

    # --- Midjourney ----------------------------------------------------------------------------

    async def mj_imagine(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        task_fault = self.take_task_fault()
        if (fault := await self.guard("create")) is not None:
            return fault
        try:
            body = json.loads(await request.body())
        except ValueError:
            return mj_answer(4, "Validation error: request body is not JSON")
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("prompt"), str)
            or not body["prompt"].strip()
        ):
            return mj_answer(4, "Validation error: prompt must not be blank")
        images = body.get("base64Array") or []
        if not isinstance(images, list) or any(
            not (isinstance(i, str) and i.startswith("data:image/")) for i in images
        ):
            return mj_answer(4, "base64 format error")
        if body.get("botType", "MID_JOURNEY") not in ("MID_JOURNEY", "NIJI_JOURNEY"):
            return mj_answer(4, "Validation error: botType is invalid")
        banned = next((w for w in BANNED_WORDS if w in body["prompt"].lower()), None)
        if task_fault == "content_policy" and banned is None:
            banned = body["prompt"].split()[0]
        if banned:
            return mj_answer(24, "可能包含敏感词", promptEn=body["prompt"], bannedWord=banned)
        if self.mj_submit_codes:
            code = self.mj_submit_codes.pop(0)
            if code not in (21, 22):
                text = {
                    23: "队列已满, 请稍后尝试",
                    9: "system error",
                    30: "rate limited, please retry later",
                    4: "insert_midjourney_task_failed",
                    3: "no available account instance",
                }
                return mj_answer(code, text.get(code, "error"))
        else:
            code = 1
        if self.balance <= 0:
            return mj_answer(4, "quota_not_enough")
        self.balance -= 1
        task = self.new_task("IMAGINE", body)
        del self.tasks[task.id]
        task.id = str(int(time.time() * 1000)) + f"{len(self.tasks):04d}"  # MJ ids are digits
        self.tasks[task.id] = task
        if task_fault == "fail":
            task.outcome = "fail"
        description = {1: "Submit success", 21: "任务已存在", 22: "排队中, 前面还有1个任务"}[code]
        props: dict[str, Any] = {
            "discordChannelId": "1100000000000000000",
            "discordInstanceId": "1100000000000000000",
        }
        if code == 22:
            props["numberOfQueues"] = 1
        return JSONResponse(
            {"code": code, "description": description, "result": task.id, "properties": props}
        )

    async def mj_fetch(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        task_id = request.path_params["id"]
        with self.status_check(task_id):
            if (fault := await self.guard("status")) is not None:
                return fault
            task = self.tasks.get(task_id)
            if task is None:
                return mj_answer(4, "task_no_found")
            advance(task)
            return JSONResponse(self._mj_view(task))

    def _mj_view(self, task: FakeTask) -> dict[str, Any]:
        stage = stage_of(task)
        submit_ms = int(task.created_at * 1000)
        view: dict[str, Any] = {
            "id": task.id,
            "action": "IMAGINE",
            "customId": "",
            "botType": task.request.get("botType", "MID_JOURNEY"),
            "prompt": task.request["prompt"],
            "promptEn": task.request["prompt"],
            "description": "/imagine " + task.request["prompt"],
            "state": task.request.get("state", ""),
            "submitTime": submit_ms,
            "startTime": 0,
            "finishTime": 0,
            "imageUrl": "",
            "status": "SUBMITTED",
            "progress": "0%",
            "failReason": "",
            "buttons": [],
            "properties": {"finalPrompt": task.request["prompt"]},
        }
        if stage == "running":
            view.update(
                status="IN_PROGRESS",
                progress=f"{max(1, int(task.progress() * 100))}%",
                startTime=submit_ms + 500,
                imageUrl=self.media_url("png", f"mj-{task.id}-preview"),
            )
        elif stage == "done" and task.outcome == "success":
            digest = uuid.uuid5(uuid.NAMESPACE_URL, task.id).hex
            view.update(
                status="SUCCESS",
                progress="100%",
                startTime=submit_ms + 500,
                finishTime=submit_ms + 5000,
                imageUrl=self.media_url("png", f"mj-{task.id}-grid"),
                imageUrls=[{"url": self.media_url("png", f"mj-{task.id}-{i}")} for i in range(1, 5)],
                buttons=[
                    *(
                        {
                            "customId": f"MJ::JOB::upsample::{i}::{digest}",
                            "emoji": "",
                            "label": f"U{i}",
                            "type": 2,
                            "style": 2,
                        }
                        for i in range(1, 5)
                    ),
                    {
                        "customId": f"MJ::JOB::reroll::0::{digest}::SOLO",
                        "emoji": "🔄",
                        "label": "",
                        "type": 2,
                        "style": 2,
                    },
                    *(
                        {
                            "customId": f"MJ::JOB::variation::{i}::{digest}",
                            "emoji": "",
                            "label": f"V{i}",
                            "type": 2,
                            "style": 2,
                        }
                        for i in range(1, 5)
                    ),
                ],
            )
        elif stage == "done":
            view.update(
                status="FAILURE", progress="", failReason=task.fail_message, finishTime=submit_ms + 5000
            )
        return view
