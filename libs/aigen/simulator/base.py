"""What every fake provider shares: request recording, fault injection, scripted task progress,
real media files and signed callbacks.

A fake is an ASGI app that follows one provider's documented HTTP contract. Tests assert on what
the fake received (`fake.requests`) and steer it (`fake.faults`, `fake.script`); the same fakes run
as a simulator (`aigen simulate`) for demos and load tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

FaultKind = Literal[
    "rate_limit",  # 429 with Retry-After
    "server_error",  # 500
    "timeout",  # hold the request longer than any sane client timeout
    "malformed",  # 200 with truncated JSON
    "html",  # 200 with an HTML error page
    "auth",  # 401 as if the key were wrong
    "fail",  # the task is accepted, then fails at the provider
    "content_policy",  # refused (at create, or the task fails) for content reasons
    "low_balance",  # balance endpoints report almost nothing left
]
Scope = Literal["create", "status", "any"]


@dataclass
class Fault:
    kind: FaultKind
    scope: Scope = "any"
    retry_after: float | None = 1.0
    hold_seconds: float = 30.0  # for "timeout"


@dataclass
class FaultPlan:
    """Faults to inject, taken in order by the requests they apply to."""

    queued: list[Fault] = field(default_factory=list)
    # Probability that a create request fails with a 500 (for circuit-breaker scenarios).
    create_failure_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def add(self, kind: FaultKind, *, scope: Scope = "any", times: int = 1, **kw: Any) -> None:
        self.queued.extend(Fault(kind, scope, **kw) for _ in range(times))

    def take(self, scope: Scope) -> Fault | None:
        for i, fault in enumerate(self.queued):
            if fault.scope in (scope, "any"):
                return self.queued.pop(i)
        if scope == "create" and self.create_failure_rate and self.rng.random() < self.create_failure_rate:
            return Fault("server_error", "create")
        return None

    def clear(self) -> None:
        self.queued.clear()
        self.create_failure_rate = 0.0


@dataclass
class Script:
    """How fake tasks progress: after `polls_to_finish` status checks (or `seconds_to_finish`)."""

    polls_to_finish: int = 2
    seconds_to_finish: float | None = None
    outcome: Literal["success", "fail", "content_policy"] = "success"
    fail_message: str = "generation failed in the fake"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class FakeTask:
    id: str
    kind: str  # provider-specific: which family / endpoint made it
    request: Any
    created_at: float = field(default_factory=time.monotonic)
    polls: int = 0
    outcome: str = "success"
    fail_message: str = ""
    callback_url: str | None = None
    callback_sent: bool = False
    polls_to_finish: int = 2
    seconds_to_finish: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def finished(self) -> bool:
        if self.seconds_to_finish is not None:
            return time.monotonic() - self.created_at >= self.seconds_to_finish
        return self.polls >= self.polls_to_finish

    def progress(self) -> float:
        if self.finished():
            return 1.0
        if self.seconds_to_finish:
            return min(0.99, (time.monotonic() - self.created_at) / self.seconds_to_finish)
        return min(0.99, self.polls / max(1, self.polls_to_finish))


MEDIA_TYPES = {"png": "image/png", "mp4": "video/mp4", "mp3": "audio/mpeg"}


def media_bytes(ext: str) -> bytes:
    return resources.files("aigen.simulator").joinpath("media", f"sample.{ext}").read_bytes()


class FakeProvider:
    """Base of every fake. Subclasses define `slug` and `provider_routes()`."""

    slug: str = "fake"

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        script: Script | None = None,
        latency: float = 0.0,
        callback_secret: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.script = script or Script()
        self.latency = latency
        self.callback_secret = callback_secret
        self.faults = FaultPlan()
        self.requests: list[Recorded] = []
        self.tasks: dict[str, FakeTask] = {}
        self.base_url = "http://fake.invalid"  # set by whoever serves the app
        self.callbacks_sent: list[tuple[str, int]] = []  # (url, status)
        self.balance: float = 10_000.0
        # Status checks in flight per task id, and the worst overlap seen (poller exclusivity).
        self._in_flight: dict[str, int] = defaultdict(int)
        self.max_overlap: dict[str, int] = defaultdict(int)
        self._ids = itertools.count(1)
        self._app: Starlette | None = None

    # --- for subclasses ------------------------------------------------------------------------

    def provider_routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def new_id(self, prefix: str = "task") -> str:
        return f"{prefix}_{self.slug}_{int(time.time() * 1000)}{next(self._ids):05d}"

    def new_task(self, kind: str, request: Any, *, callback_url: str | None = None, **extra: Any) -> FakeTask:
        task = FakeTask(
            id=self.new_id(),
            kind=kind,
            request=request,
            outcome=self.script.outcome,
            fail_message=self.script.fail_message,
            callback_url=callback_url,
            polls_to_finish=self.script.polls_to_finish,
            seconds_to_finish=self.script.seconds_to_finish,
            extra=dict(extra),
        )
        self.tasks[task.id] = task
        return task

    def media_url(self, ext: str, name: str | None = None) -> str:
        return f"{self.base_url}/files/{name or 'out'}.{ext}"

    def check_bearer(self, request: Request) -> bool:
        return request.headers.get("authorization", "") == f"Bearer {self.api_key}"

    async def guard(self, scope: Scope) -> Response | None:
        """Apply latency and the next matching fault; a response means "answer this instead"."""
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self.faults.take(scope)
        if fault is None:
            return None
        return await self.fault_response(fault)

    async def fault_response(self, fault: Fault) -> Response | None:
        """Default wire form of a fault; providers override for their own error bodies."""
        if fault.kind == "rate_limit":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return JSONResponse({"error": "rate limited"}, status_code=429, headers=headers)
        if fault.kind == "server_error":
            return JSONResponse({"error": "internal error"}, status_code=500)
        if fault.kind == "timeout":
            await asyncio.sleep(fault.hold_seconds)
            return JSONResponse({"error": "late"}, status_code=504)
        if fault.kind == "malformed":
            return Response('{"code": 200, "data": {"taskId": "tru', media_type="application/json")
        if fault.kind == "html":
            return Response("<html><body>502 Bad Gateway</body></html>", media_type="text/html")
        if fault.kind == "auth":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return None  # fail / content_policy / low_balance are task- or endpoint-level, handled by the fake

    def take_task_fault(self) -> str | None:
        """A "fail" or "content_policy" fault queued for the next created task, if any."""
        for i, fault in enumerate(self.faults.queued):
            if fault.kind in ("fail", "content_policy") and fault.scope in ("create", "any"):
                self.faults.queued.pop(i)
                return fault.kind
        return None

    @contextlib.contextmanager
    def status_check(self, task_id: str) -> Any:
        """Wrap a status handler to record overlapping checks of one task."""
        self._in_flight[task_id] += 1
        self.max_overlap[task_id] = max(self.max_overlap[task_id], self._in_flight[task_id])
        try:
            yield
        finally:
            self._in_flight[task_id] -= 1

    async def send_callback(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        async with httpx.AsyncClient(timeout=15) as client:
            try:
                r = await client.post(
                    url, content=body, headers={"Content-Type": "application/json", **headers}
                )
                self.callbacks_sent.append((url, r.status_code))
            except httpx.HTTPError:
                self.callbacks_sent.append((url, 0))

    def schedule_callback(self, task: FakeTask, build: Callable[[FakeTask], Awaitable[None]]) -> None:
        """Send a task's callback once it finishes (time-scripted tasks finish on their own)."""
        if not task.callback_url:
            return

        async def wait_and_send() -> None:
            while not task.finished():
                task.polls += 1 if task.seconds_to_finish is None else 0
                await asyncio.sleep(0.05 if task.seconds_to_finish is None else 0.02)
            if not task.callback_sent:
                task.callback_sent = True
                await build(task)

        asyncio.get_running_loop().create_task(wait_and_send())

    # --- the app -------------------------------------------------------------------------------

    def app(self) -> Starlette:
        if self._app is None:
            routes: list[BaseRoute] = [
                *self.provider_routes(),
                Route("/files/{name}", self._serve_file, methods=["GET", "HEAD"]),
                Route("/__fake__/requests", self._list_requests, methods=["GET"]),
                Route("/__fake__/faults", self._set_faults, methods=["POST", "DELETE"]),
                Route("/__fake__/script", self._set_script, methods=["POST"]),
            ]
            app = Starlette(routes=routes)
            fake = self

            async def record(scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] != "http" or scope["path"].startswith(("/__fake__", "/files/")):
                    await app(scope, receive, send)
                    return
                chunks = []
                more = True
                while more:
                    message = await receive()
                    chunks.append(message.get("body", b""))
                    more = message.get("more_body", False)
                body = b"".join(chunks)
                fake.requests.append(
                    Recorded(
                        method=scope["method"],
                        path=scope["path"],
                        query={
                            k.decode(): v.decode()
                            for k, _, v in (
                                p.partition(b"=") for p in scope.get("query_string", b"").split(b"&") if p
                            )
                        },
                        headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
                        body=body,
                        at=time.time(),
                    )
                )
                replayed = False

                async def replay() -> dict[str, Any]:
                    nonlocal replayed
                    if replayed:
                        message: dict[str, Any] = await receive()
                        return message
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}

                await app(scope, replay, send)

            self._app = app
            self._asgi = record
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.app()
        await self._asgi(scope, receive, send)

    def requests_to(self, path_suffix: str, method: str | None = None) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if r.path.endswith(path_suffix) and (method is None or r.method == method)
        ]

    async def _serve_file(self, request: Request) -> Response:
        name = request.path_params["name"]
        ext = name.rsplit(".", 1)[-1].lower()
        if ext not in MEDIA_TYPES:
            return JSONResponse({"error": "no such file"}, status_code=404)
        return Response(media_bytes(ext), media_type=MEDIA_TYPES[ext])

    async def _list_requests(self, request: Request) -> Response:
        return JSONResponse(
            [
                {
                    "method": r.method,
                    "path": r.path,
                    "query": r.query,
                    "body": r.body.decode("utf-8", "replace"),
                }
                for r in self.requests
            ]
        )

    async def _set_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
            return JSONResponse({"queued": 0})
        spec = await request.json()
        for item in spec.get("faults", []):
            self.faults.add(
                item["kind"],
                scope=item.get("scope", "any"),
                times=int(item.get("times", 1)),
                **({"retry_after": item["retry_after"]} if "retry_after" in item else {}),
            )
        if "create_failure_rate" in spec:
            self.faults.create_failure_rate = float(spec["create_failure_rate"])
        if "balance" in spec:
            self.balance = float(spec["balance"])
        return JSONResponse({"queued": len(self.faults.queued)})

    async def _set_script(self, request: Request) -> Response:
        spec = await request.json()
        for key in ("polls_to_finish", "seconds_to_finish", "outcome", "fail_message"):
            if key in spec:
                setattr(self.script, key, spec[key])
        if "latency" in spec:
            self.latency = float(spec["latency"])
        return JSONResponse({"ok": True})
