"""Pollo AI generations: `POST /generation/{brand}/{model}`, then poll `/generation/{taskId}/status`.

The brand/model path is the `path` setting; which input fields take the images is
`image_fields` (start frame, then end frame). Pollo only takes HTTPS image URLs, so data URLs
are uploaded first through its signed-upload endpoint.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from aigen.providers.base import AuthStyle, BaseAdapter, HttpReply, snippet
from aigen.providers.health import probe
from aigen.providers.images import InputImage
from aigen.providers.inputs import ImageLimits, checked_images
from aigen.providers.mapping import map_parameters
from aigen.providers.types import (
    AdapterError,
    AdapterResult,
    CallbackRequest,
    ErrorCode,
    GenerationRequest,
    HealthResult,
    OutputType,
    ProviderCost,
    ResultItem,
)
from aigen.providers.webhooks import verify_hex_body, verify_standard

MEDIA_TYPES = {"video": OutputType.VIDEO, "image": OutputType.IMAGE, "audio": OutputType.AUDIO}


def unwrap(body: Any) -> Any:
    """`{code, message, data}` envelope or the bare object some answers use."""
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        return body["data"]
    return body


class PolloGenerationAdapter(BaseAdapter):
    auth_style = AuthStyle.X_API_KEY

    def image_limits(self) -> ImageLimits:
        # One image per image field (start frame, end frame): more could not be sent.
        fields = list(self.setting("image_fields") or ["image"])
        default = ImageLimits(max=len(fields), mime_types=("image/png", "image/jpeg"))
        return ImageLimits.from_setting(self.setting("input_images"), default)

    # --- dispatch ------------------------------------------------------------------------------

    async def dispatch(self, request: GenerationRequest) -> AdapterResult:
        if err := self.missing_key_error():
            return AdapterResult.failure(err)
        checked = checked_images(request.input_images, self.image_limits())
        if isinstance(checked, AdapterError):
            return AdapterResult.failure(checked)
        image_urls: list[str] = []
        for image in checked:
            url = await self._hosted_url(image)
            if isinstance(url, AdapterError):
                return AdapterResult.failure(url)
            image_urls.append(url)
        reply = await self.request(
            "POST", f"/generation/{self.setting('path')}", json_body=self.build_body(request, image_urls)
        )
        if isinstance(reply, AdapterError):
            return AdapterResult.failure(reply)
        body = self._envelope(reply)
        if isinstance(body, AdapterError):
            return AdapterResult.failure(body)
        task_id = body.get("taskId") if isinstance(body, dict) else None
        if not isinstance(task_id, str) or not task_id:
            return AdapterResult.failure(self.bad_response(reply, "no taskId"))
        return AdapterResult.processing(task_id, 0.0, provider_state=str(body.get("status") or "waiting"))

    def build_body(self, request: GenerationRequest, image_urls: list[str]) -> dict[str, Any]:
        image_fields = list(self.setting("image_fields") or ["image"])
        # Fields that only exist for text-to-video (aspect ratio follows the image otherwise).
        text_only = set(self.setting("text_only_fields") or []) if image_urls else set()
        payload = map_parameters(request.parameters, self.setting("field_map"), skip=text_only)
        if request.prompt:
            payload["prompt"] = request.prompt
        for field_name, url in zip(image_fields, image_urls, strict=False):
            payload[field_name] = url
        body: dict[str, Any] = {"input": payload}
        if request.callback_url:
            body["webhookUrl"] = request.callback_url
        return body

    async def _hosted_url(self, image: InputImage) -> str | AdapterError:
        if image.url is not None:
            return image.url
        assert image.data is not None
        ext = "jpg" if image.mime_type == "image/jpeg" else "png"
        sign = await self.request(
            "POST",
            "/file/sign",
            json_body={
                "action": "putObject",
                "filename": f"{uuid.uuid4().hex}.{ext}",
                "type": image.mime_type,
            },
        )
        if isinstance(sign, AdapterError):
            return sign
        signed = self._envelope(sign)
        if isinstance(signed, AdapterError):
            return signed
        signed_url = signed.get("signedUrl") if isinstance(signed, dict) else None
        file_url = signed.get("fileUrl") if isinstance(signed, dict) else None
        if not isinstance(signed_url, str) or not isinstance(file_url, str):
            return self.bad_response(sign, "file/sign without signedUrl/fileUrl")
        try:
            # A presigned storage URL: our API key must not travel with it.
            put = await self.http.put(
                signed_url, content=image.data, headers={"Content-Type": image.mime_type or "image/png"}
            )
        except httpx.HTTPError as exc:
            return AdapterError(
                ErrorCode.CONNECTION_FAILED,
                f"pollo: uploading input image {image.index} failed ({type(exc).__name__})",
                retryable=True,
            )
        if put.status_code not in (200, 201, 204):
            return AdapterError(
                ErrorCode.PROVIDER_UNAVAILABLE if put.status_code >= 500 else ErrorCode.PROVIDER_BAD_RESPONSE,
                f"pollo: uploading input image {image.index} answered HTTP {put.status_code}",
                retryable=put.status_code >= 500,
                http_status=put.status_code,
                snippet=snippet(put.content, self.api_key),
            )
        return file_url

    # --- status --------------------------------------------------------------------------------

    async def check_status(self, provider_task_id: str) -> AdapterResult:
        if err := self.missing_key_error():
            return AdapterResult.failure(err, provider_task_id=provider_task_id)
        reply = await self.request("GET", f"/generation/{provider_task_id}/status")
        if isinstance(reply, AdapterError):
            return AdapterResult.failure(reply, provider_task_id=provider_task_id)
        body = self._envelope(reply)
        if isinstance(body, AdapterError):
            return AdapterResult.failure(body, provider_task_id=provider_task_id)
        return self.task_result(body, provider_task_id, reply)

    def task_result(self, body: Any, task_id: str, raw: HttpReply | bytes) -> AdapterResult:
        if not isinstance(body, dict):
            return AdapterResult.failure(
                self.bad_response(raw, "status is not an object"), provider_task_id=task_id
            )
        task_id = str(body.get("taskId") or task_id)
        cost = self._cost(body.get("credit"))
        generations = body.get("generations")
        if not isinstance(generations, list):
            return AdapterResult.failure(self.bad_response(raw, "no generations[]"), provider_task_id=task_id)
        states = [g.get("status") if isinstance(g, dict) else None for g in generations]
        failed = [g for g in generations if isinstance(g, dict) and g.get("status") == "failed"]
        if failed:
            message = str(failed[0].get("failMsg") or "generation failed")
            return AdapterResult.failure(
                AdapterError(
                    ErrorCode.GENERATION_FAILED, f"pollo: {message}", retryable=False, provider_code="failed"
                ),
                provider_task_id=task_id,
                cost=cost,
                provider_state="failed",
            )
        if generations and all(s == "succeed" for s in states):
            items: list[ResultItem] = []
            for g in generations:
                url = g.get("url")
                if not isinstance(url, str) or not url:
                    return AdapterResult.failure(
                        self.bad_response(raw, "succeeded generation without url"), provider_task_id=task_id
                    )
                kind = MEDIA_TYPES.get(str(g.get("mediaType")), self.model.output_type)
                items.append(ResultItem(kind, url=url, extra={"generation_id": g.get("id")}))
            return AdapterResult.success(items, provider_task_id=task_id, cost=cost, provider_state="succeed")
        unknown = [s for s in states if s not in ("waiting", "processing", "succeed")]
        if unknown:
            return AdapterResult.failure(
                self.bad_response(raw, f"unknown generation status {unknown[0]!r}"), provider_task_id=task_id
            )
        done = states.count("succeed")
        running = "processing" in states
        # Pollo has no progress field: only finished generations say anything.
        progress = done / len(states) if done else None
        return AdapterResult.processing(
            task_id, progress, provider_state="processing" if running or done else "waiting"
        )

    @staticmethod
    def _cost(credit: Any) -> ProviderCost | None:
        if isinstance(credit, int | float) and not isinstance(credit, bool):
            return ProviderCost(float(credit), "credits")
        return None

    # --- callbacks -----------------------------------------------------------------------------

    def wants_callback(self) -> bool:
        return True

    def parse_callback(self, callback: CallbackRequest) -> AdapterResult:
        secret = self.setting("webhook_secret")
        if secret and not self._signature_ok(callback, str(secret)):
            return AdapterResult.failure(
                AdapterError(
                    ErrorCode.CALLBACK_REJECTED,
                    "pollo callback signature missing or invalid",
                    retryable=False,
                )
            )
        try:
            body = unwrap(json.loads(callback.body))
        except (ValueError, UnicodeDecodeError):
            return AdapterResult.failure(self.bad_response(callback.body, "callback body is not JSON"))
        if not isinstance(body, dict) or not body.get("taskId"):
            return AdapterResult.failure(self.bad_response(callback.body, "callback without taskId"))
        task_id = str(body["taskId"])
        if isinstance(body.get("generations"), list):
            return self.task_result(body, task_id, callback.body)
        status = body.get("status")
        if status == "failed":
            message = str(body.get("failMsg") or body.get("message") or "generation failed")
            return AdapterResult.failure(
                AdapterError(
                    ErrorCode.GENERATION_FAILED, f"pollo: {message}", retryable=False, provider_code="failed"
                ),
                provider_task_id=task_id,
                provider_state="failed",
            )
        # A bare "succeed" names no files: the task's status answer will.
        return AdapterResult.processing(
            task_id, 1.0 if status == "succeed" else None, provider_state=str(status)
        )

    @staticmethod
    def _signature_ok(callback: CallbackRequest, secret: str) -> bool:
        headers = callback.headers
        if "x-webhook-signature" in headers:
            return verify_standard(headers, callback.body, secret, prefix="x-webhook-")
        if "x-signature" in headers:
            return verify_hex_body(headers["x-signature"], callback.body, secret)
        return False

    # --- errors and health ---------------------------------------------------------------------

    def _envelope(self, reply: HttpReply) -> Any | AdapterError:
        """The answer's data, or the error its HTTP status or `code` says."""
        if reply.status != 200 and reply.status != 201:
            return self.error_of(reply)
        body = self.json_of(reply)
        if isinstance(body, AdapterError):
            return body
        if isinstance(body, dict) and isinstance(body.get("code"), str) and body["code"] != "SUCCESS":
            return self.error_of(reply)
        return unwrap(body)

    def error_of(self, reply: HttpReply) -> AdapterError:
        body: Any = None
        try:
            body = reply.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        code = message = ""
        issues: list[str] = []
        if isinstance(body, dict):
            code = str(body.get("code") or "")
            message = str(body.get("message") or "")
            for issue in body.get("issues") or []:
                if isinstance(issue, Mapping):
                    where = ".".join(str(p) for p in issue.get("path") or [])
                    issues.append(f"{where}: {issue.get('message')}" if where else str(issue.get("message")))
        text = "pollo: " + (message or code or f"HTTP {reply.status}")
        if issues:
            text += " (" + "; ".join(issues) + ")"
        err = dataclasses.replace(self.http_error(reply, text), provider_code=code or None)
        lowered = message.lower()
        if code == "FORBIDDEN" and "credit" in lowered:
            return dataclasses.replace(err, code=ErrorCode.INSUFFICIENT_CREDITS, retryable=False)
        if code in ("FORBIDDEN", "UNAUTHORIZED") or (code == "NOT_FOUND" and "key" in lowered):
            return dataclasses.replace(err, code=ErrorCode.AUTH_FAILED, retryable=False)
        if code == "NOT_FOUND":
            return dataclasses.replace(err, code=ErrorCode.NOT_FOUND, retryable=False)
        if code == "BAD_REQUEST":
            return dataclasses.replace(err, code=ErrorCode.INVALID_REQUEST, retryable=False)
        if reply.status == 200:
            # An error code we do not know inside a 200: not something a retry fixes.
            return dataclasses.replace(
                self.bad_response(reply, f"unknown code {code!r}"),
                retryable=False,
                provider_code=code or None,
            )
        return err

    async def health(self) -> HealthResult:
        checked = await probe(self, "/credit/balance")
        if isinstance(checked, HealthResult):
            return checked
        body = self._envelope(checked.reply)
        if isinstance(body, AdapterError):
            return checked.unhealthy(body.message)
        credits = body.get("availableCredits") if isinstance(body, dict) else None
        if not isinstance(credits, int | float):
            return checked.healthy("reachable (no balance in answer)")
        return checked.healthy("balance read", balance=float(credits), balance_unit="credits")


ADAPTERS: dict[str, type[BaseAdapter]] = {
    "PolloVeo3Adapter": PolloGenerationAdapter,
    "PolloKlingAdapter": PolloGenerationAdapter,
}
