"""Fake Replicate predictions API: official-model and versioned creates, `Prefer: wait`, status words
starting → processing → succeeded | failed | canceled, tqdm progress in `logs`, problem+json
errors, and Standard-Webhooks-signed `webhook` deliveries."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aigen.simulator.base import FakeProvider, FakeTask, Fault
from aigen.simulator.stages import advance, stage_of, standard_signature_headers

RATIOS = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]
FORMATS = ["webp", "jpg", "png"]
NSFW_MESSAGE = "NSFW content detected. Try running it again, or try a different prompt."

# Input schema per official model: field → ("str"|"bool"|"enum"|"int"|"num", …).
MODELS: dict[str, dict[str, Any]] = {
    "black-forest-labs/flux-schnell": {
        "fields": {
            "prompt": ("str",),
            "aspect_ratio": ("enum", RATIOS),
            "num_outputs": ("int", 1, 4),
            "num_inference_steps": ("int", 1, 4),
            "seed": ("int", None, None),
            "output_format": ("enum", FORMATS),
            "output_quality": ("int", 0, 100),
            "disable_safety_checker": ("bool",),
            "go_fast": ("bool",),
            "megapixels": ("enum", ["1", "0.25"]),
        },
        "required": ["prompt"],
        "output": "list",
        "ext": "png",
        "price": 0.003,
    },
    "black-forest-labs/flux-dev": {
        "fields": {
            "prompt": ("str",),
            "image": ("str",),
            "prompt_strength": ("num", 0, 1),
            "aspect_ratio": ("enum", RATIOS),
            "num_outputs": ("int", 1, 4),
            "num_inference_steps": ("int", 1, 50),
            "guidance": ("num", 0, 10),
            "seed": ("int", None, None),
            "output_format": ("enum", FORMATS),
            "output_quality": ("int", 0, 100),
            "disable_safety_checker": ("bool",),
            "go_fast": ("bool",),
            "megapixels": ("enum", ["1", "0.25"]),
        },
        "required": ["prompt"],
        "output": "list",
        "ext": "png",
        "price": 0.025,
    },
    "black-forest-labs/flux-1.1-pro": {
        "fields": {
            "prompt": ("str",),
            "image_prompt": ("str",),
            "aspect_ratio": ("enum", [*RATIOS, "custom"]),
            "width": ("int", 256, 1440),
            "height": ("int", 256, 1440),
            "safety_tolerance": ("int", 1, 6),
            "seed": ("int", None, None),
            "prompt_upsampling": ("bool",),
            "output_format": ("enum", FORMATS),
            "output_quality": ("int", 0, 100),
        },
        "required": ["prompt"],
        "output": "single",
        "ext": "png",
        "price": 0.04,
    },
    "minimax/video-01": {
        "fields": {
            "prompt": ("str",),
            "first_frame_image": ("str",),
            "subject_reference": ("str",),
            "prompt_optimizer": ("bool",),
        },
        "required": ["prompt"],
        "output": "single",
        "ext": "mp4",
        "price": 0.5,
    },
}


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"title": title, "detail": detail, "status": status, **extra},
        status_code=status,
        media_type="application/problem+json",
    )


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def invalid_fields(schema: dict[str, Any], data: Any) -> list[dict[str, str]]:
    if not isinstance(data, dict):
        return [{"type": "type", "field": "input", "description": "input must be an object"}]
    problems: list[dict[str, str]] = []
    for name in schema["required"]:
        if name not in data:
            problems.append({"type": "required", "field": "input", "description": f"{name} is required"})
    for name, value in data.items():
        spec = schema["fields"].get(name)
        if spec is None:
            continue  # unknown inputs are ignored, as the real API does
        kind = spec[0]
        where = f"input.{name}"
        if kind == "str" and not isinstance(value, str):
            problems.append(
                {"type": "string_type", "field": where, "description": "Invalid type. Expected: string"}
            )
        elif kind == "bool" and not isinstance(value, bool):
            problems.append(
                {"type": "bool_type", "field": where, "description": "Invalid type. Expected: boolean"}
            )
        elif kind == "enum" and value not in spec[1]:
            allowed = ", ".join(f'"{v}"' for v in spec[1])
            problems.append(
                {"type": "enum", "field": where, "description": f"{name} must be one of: {allowed}"}
            )
        elif kind in ("int", "num"):
            ok_type = isinstance(value, int) if kind == "int" else isinstance(value, int | float)
            if isinstance(value, bool) or not ok_type:
                problems.append(
                    {
                        "type": "number_type",
                        "field": where,
                        "description": f"Invalid type. Expected: {'integer' if kind == 'int' else 'number'}",
                    }
                )
            elif spec[1] is not None and value < spec[1]:
                problems.append(
                    {
                        "type": "greater_than_equal",
                        "field": where,
                        "description": f"Must be greater than or equal to {spec[1]}",
                    }
                )
            elif spec[2] is not None and value > spec[2]:
                problems.append(
                    {
                        "type": "less_than_equal",
                        "field": where,
                        "description": f"Must be less than or equal to {spec[2]}",
                    }
                )
    return problems


class ReplicateFake(FakeProvider):
    slug = "replicate"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.versions: dict[str, str] = {
            "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637": "black-forest-labs/flux-dev"
        }

    def provider_routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/models/{owner}/{name}/predictions", self.create_official, methods=["POST"]),
            Route("/v1/predictions", self.create_versioned, methods=["POST"]),
            Route("/v1/predictions/{id}", self.get_prediction, methods=["GET"]),
            Route("/v1/predictions/{id}/cancel", self.cancel, methods=["POST"]),
            Route("/v1/account", self.account, methods=["GET"]),
            Route("/v1/webhooks/default/secret", self.webhook_secret, methods=["GET"]),
        ]

    async def fault_response(self, fault: Fault) -> Response | None:
        if fault.kind == "rate_limit":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            headers["ratelimit-remaining"] = "0"
            return JSONResponse(
                {"detail": "Request was throttled. Your rate limit resets in ~30s.", "status": 429},
                status_code=429,
                headers=headers,
            )
        if fault.kind == "server_error":
            return problem(500, "Internal Server Error", "Something went wrong on our end.")
        if fault.kind == "auth":
            return self.unauthenticated()
        return await super().fault_response(fault)

    @staticmethod
    def unauthenticated() -> Response:
        return problem(401, "Unauthenticated", "You did not pass a valid authentication token")

    # --- creates -------------------------------------------------------------------------------

    async def create_official(self, request: Request) -> Response:
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        return await self._create(request, model, version=None)

    async def create_versioned(self, request: Request) -> Response:
        if not self.check_bearer(request):
            return self.unauthenticated()
        body = await self._json(request)
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str) or version not in self.versions:
            return problem(
                422,
                "Invalid version or not permitted",
                "The specified version does not exist (or perhaps you don't have permission to use it?)",
            )
        return await self._create(request, self.versions[version], version=version, body=body)

    async def _create(
        self, request: Request, model: str, *, version: str | None, body: Any = None
    ) -> Response:
        if not self.check_bearer(request):
            return self.unauthenticated()
        task_fault = self.take_task_fault()
        if (fault := await self.guard("create")) is not None:
            return fault
        if model not in MODELS:
            return problem(404, "Not found", f"Model {model} not found or is not an official model")
        schema = MODELS[model]
        if body is None:
            body = await self._json(request)
        if not isinstance(body, dict):
            return problem(400, "Bad request", "The request body must be a JSON object")
        problems = invalid_fields(schema, body.get("input"))
        if problems:
            detail = "".join(f"- {p['field']}: {p['description']}\n" for p in problems)
            return problem(422, "Input validation failed", detail, invalid_fields=problems)
        webhook = body.get("webhook")
        if webhook is not None and not (isinstance(webhook, str) and re.match(r"^https?://", webhook)):
            return problem(422, "Invalid webhook", "webhook must be an HTTPS URL")
        count = int(body["input"].get("num_outputs", 1)) if schema["output"] == "list" else 1
        price = schema["price"] * count
        if self.balance < price:
            return problem(
                402,
                "Insufficient credit",
                "You have insufficient credit to run this model. "
                "Go to https://replicate.com/account/billing#billing to purchase credit.",
            )
        self.balance -= price
        task = self.new_task(model, body, callback_url=webhook)
        task.extra.update(
            version=version or f"dp-{task.id[:12]}",
            count=count,
            events=body.get("webhook_events_filter"),
            created=time.time(),
        )
        if task_fault:
            task.outcome = "fail" if task_fault == "fail" else "content_policy"
        await self._honour_wait(request, task)
        if webhook:
            self.schedule_callback(task, self._deliver)
        headers = {"Location": f"{self.base_url}/v1/predictions/{task.id}"}
        if request.headers.get("prefer", "").startswith("wait"):
            headers["Preference-Applied"] = "wait"
        return JSONResponse(self.prediction(task), status_code=201, headers=headers)

    async def _honour_wait(self, request: Request, task: FakeTask) -> None:
        """`Prefer: wait[=N]`: hold the answer while the prediction can finish within N seconds."""
        prefer = request.headers.get("prefer", "")
        match = re.match(r"\s*wait(?:\s*=\s*(\d+))?", prefer)
        if not match:
            return
        limit = float(match.group(1) or 60)
        deadline = time.monotonic() + limit
        # A time-scripted task finishes by the clock; nothing else would wake an event.
        while not task.finished() and task.seconds_to_finish is not None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    # --- reads ---------------------------------------------------------------------------------

    async def get_prediction(self, request: Request) -> Response:
        if not self.check_bearer(request):
            return self.unauthenticated()
        task_id = request.path_params["id"]
        with self.status_check(task_id):
            if (fault := await self.guard("status")) is not None:
                return fault
            task = self.tasks.get(task_id)
            if task is None:
                return problem(404, "Not found", "The requested resource could not be found.")
            if task.extra.get("canceled"):
                return JSONResponse(self.prediction(task))
            advance(task)
            return JSONResponse(self.prediction(task))

    async def cancel(self, request: Request) -> Response:
        if not self.check_bearer(request):
            return self.unauthenticated()
        task = self.tasks.get(request.path_params["id"])
        if task is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if not task.finished():
            task.extra["canceled"] = True
        return JSONResponse(self.prediction(task))

    async def account(self, request: Request) -> Response:
        if not self.check_bearer(request):
            return self.unauthenticated()
        if (fault := await self.guard("any")) is not None:
            return fault
        return JSONResponse(
            {"type": "organization", "username": "aigen", "name": "aigen", "github_url": None}
        )

    async def webhook_secret(self, request: Request) -> Response:
        if not self.check_bearer(request):
            return self.unauthenticated()
        return JSONResponse({"key": self.callback_secret or ""})

    # --- the prediction object -----------------------------------------------------------------

    def prediction(self, task: FakeTask) -> dict[str, Any]:
        schema = MODELS[task.kind]
        created = task.extra["created"]
        stage = stage_of(task)
        status, output, error, logs = "starting", None, None, ""
        started = completed = None
        if task.extra.get("canceled"):
            status = "canceled"
        elif stage == "running":
            status, started = "processing", created + 0.1
            steps = 4
            done = max(1, min(steps - 1, round(task.progress() * steps)))
            pct = done * 100 // steps
            bar = "█" * (pct // 10) + " " * (10 - pct // 10)
            logs = f"Using seed: 42\n{pct:3d}%|{bar}| {done}/{steps} [00:01<00:01, 2.00it/s]\n"
        elif stage == "done":
            started, completed = created + 0.1, created + 1.0
            if task.outcome == "success":
                status = "succeeded"
                urls = [self.media_url(schema["ext"], f"{task.id}-{i}") for i in range(task.extra["count"])]
                output = urls if schema["output"] == "list" else urls[0]
                logs = "Using seed: 42\n100%|██████████| 4/4 [00:02<00:00, 2.00it/s]\n"
            else:
                status = "failed"
                error = NSFW_MESSAGE if task.outcome == "content_policy" else task.fail_message
        metrics: dict[str, Any] = {}
        if status == "succeeded":
            metrics = {"predict_time": 0.9, "total_time": 1.0}
            if schema["ext"] == "png":
                metrics["image_count"] = task.extra["count"]
        return {
            "id": task.id,
            "model": task.kind,
            "version": task.extra["version"],
            "status": status,
            "input": task.request.get("input"),
            "output": output,
            "logs": logs,
            "error": error,
            "metrics": metrics,
            "data_removed": False,
            "created_at": _iso(created),
            "started_at": _iso(started),
            "completed_at": _iso(completed),
            "urls": {
                "get": f"{self.base_url}/v1/predictions/{task.id}",
                "cancel": f"{self.base_url}/v1/predictions/{task.id}/cancel",
            },
        }

    async def _deliver(self, task: FakeTask) -> None:
        assert task.callback_url is not None
        body = json.dumps(self.prediction(task)).encode()
        headers = standard_signature_headers(self.callback_secret, body) if self.callback_secret else {}
        await self.send_callback(task.callback_url, body, headers)

    @staticmethod
    async def _json(request: Request) -> Any:
        try:
            return json.loads(await request.body() or b"null")
        except ValueError:
            return None
