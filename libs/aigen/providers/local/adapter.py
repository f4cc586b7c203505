"""The adapter for the local service: the same submit-then-poll shape as a commercial provider."""

from __future__ import annotations

import time
from typing import Any, ClassVar
from urllib.parse import quote

from aigen.providers.base import AuthStyle, BaseAdapter, HttpReply
from aigen.providers.types import (
    AdapterError,
    AdapterResult,
    ErrorCode,
    GenerationRequest,
    HealthResult,
    OutputType,
    ResultItem,
)

# The service's refusal codes that mean more than their HTTP status says.
REFUSAL_CODES = {
    "model_unavailable": ErrorCode.UNSUPPORTED,
    "invalid_input_image": ErrorCode.INVALID_INPUT_IMAGE,
    "unknown_model": ErrorCode.UNSUPPORTED,
}
RUNNING_STATES = ("queued", "running")


def output_type_of(content_type: str, fallback: OutputType) -> OutputType:
    kind = content_type.split("/", 1)[0]
    return {"image": OutputType.IMAGE, "video": OutputType.VIDEO, "audio": OutputType.AUDIO}.get(
        kind, fallback
    )


class LocalAdapter(BaseAdapter):
    """Image, speech and video made on this machine by the local service; no key, no cost."""

    auth_style: ClassVar[AuthStyle] = AuthStyle.NONE

    @property
    def service_model(self) -> str:
        return str(self.setting("model", self.model.slug))

    def refusal(self, reply: HttpReply) -> AdapterError:
        """A 4xx/5xx reply as an error carrying the service's own message and code."""
        body = self.json_of(reply)
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return self.http_error(reply)
        generic = self.http_error(reply, error["message"])
        code = str(error.get("code") or "")
        if code in REFUSAL_CODES:
            return AdapterError(
                REFUSAL_CODES[code],
                error["message"],
                retryable=False,
                http_status=reply.status,
                provider_code=code,
                snippet=generic.snippet,
            )
        return AdapterError(
            generic.code,
            generic.message,
            generic.retryable,
            retry_after=generic.retry_after,
            http_status=reply.status,
            provider_code=code or None,
            snippet=generic.snippet,
        )

    async def dispatch(self, request: GenerationRequest) -> AdapterResult:
        body: dict[str, Any] = {
            "model": self.service_model,
            "prompt": request.prompt,
            "input_images": list(request.input_images),
            "number_of_outputs": request.number_of_outputs,
            "parameters": dict(request.parameters),
        }
        if request.reference:
            # Our task id: sent twice (a retry after a crash), it names the job already made.
            body["reference"] = request.reference
        reply = await self.request("POST", "/v1/jobs", json_body=body)
        if isinstance(reply, AdapterError):
            return AdapterResult.failure(reply)
        if reply.status not in (200, 201):
            return AdapterResult.failure(self.refusal(reply))
        job = self.json_of(reply)
        if isinstance(job, AdapterError):
            return AdapterResult.failure(job)
        if not isinstance(job, dict) or not isinstance(job.get("id"), str):
            return AdapterResult.failure(self.bad_response(reply, "no job id"))
        return self.job_result(job, reply)

    async def check_status(self, provider_task_id: str) -> AdapterResult:
        reply = await self.request("GET", f"/v1/jobs/{quote(provider_task_id, safe='')}")
        if isinstance(reply, AdapterError):
            return AdapterResult.failure(reply, provider_task_id=provider_task_id)
        if reply.status != 200:
            return AdapterResult.failure(self.refusal(reply), provider_task_id=provider_task_id)
        job = self.json_of(reply)
        if isinstance(job, AdapterError):
            return AdapterResult.failure(job, provider_task_id=provider_task_id)
        if not isinstance(job, dict):
            return AdapterResult.failure(self.bad_response(reply, "job is not an object"))
        return self.job_result({**job, "id": job.get("id", provider_task_id)}, reply)

    def job_result(self, job: dict[str, Any], reply: HttpReply) -> AdapterResult:
        job_id = str(job["id"])
        state = job.get("status")
        if state in RUNNING_STATES:
            progress = job.get("progress")
            value = float(progress) if isinstance(progress, int | float) else None
            return AdapterResult.processing(job_id, value, provider_state=str(state))
        if state == "failed":
            message = job.get("error") or "the local job failed"
            return AdapterResult.failure(
                AdapterError(ErrorCode.GENERATION_FAILED, f"local: {message}", retryable=False),
                provider_task_id=job_id,
                provider_state="failed",
            )
        if state != "succeeded":
            return AdapterResult.failure(
                self.bad_response(reply, f"unknown job status {state!r}"), provider_task_id=job_id
            )
        outputs = job.get("outputs")
        if not isinstance(outputs, list) or not outputs:
            return AdapterResult.failure(
                self.bad_response(reply, "a finished job without outputs"), provider_task_id=job_id
            )
        results = []
        for output in outputs:
            if not isinstance(output, dict) or not isinstance(output.get("url"), str):
                return AdapterResult.failure(
                    self.bad_response(reply, "an output without url"), provider_task_id=job_id
                )
            content_type = str(output.get("content_type") or "")
            extra = {k: v for k, v in output.items() if k not in ("url", "content_type")}
            results.append(
                ResultItem(
                    output_type_of(content_type, self.model.output_type),
                    url=output["url"],
                    content_type=content_type or None,
                    extra=extra,
                )
            )
        return AdapterResult.success(results, provider_task_id=job_id, provider_state="succeeded")

    async def health(self) -> HealthResult:
        started = time.perf_counter()
        reply = await self.request("GET", "/v1/health")
        latency = (time.perf_counter() - started) * 1000
        if isinstance(reply, AdapterError):
            return HealthResult(ok=False, message=reply.message, latency_ms=latency)
        body = self.json_of(reply)
        if reply.status != 200 or not isinstance(body, dict) or not isinstance(body.get("models"), dict):
            return HealthResult(
                ok=False, message=f"local service answered HTTP {reply.status}", latency_ms=latency
            )
        models: dict[str, Any] = body["models"]
        missing = {
            slug: str(info.get("reason"))
            for slug, info in models.items()
            if isinstance(info, dict) and not info.get("available")
        }
        mine = models.get(self.service_model)
        ok = isinstance(mine, dict) and bool(mine.get("available"))
        if not missing:
            message = "all local engines available: " + ", ".join(sorted(models))
        else:
            message = "; ".join(f"{slug} unavailable: {reason}" for slug, reason in sorted(missing.items()))
        return HealthResult(ok=ok, message=message, latency_ms=latency)


ADAPTERS: dict[str, type[BaseAdapter]] = {
    "LocalAdapter": LocalAdapter,
    "LocalImageAdapter": LocalAdapter,
    "LocalTTSAdapter": LocalAdapter,
    "LocalVideoAdapter": LocalAdapter,
}
