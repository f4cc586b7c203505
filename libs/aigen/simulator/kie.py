"""A fake of Kie.ai's HTTP API, following the provider notes: the market jobs API and the
dedicated 4o Image, Flux Kontext, Midjourney, Veo and Runway APIs, file uploads, the credit
balance, and callbacks signed like Kie's (base64 HMAC-SHA256 of "taskId.timestamp").

Kie answers most errors with HTTP 200 and the real code in the body; the fake does the same, so
an adapter that trusts the HTTP status alone fails against it.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aigen.simulator import kie_contract as contract
from aigen.simulator.base import FakeProvider, FakeTask, Fault, Scope

NO_ACCESS = "You do not have access permissions"
POLICY_MESSAGES = {
    "market": "The content violates the content policy and was refused",
    "4o": "content policy violation: the request was flagged by the safety system",
    "flux": "Your prompt was flagged as sensitive content",
    "mj": "Banned prompt detected by moderation",
    "veo": "Your prompt was flagged by the content policy",
    "runway": "Inappropriate content detected",
}
RUNNING_WORDS = {
    "market": ("waiting", "queuing", "generating"),
    "runway": ("wait", "queueing", "generating"),
}


def envelope(code: int, msg: str, data: Any = None, *, http_status: int = 200, key: str = "msg") -> Response:
    body: dict[str, Any] = {"code": code, key: msg}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=http_status)


def ok(data: Any, *, key: str = "msg") -> Response:
    return envelope(200, "success", data, key=key)


def upload_error(code: int, msg: str, http_status: int) -> Response:
    return JSONResponse({"success": False, "code": code, "msg": msg}, status_code=http_status)


def sniff(data: bytes) -> tuple[str, str]:
    """MIME type and extension of uploaded bytes (images and videos the fake knows)."""
    if data.startswith(b"\x89PNG"):
        return "image/png", "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    if data[4:8] == b"ftyp":
        return "video/mp4", "mp4"
    return "application/octet-stream", "bin"


@dataclass
class QueuedError:
    """A Kie error answer to give instead of the normal one (402, 433, 451, 455, 505 …)."""

    code: int
    msg: str
    scope: Scope = "create"
    http_status: int = 200
    retry_after: float | None = None


class KieFake(FakeProvider):
    slug = "kie"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.errors: list[QueuedError] = []
        self.uploads: dict[str, tuple[bytes, str]] = {}
        # The Veo OpenAPI types response.resultUrls as a string "[url]"; examples use an array.
        self.veo_urls_as_string = False

    # --- steering (tests, simulator) -----------------------------------------------------------

    def queue_error(
        self,
        code: int,
        msg: str,
        *,
        scope: Scope = "create",
        http_status: int = 200,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        self.errors.extend(QueuedError(code, msg, scope, http_status, retry_after) for _ in range(times))

    def finished_task(self, kind: str) -> str:
        """A completed task of one family (e.g. a Veo or Runway video to extend)."""
        task = self._start_task(kind, {}, ext="mp4", count=1, credits=0.0, take_fault=False)
        assert isinstance(task, FakeTask)
        task.outcome = "success"
        task.polls = task.polls_to_finish
        task.seconds_to_finish = None
        return task.id

    # --- plumbing ------------------------------------------------------------------------------

    def provider_routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v1/jobs/createTask", self.market_create, methods=["POST"]),
            Route("/api/v1/jobs/recordInfo", self.market_record, methods=["GET"]),
            Route("/api/v1/gpt4o-image/generate", self.gpt4o_create, methods=["POST"]),
            Route("/api/v1/gpt4o-image/record-info", self.gpt4o_record, methods=["GET"]),
            Route("/api/v1/flux/kontext/generate", self.flux_create, methods=["POST"]),
            Route("/api/v1/flux/kontext/record-info", self.flux_record, methods=["GET"]),
            Route("/api/v1/mj/generate", self.mj_create, methods=["POST"]),
            Route("/api/v1/mj/record-info", self.mj_record, methods=["GET"]),
            Route("/api/v1/veo/generate", self.veo_create, methods=["POST"]),
            Route("/api/v1/veo/extend", self.veo_extend, methods=["POST"]),
            Route("/api/v1/veo/record-info", self.veo_record, methods=["GET"]),
            Route("/api/v1/runway/generate", self.runway_create, methods=["POST"]),
            Route("/api/v1/runway/extend", self.runway_extend, methods=["POST"]),
            Route("/api/v1/runway/record-detail", self.runway_record, methods=["GET"]),
            Route("/api/v1/chat/credit", self.credit, methods=["GET"]),
            Route("/api/file-base64-upload", self.upload_base64, methods=["POST"]),
            Route("/api/file-url-upload", self.upload_url, methods=["POST"]),
            Route("/api/file-stream-upload", self.upload_stream, methods=["POST"]),
            Route("/uploads/{path:path}", self.serve_upload, methods=["GET"]),
        ]

    async def fault_response(self, fault: Fault) -> Response | None:
        if fault.kind in ("fail", "content_policy", "low_balance"):
            # Task- and balance-level faults: left for the task creation or the credit endpoint.
            self.faults.queued.insert(0, fault)
            return None
        if fault.kind == "rate_limit":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return JSONResponse(
                {"code": 429, "msg": "Too many requests, please slow down"}, status_code=429, headers=headers
            )
        if fault.kind == "server_error":
            return envelope(500, "Server error, please try again later", http_status=500)
        if fault.kind == "auth":
            return envelope(401, NO_ACCESS, http_status=401)
        return await super().fault_response(fault)

    def _take_error(self, scope: Scope) -> Response | None:
        for i, queued in enumerate(self.errors):
            if queued.scope in (scope, "any"):
                self.errors.pop(i)
                headers = {"Retry-After": f"{queued.retry_after:g}"} if queued.retry_after is not None else {}
                return JSONResponse(
                    {"code": queued.code, "msg": queued.msg}, status_code=queued.http_status, headers=headers
                )
        return None

    async def _front(self, request: Request, scope: Scope) -> Response | None:
        """Latency, injected faults, the key check and queued Kie errors, in that order."""
        guarded = await self.guard(scope)
        if guarded is not None:
            return guarded
        if not self.check_bearer(request):
            return envelope(401, NO_ACCESS, http_status=401)
        return self._take_error(scope)

    async def _json_body(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return envelope(400, "Request body is not valid JSON")
        if not isinstance(body, dict):
            return envelope(400, "Request body must be a JSON object")
        return body

    @staticmethod
    def _unreachable(urls: list[str]) -> Response | None:
        # A host under .invalid stands for an image URL Kie cannot download.
        for candidate in urls:
            if (urlsplit(candidate).hostname or "").endswith(".invalid"):
                return envelope(451, f"Failed to fetch the image from {candidate}")
        return None

    def _unused_id(self, make: Callable[[], str]) -> str:
        """A task id in Kie's shape that no task of this fake has: ids made from the millisecond
        and a few random digits can meet when tasks are created in the same millisecond."""
        while (candidate := make()) in self.tasks:
            pass
        return candidate

    def _start_task(
        self,
        kind: str,
        body: dict[str, Any],
        *,
        ext: str,
        count: int,
        credits: float,
        task_id: str | None = None,
        take_fault: bool = True,
        **extra: Any,
    ) -> FakeTask | Response:
        if credits > self.balance:
            return envelope(402, "The current credits are insufficient. Please top up.")
        self.balance -= credits
        task = self.new_task(kind, body, callback_url=body.get("callBackUrl"), **extra)
        del self.tasks[task.id]
        task.id = task_id or f"{kind}_{secrets.token_hex(12)}"
        if task.id in self.tasks:
            # Kie's ids are unique; a fake that reused one would point two tasks at one job.
            raise RuntimeError(f"provider task id {task.id} is already taken")
        self.tasks[task.id] = task
        task.extra.update(ext=ext, count=count, credits=credits, created_ms=int(time.time() * 1000))
        fault = self.take_task_fault() if take_fault else None
        if fault is not None:
            task.outcome = fault
        self.schedule_callback(task, self._send_callback)
        return task

    def _task(self, request: Request, kind: str) -> FakeTask | None:
        task = self.tasks.get(request.query_params.get("taskId", ""))
        return task if task is not None and task.kind == kind else None

    @staticmethod
    def _stage(task: FakeTask) -> int | str:
        """0/1/2 while running (early, queued, generating), else the outcome word."""
        if not task.finished():
            return min(2, int(task.progress() * 3))
        return task.outcome

    def _outputs(self, task: FakeTask) -> list[str]:
        ext = str(task.extra["ext"])
        return [self.media_url(ext, f"{task.id}_{i}") for i in range(int(task.extra["count"]))]

    def _failure_text(self, task: FakeTask, family: str) -> str:
        return POLICY_MESSAGES[family] if task.outcome == "content_policy" else task.fail_message

    def _times(self, task: FakeTask) -> dict[str, Any]:
        created = int(task.extra["created_ms"])
        done = task.finished()
        return {
            "createTime": created,
            "updateTime": int(time.time() * 1000),
            "completeTime": int(time.time() * 1000) if done else None,
        }

    async def _poll(self, request: Request, kind: str, view: Callable[[FakeTask], Response]) -> Response:
        task_id = request.query_params.get("taskId", "")
        with self.status_check(task_id):
            front = await self._front(request, "status")
            if front is not None:
                return front
            task = self._task(request, kind)
            if task is None:
                if kind == "market":
                    return envelope(422, "recordInfo is null", key="message")
                return envelope(404, f"Task {task_id} not found")
            task.polls += 1
            return view(task)

    async def _send_callback(self, task: FakeTask) -> None:
        builders: dict[str, Callable[[FakeTask], dict[str, Any]]] = {
            "market": self._market_callback,
            "4o": self._gpt4o_callback,
            "flux": self._flux_callback,
            "mj": self._mj_callback,
            "veo": self._veo_callback,
            "runway": self._runway_callback,
        }
        raw = json.dumps(builders[task.kind](task)).encode()
        headers: dict[str, str] = {}
        if self.callback_secret:
            timestamp = str(int(time.time()))
            digest = hmac.new(
                self.callback_secret.encode(), f"{task.id}.{timestamp}".encode(), hashlib.sha256
            ).digest()
            headers = {
                "X-Webhook-Timestamp": timestamp,
                "X-Webhook-Signature": base64.b64encode(digest).decode(),
            }
        assert task.callback_url is not None
        await self.send_callback(task.callback_url, raw, headers)

    # --- market --------------------------------------------------------------------------------

    async def market_create(self, request: Request) -> Response:
        front = await self._front(request, "create")
        if front is not None:
            return front
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return envelope(422, "model is required")
        spec = contract.MARKET_MODELS.get(model)
        if spec is None:
            return envelope(422, f"model {model} is not supported")
        values = body.get("input")
        if not isinstance(values, dict):
            return envelope(422, "input is required and must be an object")
        callback = body.get("callBackUrl")
        if callback is not None and not (isinstance(callback, str) and callback.startswith("http")):
            return envelope(422, "callBackUrl must be an http(s) URL")
        problem = contract.violation("input.", spec.rules, values)
        if (
            problem is None
            and model == "sora-watermark-remover"
            and "sora.chatgpt.com" not in values["video_url"]
        ):
            problem = "input.video_url must be a public Sora link on sora.chatgpt.com"
        if problem is not None:
            return envelope(422, problem)
        unreachable = self._unreachable(contract.image_urls_in(spec.rules, values))
        if unreachable is not None:
            return unreachable
        count = int(values.get(spec.count_field, 1)) if spec.count_field else 1
        family = model.split("/", 1)[0].split("-", 1)[0]
        task = self._start_task(
            "market",
            body,
            ext=spec.output,
            count=count,
            credits=spec.credits * count,
            task_id=self._unused_id(
                lambda: f"task_{family}_{int(time.time() * 1000)}{secrets.randbelow(1000):03d}"
            ),
            model=model,
        )
        if isinstance(task, Response):
            return task
        return ok({"taskId": task.id})

    def _market_data(self, task: FakeTask) -> dict[str, Any]:
        stage = self._stage(task)
        data: dict[str, Any] = {
            "taskId": task.id,
            "model": task.extra["model"],
            "param": json.dumps(task.request),
            "resultJson": "",
            "failCode": "",
            "failMsg": "",
            **self._times(task),
        }
        if isinstance(stage, int):
            data["state"] = RUNNING_WORDS["market"][stage]
        elif stage == "success":
            data.update(
                state="success",
                resultJson=json.dumps({"resultUrls": self._outputs(task)}),
                consumeCredits=task.extra["credits"],
                remainedCredits=self.balance,
                costTime=max(1, int(time.monotonic() - task.created_at)),
            )
        else:
            data.update(
                state="fail",
                failCode="400" if stage == "content_policy" else "500",
                failMsg=self._failure_text(task, "market"),
                consumeCredits=0,
                resultJson=None,
            )
        return data

    def fast_market_record(self, path: str, query: Mapping[str, str], authorization: str) -> bytes | None:
        """The market status answer without the ASGI stack, for load tests (`serve_lean`): the
        same body `market_record` gives. None when anything but the plain answer could be due
        (latency, injected faults, queued errors, a bad key, an unknown task): the full handler
        answers those."""
        if path != "/api/v1/jobs/recordInfo" or self.latency or self.faults.queued or self.errors:
            return None
        if authorization != f"Bearer {self.api_key}":
            return None
        task_id = query.get("taskId", "")
        task = self.tasks.get(task_id)
        if task is None or task.kind != "market":
            return None
        with self.status_check(task_id):
            task.polls += 1
            data = self._market_data(task)
        body = {"code": 200, "message": "success", "data": data}
        # Serialised as Starlette's JSONResponse does, so both paths give the same bytes.
        return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()

    async def market_record(self, request: Request) -> Response:
        return await self._poll(request, "market", lambda t: ok(self._market_data(t), key="message"))

    def _market_callback(self, task: FakeTask) -> dict[str, Any]:
        data = self._market_data(task)
        if data["state"] == "success":
            return {"code": 200, "msg": "Playground task completed successfully.", "data": data}
        return {"code": 501, "msg": "Playground task failed.", "data": data}

    # --- 4o Image ------------------------------------------------------------------------------

    async def gpt4o_create(self, request: Request) -> Response:
        front = await self._front(request, "create")
        if front is not None:
            return front
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        problem = contract.violation("", contract.GPT4O, body)
        if (
            problem is None
            and not body.get("prompt")
            and not body.get("filesUrl")
            and not body.get("fileUrl")
        ):
            problem = "prompt is required when no filesUrl is given"
        if problem is not None:
            return envelope(422, problem)
        unreachable = self._unreachable(contract.image_urls_in(contract.GPT4O, body))
        if unreachable is not None:
            return unreachable
        count = int(body.get("nVariants", 1))
        task = self._start_task("4o", body, ext="png", count=count, credits={1: 6, 2: 7, 4: 8}[count])
        if isinstance(task, Response):
            return task
        return ok({"taskId": task.id})

    def _gpt4o_view(self, task: FakeTask) -> Response:
        stage = self._stage(task)
        data: dict[str, Any] = {
            "taskId": task.id,
            "paramJson": json.dumps(task.request),
            "response": None,
            "errorCode": None,
            "errorMessage": None,
            **self._times(task),
        }
        if isinstance(stage, int):
            data.update(successFlag=0, status="GENERATING", progress=f"{task.progress():.2f}")
        elif stage == "success":
            data.update(
                successFlag=1, status="SUCCESS", progress="1.00", response={"resultUrls": self._outputs(task)}
            )
        elif stage == "content_policy":
            data.update(
                successFlag=2,
                status="GENERATE_FAILED",
                progress="0.00",
                errorCode=400,
                errorMessage=self._failure_text(task, "4o"),
            )
        else:
            data.update(
                successFlag=3,
                status="GENERATE_FAILED",
                progress="0.00",
                errorCode=500,
                errorMessage=task.fail_message,
            )
        return ok(data)

    async def gpt4o_record(self, request: Request) -> Response:
        return await self._poll(request, "4o", self._gpt4o_view)

    def _gpt4o_callback(self, task: FakeTask) -> dict[str, Any]:
        if task.outcome == "success":
            return {
                "code": 200,
                "msg": "success",
                "data": {"taskId": task.id, "info": {"result_urls": self._outputs(task)}},
            }
        code = 400 if task.outcome == "content_policy" else 500
        return {
            "code": code,
            "msg": self._failure_text(task, "4o"),
            "data": {"taskId": task.id, "info": None},
        }

    # --- Flux Kontext --------------------------------------------------------------------------

    async def flux_create(self, request: Request) -> Response:
        front = await self._front(request, "create")
        if front is not None:
            return front
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        problem = contract.violation("", contract.FLUX, body)
        if problem is None and body.get("inputImage") and int(body.get("safetyTolerance", 2)) > 2:
            problem = "safetyTolerance must be between 0 and 2 when editing an image"
        if problem is not None:
            return envelope(422, problem)
        unreachable = self._unreachable(contract.image_urls_in(contract.FLUX, body))
        if unreachable is not None:
            return unreachable
        credits = 10.0 if body.get("model") == "flux-kontext-max" else 5.0
        task = self._start_task("flux", body, ext="png", count=1, credits=credits)
        if isinstance(task, Response):
            return task
        return ok({"taskId": task.id})

    def _flux_view(self, task: FakeTask) -> Response:
        stage = self._stage(task)
        data: dict[str, Any] = {
            "taskId": task.id,
            "paramJson": json.dumps(task.request),
            "response": None,
            "errorCode": None,
            "errorMessage": "",
            "createTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(task.extra["created_ms"] / 1000)),
        }
        if isinstance(stage, int):
            data["successFlag"] = 0
        elif stage == "success":
            url = self._outputs(task)[0]
            data.update(successFlag=1, response={"originImageUrl": url, "resultImageUrl": url})
        elif stage == "content_policy":
            data.update(successFlag=2, errorCode=400, errorMessage=self._failure_text(task, "flux"))
        else:
            data.update(successFlag=3, errorCode=501, errorMessage=task.fail_message)
        return ok(data)

    async def flux_record(self, request: Request) -> Response:
        return await self._poll(request, "flux", self._flux_view)

    def _flux_callback(self, task: FakeTask) -> dict[str, Any]:
        if task.outcome == "success":
            url = self._outputs(task)[0]
            info = {"originImageUrl": url, "resultImageUrl": url}
            return {
                "code": 200,
                "msg": "BFL image generated successfully",
                "data": {"taskId": task.id, "info": info},
            }
        code = 400 if task.outcome == "content_policy" else 501
        info = {"originImageUrl": "", "resultImageUrl": ""}
        return {
            "code": code,
            "msg": self._failure_text(task, "flux"),
            "data": {"taskId": task.id, "info": info},
        }

    # --- Midjourney ----------------------------------------------------------------------------

    async def mj_create(self, request: Request) -> Response:
        front = await self._front(request, "create")
        if front is not None:
            return front
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        problem = contract.violation("", contract.MIDJOURNEY, body)
        task_type = body.get("taskType")
        if (
            problem is None
            and task_type != "mj_txt2img"
            and not (body.get("fileUrls") or body.get("fileUrl"))
        ):
            problem = f"fileUrls is required for {task_type}"
        if problem is not None:
            return envelope(422, problem)
        unreachable = self._unreachable(contract.image_urls_in(contract.MIDJOURNEY, body))
        if unreachable is not None:
            return unreachable
        video = task_type in ("mj_video", "mj_video_hd")
        count = int(body.get("videoBatchSize", 1)) if video else 4
        if video:
            credits = (45.0 if task_type == "mj_video_hd" else 15.0) * count
        else:
            credits = {"relaxed": 3.0, "fast": 8.0, "turbo": 16.0}[str(body.get("speed", "fast"))]
        task = self._start_task("mj", body, ext="mp4" if video else "png", count=count, credits=credits)
        if isinstance(task, Response):
            return task
        return ok({"taskId": task.id})

    def _mj_view(self, task: FakeTask) -> Response:
        stage = self._stage(task)
        data: dict[str, Any] = {
            "taskId": task.id,
            "taskType": task.request.get("taskType"),
            "paramJson": json.dumps(task.request),
            "resultInfoJson": None,
            "errorCode": None,
            "errorMessage": None,
            **self._times(task),
        }
        if isinstance(stage, int):
            data["successFlag"] = 0
        elif stage == "success":
            data.update(
                successFlag=1, resultInfoJson={"resultUrls": [{"resultUrl": u} for u in self._outputs(task)]}
            )
        elif stage == "content_policy":
            data.update(successFlag=2, errorCode=400, errorMessage=self._failure_text(task, "mj"))
        else:
            data.update(successFlag=3, errorCode=500, errorMessage=task.fail_message)
        return ok(data)

    async def mj_record(self, request: Request) -> Response:
        return await self._poll(request, "mj", self._mj_view)

    def _mj_callback(self, task: FakeTask) -> dict[str, Any]:
        data = {"taskId": task.id, "promptJson": json.dumps(task.request), "resultUrls": []}
        if task.outcome == "success":
            data["resultUrls"] = self._outputs(task)
            return {"code": 200, "msg": "success", "data": data}
        code = 400 if task.outcome == "content_policy" else 500
        return {"code": code, "msg": self._failure_text(task, "mj"), "data": data}

    # --- Veo -----------------------------------------------------------------------------------

    async def veo_create(self, request: Request) -> Response:
        front = await self._front(request, "create")
        if front is not None:
            return front
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        problem = contract.violation("", contract.VEO, body) or self._veo_mode_problem(body)
        if problem is not None:
            return envelope(422, problem)
        unreachable = self._unreachable(contract.image_urls_in(contract.VEO, body))
        if unreachable is not None:
            return unreachable
        credits = {"veo3": 250.0, "veo3_fast": 60.0, "veo3_lite": 30.0}[str(body.get("model", "veo3_fast"))]
        task = self._start_task(
            "veo", body, ext="mp4", count=1, credits=credits, task_id=f"veo_task_{secrets.token_hex(8)}"
        )
        if isinstance(task, Response):
            return task
        return ok({"taskId": task.id})

    @staticmethod
    def _veo_mode_problem(body: Mapping[str, Any]) -> str | None:
        images = len(body.get("imageUrls") or [])
        mode = body.get("generationType")
        if mode == "TEXT_2_VIDEO" and images:
            return "generationType TEXT_2_VIDEO takes no imageUrls"
        if mode == "FIRST_AND_LAST_FRAMES_2_VIDEO" and not 1 <= images <= 2:
            return "generationType FIRST_AND_LAST_FRAMES_2_VIDEO needs 1 or 2 imageUrls"
        if mode == "REFERENCE_2_VIDEO":
            if not 1 <= images <= 3:
                return "generationType REFERENCE_2_VIDEO needs 1 to 3 imageUrls"
            if body.get("model", "veo3_fast") == "veo3" or body.get("duration", 8) != 8:
                return "REFERENCE_2_VIDEO is only available for veo3_fast / veo3_lite at 8 seconds"
        if mode is None and images > 2:
            return "more than 2 imageUrls need generationType REFERENCE_2_VIDEO"
        return None

    async def veo_extend(self, request: Request) -> Response:
        front = await self._front(request, "create")
        if front is not None:
            return front
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        problem = contract.violation("", contract.VEO_EXTEND, body)
        if problem is not None:
            return envelope(422, problem)
        parent = self.tasks.get(str(body["taskId"]))
        if parent is None or parent.kind != "veo":
            return envelope(422, "taskId does not name a video generated by the Veo API")
        if not parent.finished() or parent.outcome != "success":
            return envelope(422, "the original Veo task has not succeeded")
        credits = {"fast": 60.0, "quality": 250.0, "lite": 30.0}[str(body.get("model", "fast"))]
        task = self._start_task(
            "veo",
            body,
            ext="mp4",
            count=1,
            credits=credits,
            task_id=f"veo_task_{secrets.token_hex(8)}",
            parent=parent.id,
        )
        if isinstance(task, Response):
            return task
        return ok({"taskId": task.id})

    def _veo_urls(self, task: FakeTask) -> Any:
        urls = self._outputs(task)
        return json.dumps(urls) if self.veo_urls_as_string else urls

    def _veo_info(self, task: FakeTask) -> dict[str, Any]:
        info: dict[str, Any] = {
            "resultUrls": self._veo_urls(task),
            "originUrls": self._outputs(task),
            "resolution": str(task.request.get("resolution", "720p")),
        }
        if task.extra.get("parent"):
            info["fullResultUrls"] = [self.media_url("mp4", f"{task.id}_full")]
        return info

    def _veo_view(self, task: FakeTask) -> Response:
        stage = self._stage(task)
        data: dict[str, Any] = {
            "taskId": task.id,
            "paramJson": json.dumps(task.request),
            "response": None,
            "errorCode": None,
            "errorMessage": "",
            "fallbackFlag": False,
            **self._times(task),
        }
        if isinstance(stage, int):
            data["successFlag"] = 0
        elif stage == "success":
            data.update(successFlag=1, response={"taskId": task.id, **self._veo_info(task)})
        elif stage == "content_policy":
            data.update(successFlag=2, errorCode=400, errorMessage=self._failure_text(task, "veo"))
        else:
            data.update(successFlag=3, errorCode=501, errorMessage=task.fail_message)
        return ok(data)

    async def veo_record(self, request: Request) -> Response:
        return await self._poll(request, "veo", self._veo_view)

    def _veo_callback(self, task: FakeTask) -> dict[str, Any]:
        if task.outcome == "success":
            data = {
                "taskId": task.id,
                "promptJson": json.dumps(task.request),
                "info": self._veo_info(task),
                "fallbackFlag": False,
            }
            return {"code": 200, "msg": "Veo3.1 video generated successfully.", "data": data}
        code = 400 if task.outcome == "content_policy" else 501
        return {"code": code, "msg": self._failure_text(task, "veo"), "data": {"taskId": task.id}}

    # --- Runway --------------------------------------------------------------------------------

    async def runway_create(self, request: Request) -> Response:
        return await self._runway_start(request, contract.RUNWAY, extend=False)

    async def runway_extend(self, request: Request) -> Response:
        return await self._runway_start(request, contract.RUNWAY_EXTEND, extend=True)

    async def _runway_start(self, request: Request, rules: contract.Rules, *, extend: bool) -> Response:
        front = await self._front(request, "create")
        if front is not None:
            return front
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        problem = contract.violation("", rules, body)
        if problem is None and not extend and body.get("duration") == 10 and body.get("quality") == "1080p":
            problem = "a 10-second video cannot be 1080p"
        if problem is None and not extend and not body.get("imageUrl") and not body.get("aspectRatio"):
            problem = "aspectRatio is required when no imageUrl is given"
        parent: FakeTask | None = None
        if problem is None and extend:
            parent = self.tasks.get(str(body["taskId"]))
            if parent is None or parent.kind != "runway":
                problem = "taskId does not name a Runway video"
        if problem is not None:
            return envelope(422, problem)
        unreachable = self._unreachable(contract.image_urls_in(rules, body))
        if unreachable is not None:
            return unreachable
        heavy = body.get("quality") == "1080p" or body.get("duration") == 10
        task = self._start_task(
            "runway",
            body,
            ext="mp4",
            count=1,
            credits=30.0 if heavy else 12.0,
            task_id=str(uuid.uuid4()),
            parent=parent.id if parent else "",
        )
        if isinstance(task, Response):
            return task
        return ok({"taskId": task.id})

    def _runway_view(self, task: FakeTask) -> Response:
        stage = self._stage(task)
        data: dict[str, Any] = {
            "taskId": task.id,
            "parentTaskId": task.extra.get("parent", ""),
            "generateParam": {
                "prompt": task.request.get("prompt", ""),
                "imageUrl": task.request.get("imageUrl", ""),
                "expandPrompt": False,
            },
            "generateTime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(task.extra["created_ms"] / 1000)),
            "videoInfo": None,
            "failCode": None,
            "failMsg": "",
            "expireFlag": 0,
        }
        if isinstance(stage, int):
            data["state"] = RUNNING_WORDS["runway"][stage]
        elif stage == "success":
            data.update(
                state="success",
                videoInfo={
                    "videoId": task.id.replace("-", ""),
                    "taskId": task.id,
                    "videoUrl": self._outputs(task)[0],
                    "imageUrl": self.media_url("png", f"{task.id}_cover"),
                },
            )
        else:
            data.update(
                state="fail",
                failCode=400 if stage == "content_policy" else 500,
                failMsg=self._failure_text(task, "runway"),
            )
        return ok(data)

    async def runway_record(self, request: Request) -> Response:
        return await self._poll(request, "runway", self._runway_view)

    def _runway_callback(self, task: FakeTask) -> dict[str, Any]:
        if task.outcome == "success":
            data = {
                "task_id": task.id,
                "video_id": task.id.replace("-", ""),
                "video_url": self._outputs(task)[0],
                "image_url": self.media_url("png", f"{task.id}_cover"),
            }
            return {"code": 200, "msg": "All generated successfully.", "data": data}
        code = 400 if task.outcome == "content_policy" else 500
        return {"code": code, "msg": self._failure_text(task, "runway"), "data": {"task_id": task.id}}

    # --- account and files ---------------------------------------------------------------------

    async def credit(self, request: Request) -> Response:
        front = await self._front(request, "any")
        if front is not None:
            return front
        for i, fault in enumerate(self.faults.queued):
            if fault.kind == "low_balance":
                self.faults.queued.pop(i)
                return ok(2)
        return ok(int(self.balance))

    async def _upload_front(self, request: Request) -> Response | None:
        guarded = await self.guard("any")
        if guarded is not None:
            return guarded
        if not self.check_bearer(request):
            return upload_error(401, "Authentication failed: Invalid API Key", 401)
        return self._take_error("any")

    def _stored(self, data: bytes, upload_path: str, file_name: str | None) -> Response:
        mime, ext = sniff(data)
        name = file_name or f"{uuid.uuid4().hex}.{ext}"
        path = f"{upload_path.strip('/')}/{name}"
        self.uploads[path] = (data, mime)  # the same name overwrites, as at Kie
        return JSONResponse(
            {
                "success": True,
                "code": 200,
                "msg": "File uploaded successfully",
                "data": {
                    "fileName": name,
                    "filePath": path,
                    "downloadUrl": f"{self.base_url}/uploads/{path}",
                    "fileSize": len(data),
                    "mimeType": mime,
                    "uploadedAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                },
            }
        )

    async def upload_base64(self, request: Request) -> Response:
        front = await self._upload_front(request)
        if front is not None:
            return front
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        for name in ("base64Data", "uploadPath"):
            if not isinstance(body.get(name), str) or not body[name]:
                return upload_error(400, f"Missing required parameter: {name}", 400)
        payload = str(body["base64Data"])
        if payload.startswith("data:"):
            payload = payload.partition(",")[2]
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return upload_error(400, "Base64 decoding failed: the data is not valid base64", 400)
        return self._stored(data, str(body["uploadPath"]), body.get("fileName"))

    async def upload_url(self, request: Request) -> Response:
        front = await self._upload_front(request)
        if front is not None:
            return front
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        for name in ("fileUrl", "uploadPath"):
            if not isinstance(body.get(name), str) or not body[name]:
                return upload_error(400, f"Missing required parameter: {name}", 400)
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                fetched = await client.get(str(body["fileUrl"]))
        except httpx.HTTPError:
            return upload_error(400, "Failed to download the file from fileUrl", 400)
        if fetched.status_code != 200:
            return upload_error(400, f"Downloading fileUrl answered HTTP {fetched.status_code}", 400)
        return self._stored(fetched.content, str(body["uploadPath"]), body.get("fileName"))

    async def upload_stream(self, request: Request) -> Response:
        front = await self._upload_front(request)
        if front is not None:
            return front
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return upload_error(400, "Request must be multipart/form-data", 400)
        raw = f"Content-Type: {content_type}\r\n\r\n".encode() + await request.body()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        parts: dict[str, bytes] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                parts[name] = payload
        if "file" not in parts:
            return upload_error(400, "Missing required parameter: file", 400)
        if not parts.get("uploadPath"):
            return upload_error(400, "Missing required parameter: uploadPath", 400)
        file_name = parts["fileName"].decode() if parts.get("fileName") else None
        return self._stored(parts["file"], parts["uploadPath"].decode(), file_name)

    async def serve_upload(self, request: Request) -> Response:
        stored = self.uploads.get(request.path_params["path"])
        if stored is None:
            return Response(status_code=404)
        return Response(stored[0], media_type=stored[1])
