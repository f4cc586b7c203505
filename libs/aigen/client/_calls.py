"""The requests of the external API, built once for both clients (sync and async)."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx

from aigen.client.errors import AigenError, from_response
from aigen.client.models import Task, TaskResult

DEFAULT_URL = "http://127.0.0.1:8080"
BASE = "/api/external/ai-generation"


def default_url(url: str | None) -> str:
    return (url or os.environ.get("AIGEN_GATEWAY_URL") or DEFAULT_URL).rstrip("/")


def default_key(key: str | None) -> str | None:
    return key or os.environ.get("AIGEN_API_KEY") or None


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # beyond the client's default, for long waits


def generate(
    model: str,
    prompt: str,
    *,
    input_images: Sequence[str],
    number_of_outputs: int | None,
    parameters: Mapping[str, Any] | None,
    webhook_url: str | None,
    idempotency_key: str | None,
    cancel_after: int | None,
    wait: float | None,
) -> Call:
    body: dict[str, Any] = {"model_slug": model, "prompt": prompt}
    if input_images:
        body["input_images"] = list(input_images)
    if number_of_outputs is not None:
        body["number_of_outputs"] = number_of_outputs
    if parameters:
        body["parameters"] = dict(parameters)
    if webhook_url:
        body["webhook_url"] = webhook_url
    headers: dict[str, str] = {}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    if cancel_after is not None:
        headers["Cancel-After"] = str(cancel_after)
    params = {"wait": wait} if wait else {}
    return Call("POST", BASE, params, body, headers, timeout=(wait or 0) + 30 if wait else None)


def get_task(task_id: str, wait: float | None) -> Call:
    params = {"wait": wait} if wait else {}
    return Call("GET", f"{BASE}/{task_id}", params, timeout=(wait or 0) + 30 if wait else None)


def list_tasks(
    status: Sequence[str] | None, model: str | None, page_size: int, page_token: str | None
) -> Call:
    params: dict[str, Any] = {"page_size": page_size}
    if status:
        params["status"] = list(status)
    if model:
        params["model"] = model
    if page_token:
        params["page_token"] = page_token
    return Call("GET", BASE, params)


def cancel_task(task_id: str, purge: bool) -> Call:
    return Call("DELETE", f"{BASE}/{task_id}", {"purge": "true"} if purge else {})


def list_models(output_type: str | None, provider: str | None) -> Call:
    params = {k: v for k, v in (("output_type", output_type), ("provider", provider)) if v}
    return Call("GET", f"{BASE}/models", params)


def get_model(slug: str) -> Call:
    return Call("GET", f"{BASE}/models/{slug}")


def quote(
    model: str, prompt: str, parameters: Mapping[str, Any] | None, number_of_outputs: int | None
) -> Call:
    body: dict[str, Any] = {"model_slug": model, "prompt": prompt, "parameters": dict(parameters or {})}
    if number_of_outputs is not None:
        body["number_of_outputs"] = number_of_outputs
    return Call("POST", f"{BASE}/quote", json=body)


def usage(group_by: str) -> Call:
    return Call("GET", "/api/external/usage", {"group_by": group_by})


def parse(response: httpx.Response) -> Any:
    """The JSON of a successful answer; the matching AigenError otherwise."""
    if response.status_code >= 400:
        try:
            body: object = response.json()
        except ValueError:
            body = {"detail": response.text[:500] or f"HTTP {response.status_code}"}
        raise from_response(response.status_code, body, response.headers)
    try:
        return response.json()
    except ValueError:
        raise AigenError(
            f"the gateway answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
            code="BAD_RESPONSE",
        ) from None


def task_id_of(task: Task | str) -> str:
    return task.id if isinstance(task, Task) else task


def file_name(task_id: str, index: int, result: TaskResult, content_type: str | None) -> str:
    """`<task id>-<n><ext>`, the extension from the content type, else from the URL."""
    suffix = (
        mimetypes.guess_extension((content_type or result.content_type or "").split(";")[0].strip()) or ""
    )
    if not suffix:
        suffix = PurePosixPath(urlsplit(result.url).path).suffix
    return f"{task_id}-{index}{suffix}"


def target_path(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


class SseParser:
    """Server-sent events, line by line: returns (event, data) when an event is complete."""

    def __init__(self) -> None:
        self.event = ""
        self.data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self.data:
                self.event = ""
                return None
            complete = (self.event or "message", "\n".join(self.data))
            self.event, self.data = "", []
            return complete
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        return None
