"""Replicate predictions: one adapter for every model run through `/v1/.../predictions`.

Which model runs is data: `model` ("owner/name", official-model route) or `version` (a version
hash, `/v1/predictions`), optionally chosen by a variant parameter from `variants`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import httpx

from aigen.providers.base import BaseAdapter, HttpReply
from aigen.providers.health import probe
from aigen.providers.inputs import ImageLimits, checked_images
from aigen.providers.mapping import map_parameters
from aigen.providers.types import (
    AdapterError,
    AdapterResult,
    CallbackRequest,
    ErrorCode,
    GenerationRequest,
    HealthResult,
    ResultItem,
)
from aigen.providers.webhooks import verify_standard

# The last tqdm line in `logs`, as Replicate's own client reads progress.
_TQDM_RE = re.compile(r"^\s*(\d+)%\s*\|.+?\|\s*(\d+)/(\d+)", re.MULTILINE)
# Failure texts of the models' safety checkers.
_SAFETY_RE = re.compile(r"nsfw|safety (checker|filter|system)|flagged as sensitive", re.IGNORECASE)


def progress_from_logs(logs: Any) -> float | None:
    if not isinstance(logs, str):
        return None
    matches = _TQDM_RE.findall(logs)
    if not matches:
        return None
    _, current, total = matches[-1]
    return int(current) / int(total) if int(total) else None


class ReplicatePredictionAdapter(BaseAdapter):
    default_images = ImageLimits(max=1)

    # --- request building ----------------------------------------------------------------------

    def _variant(self, parameters: Mapping[str, Any]) -> Mapping[str, Any]:
        """Per-variant overrides (model path, image field, fields the variant lacks)."""
        name_field = self.setting("variant_parameter")
        variants = self.setting("variants") or {}
        if name_field and isinstance(variants, Mapping):
            chosen = variants.get(parameters.get(name_field))
            if isinstance(chosen, Mapping):
                return chosen
        return {}

    def _route(self, variant: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        version = variant.get("version") or self.setting("version")
        if version:
            return "/v1/predictions", {"version": version}
        model = variant.get("model") or self.setting("model")
        return f"/v1/models/{model}/predictions", {}

    def build_input(
        self, request: GenerationRequest, images: list[str], variant: Mapping[str, Any]
    ) -> dict[str, Any]:
        skip = {*variant.get("drop", ()), self.setting("variant_parameter") or ""}
        body = map_parameters(request.parameters, self.setting("field_map"), skip=skip)
        outputs = self.setting("outputs_parameter", "num_outputs")
        if outputs and outputs not in skip and outputs not in body:
            body[outputs] = request.number_of_outputs
        if request.prompt:
            body["prompt"] = request.prompt
        image_field = variant.get("image_field", self.setting("image_field", "image"))
        if images:
            body[image_field] = images[0]
        return body

    # --- the contract --------------------------------------------------------------------------

    async def dispatch(self, request: GenerationRequest) -> AdapterResult:
        if err := self.missing_key_error():
            return AdapterResult.failure(err)
        limits = ImageLimits.from_setting(self.setting("input_images"), self.default_images)
        checked = checked_images(request.input_images, limits)
        if isinstance(checked, AdapterError):
            return AdapterResult.failure(checked)
        # Replicate takes a URL or a data URI wherever a file input is expected.
        images = [img.data_url() if img.is_data else str(img.url) for img in checked]
        variant = self._variant(request.parameters)
        path, body = self._route(variant)
        body["input"] = self.build_input(request, images, variant)
        if request.callback_url:
            body["webhook"] = request.callback_url
            body["webhook_events_filter"] = ["completed"]
        headers: dict[str, str] = {}
        timeout: httpx.Timeout | None = None
        wait = int(self.setting("prefer_wait", 0) or 0)
        if wait > 0:
            # The server holds the request up to `wait` seconds: read a little longer than that.
            headers["Prefer"] = f"wait={wait}"
            timeout = httpx.Timeout(wait + 15.0, connect=10.0)
        reply = await self.request("POST", path, json_body=body, headers=headers, timeout=timeout)
        return self._prediction_reply(reply)

    async def check_status(self, provider_task_id: str) -> AdapterResult:
        if err := self.missing_key_error():
            return AdapterResult.failure(err, provider_task_id=provider_task_id)
        reply = await self.request("GET", f"/v1/predictions/{provider_task_id}")
        result = self._prediction_reply(reply)
        if result.error is not None and result.provider_task_id is None:
            return dataclasses.replace(result, provider_task_id=provider_task_id)
        return result

    def wants_callback(self) -> bool:
        return True

    def parse_callback(self, callback: CallbackRequest) -> AdapterResult:
        secret = self.setting("webhook_secret")
        if secret and not verify_standard(callback.headers, callback.body, str(secret)):
            return AdapterResult.failure(
                AdapterError(
                    ErrorCode.CALLBACK_REJECTED,
                    "replicate callback signature missing or invalid",
                    retryable=False,
                )
            )
        reply = HttpReply(200, httpx.Headers(), callback.body)
        return self._prediction_reply(reply)

    async def health(self) -> HealthResult:
        checked = await probe(self, "/v1/account", refusal=lambda reply: self.error_of(reply).message)
        if isinstance(checked, HealthResult):
            return checked
        account = self.json_of(checked.reply)
        name = account.get("username") if isinstance(account, dict) else None
        return checked.healthy(f"account {name or '?'} reachable")

    # --- replies -------------------------------------------------------------------------------

    def _prediction_reply(self, reply: HttpReply | AdapterError) -> AdapterResult:
        if isinstance(reply, AdapterError):
            return AdapterResult.failure(reply)
        if reply.status not in (200, 201, 202):
            return AdapterResult.failure(self.error_of(reply))
        prediction = self.json_of(reply)
        if isinstance(prediction, AdapterError):
            return AdapterResult.failure(prediction)
        return self.prediction_result(prediction, reply)

    def prediction_result(self, prediction: Any, reply: HttpReply) -> AdapterResult:
        if not isinstance(prediction, dict) or not isinstance(prediction.get("id"), str):
            return AdapterResult.failure(self.bad_response(reply, "prediction without an id"))
        task_id: str = prediction["id"]
        status = prediction.get("status")
        if status in ("starting", "processing"):
            return AdapterResult.processing(
                task_id, progress_from_logs(prediction.get("logs")), provider_state=status
            )
        if status == "succeeded":
            urls = self._output_urls(prediction.get("output"))
            if not urls:
                return AdapterResult.failure(
                    self.bad_response(reply, "succeeded without output"), provider_task_id=task_id
                )
            extra = {"metrics": prediction["metrics"]} if isinstance(prediction.get("metrics"), dict) else {}
            items = [ResultItem(self.model.output_type, url=u, extra=extra) for u in urls]
            return AdapterResult.success(items, provider_task_id=task_id, provider_state=status)
        if status == "failed":
            message = str(prediction.get("error") or "prediction failed")
            code = ErrorCode.CONTENT_POLICY if _SAFETY_RE.search(message) else ErrorCode.GENERATION_FAILED
            return AdapterResult.failure(
                AdapterError(code, f"replicate: {message}", retryable=False, provider_code="failed"),
                provider_task_id=task_id,
                provider_state=status,
            )
        if status == "canceled":
            return AdapterResult.failure(
                AdapterError(ErrorCode.CANCELLED, "replicate: prediction was canceled", retryable=False),
                provider_task_id=task_id,
                provider_state=status,
            )
        return AdapterResult.failure(
            self.bad_response(reply, f"unknown status {status!r}"), provider_task_id=task_id
        )

    @staticmethod
    def _output_urls(output: Any) -> list[str]:
        # Models answer a list of URLs, a single URL, or (rarely) a list of lists.
        if isinstance(output, str):
            return [output] if output else []
        if isinstance(output, list):
            flat: list[str] = []
            for item in output:
                flat.extend(ReplicatePredictionAdapter._output_urls(item))
            return flat
        return []

    def error_of(self, reply: HttpReply) -> AdapterError:
        """Problem+json (`{title, detail, status}`) or the plain `{detail}` of a 429."""
        body: Any = None
        try:
            body = reply.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        title = detail = ""
        if isinstance(body, dict):
            title = str(body.get("title") or "")
            detail = str(body.get("detail") or "")
        message = "replicate: " + (": ".join(p for p in (title, detail) if p) or f"HTTP {reply.status}")
        err = self.http_error(reply, message)
        if reply.status == 429 and err.retry_after is None:
            reset = reply.headers.get("ratelimit-reset")
            if reset and reset.replace(".", "", 1).isdigit():
                err = dataclasses.replace(err, retry_after=float(reset))
        return dataclasses.replace(err, provider_code=title or None)


ADAPTERS: dict[str, type[BaseAdapter]] = {
    "ReplicateFluxAdapter": ReplicatePredictionAdapter,
    "ReplicateMinimaxAdapter": ReplicatePredictionAdapter,
}
