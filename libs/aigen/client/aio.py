"""The asynchronous client of the external API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from aigen.client import _calls as calls
from aigen.client.errors import AigenError, ConnectionFailed, WaitTimedOut
from aigen.client.models import Model, Quote, Task, TaskPage, TaskResult, Usage


class AsyncAigenClient:
    """`AsyncAigenClient(base_url, api_key)`; both default to AIGEN_GATEWAY_URL / AIGEN_API_KEY."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = calls.default_url(base_url)
        self.api_key = calls.default_key(api_key)
        headers = {"User-Agent": "aigen-client/1"}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        self._owned = http is None
        self._http = http or httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self._headers = headers
        self._timeout = timeout

    async def __aenter__(self) -> AsyncAigenClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def _send(self, call: calls.Call) -> Any:
        try:
            response = await self._http.request(
                call.method,
                self.base_url + call.path,
                params=call.params or None,
                json=call.json,
                headers={**self._headers, **call.headers},
                timeout=call.timeout or self._timeout,
            )
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"cannot reach the gateway at {self.base_url}: {exc}") from exc
        return calls.parse(response)

    # --- tasks ------------------------------------------------------------------------------------

    async def generate(
        self,
        model: str,
        prompt: str = "",
        *,
        input_images: Sequence[str] = (),
        number_of_outputs: int | None = None,
        parameters: Mapping[str, Any] | None = None,
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
        cancel_after: int | None = None,
        wait: float | None = None,
    ) -> Task:
        """Submit a generation; with `wait`, the answer waits up to that many seconds for the end."""
        call = calls.generate(
            model,
            prompt,
            input_images=input_images,
            number_of_outputs=number_of_outputs,
            parameters=parameters,
            webhook_url=webhook_url,
            idempotency_key=idempotency_key,
            cancel_after=cancel_after,
            wait=wait,
        )
        return Task.from_json(await self._send(call))

    async def get_task(self, task: Task | str, *, wait: float | None = None) -> Task:
        return Task.from_json(await self._send(calls.get_task(calls.task_id_of(task), wait)))

    async def list_tasks(
        self,
        *,
        status: Sequence[str] | None = None,
        model: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> TaskPage:
        return TaskPage.from_json(await self._send(calls.list_tasks(status, model, page_size, page_token)))

    async def cancel_task(self, task: Task | str, *, purge: bool = False) -> Task:
        """Cancel a running task; `purge` also removes it from lists."""
        return Task.from_json(await self._send(calls.cancel_task(calls.task_id_of(task), purge)))

    async def wait_for(self, task: Task | str, *, timeout: float = 600.0, step: float = 60.0) -> Task:
        """The task once it is SUCCESS, FAILED or CANCELLED (long polls of `step` seconds); `timeout`
        bounds the whole wait and raises WaitTimedOut, a domain answer rather than a cancellation."""
        task_id = calls.task_id_of(task)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            current = await self.get_task(task_id, wait=max(0.0, min(step, remaining)) or None)
            if current.terminal:
                return current
            if loop.time() >= deadline:
                raise WaitTimedOut(
                    f"task {task_id} is still {current.status} after {timeout:g}s", code="WAIT_TIMED_OUT"
                )

    async def watch(self, task: Task | str) -> AsyncIterator[Task]:
        """Each state of the task as it changes (server-sent events), ending after the last one."""
        task_id = calls.task_id_of(task)
        url = f"{self.base_url}{calls.BASE}/{task_id}/events"
        try:
            async with self._http.stream(
                "GET", url, headers=self._headers, timeout=httpx.Timeout(self._timeout, read=None)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    calls.parse(response)
                parser = calls.SseParser()
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None and event[0] == "task":
                        yield Task.from_json(json.loads(event[1]))
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"the progress stream of task {task_id} broke: {exc}") from exc

    async def download(
        self,
        result: TaskResult,
        directory: Path,
        *,
        name: str | None = None,
        index: int = 0,
        task_id: str = "result",
    ) -> Path:
        """Save one result under `directory`; returns the file's path."""
        try:
            # Result URLs carry their own signature; the API key is never sent to them (they may be
            # on another host: a CDN, a bucket).
            async with self._http.stream(
                "GET", result.url, headers={"User-Agent": "aigen-client/1"}
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    calls.parse(response)
                path = calls.target_path(
                    directory,
                    name or calls.file_name(task_id, index, result, response.headers.get("content-type")),
                )
                with path.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"downloading {result.url} failed: {exc}") from exc
        return path

    async def download_all(self, task: Task, directory: Path) -> list[Path]:
        return [
            await self.download(r, directory, index=i, task_id=task.id) for i, r in enumerate(task.results)
        ]

    # --- catalog and billing ----------------------------------------------------------------------

    async def list_models(
        self, *, output_type: str | None = None, provider: str | None = None
    ) -> list[Model]:
        body = await self._send(calls.list_models(output_type, provider))
        return [Model.from_json(m) for m in body.get("models", [])]

    async def get_model(self, slug: str) -> Model:
        return Model.from_json(await self._send(calls.get_model(slug)))

    async def quote(
        self,
        model: str,
        prompt: str = "",
        *,
        parameters: Mapping[str, Any] | None = None,
        number_of_outputs: int | None = None,
    ) -> Quote:
        return Quote.from_json(await self._send(calls.quote(model, prompt, parameters, number_of_outputs)))

    async def usage(self, *, group_by: str = "model") -> Usage:
        return Usage.from_json(await self._send(calls.usage(group_by)))


__all__ = ["AigenError", "AsyncAigenClient"]
