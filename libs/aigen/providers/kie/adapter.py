"""What every Kie.ai family shares: envelope handling, input images and uploads, status checks,
signed callbacks and the credit balance.

A family subclass says where it posts (`create_path`), where it polls (`status_path`), how its
request body looks (`build_body`) and how it reads its record and callback (`read_record`,
`read_callback`). Nothing here raises for anything Kie answers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from aigen.providers.base import BaseAdapter, HttpReply, parse_retry_after, snippet
from aigen.providers.health import probe
from aigen.providers.images import InputImage, InputImageError
from aigen.providers.kie.envelope import OK, classify, code_of, message_of
from aigen.providers.kie.outcome import TaskView, to_result
from aigen.providers.kie.parsing import Malformed, as_float, text_of
from aigen.providers.kie.settings import (
    ImageRouting,
    SettingsError,
    check_settings,
    read_field_map,
)
from aigen.providers.kie.signature import verify
from aigen.providers.mapping import map_parameters
from aigen.providers.types import (
    AdapterError,
    AdapterResult,
    CallbackRequest,
    ErrorCode,
    GenerationRequest,
    HealthResult,
)

UPLOAD_PATH = "/api/file-base64-upload"
CREDIT_PATH = "/api/v1/chat/credit"
DEFAULT_UPLOAD_DIR = "aigen/inputs"

# Record fields that are not what the family's parser expects surface as one of these.
_UNREADABLE = (Malformed, KeyError, TypeError, ValueError, AttributeError)


class KieAdapter(BaseAdapter):
    create_path: ClassVar[str] = ""
    status_path: ClassVar[str] = ""
    # Settings every model of the family shares unless its definition says otherwise.
    family_defaults: ClassVar[Mapping[str, Any]] = {}
    requires_model_setting: ClassVar[bool] = False

    # --- configuration -------------------------------------------------------------------------

    def conf(self, name: str, default: Any = None) -> Any:
        """Model setting, else the family's default, else provider setting, else `default`."""
        if name in self.model.settings:
            return self.model.settings[name]
        if name in self.family_defaults:
            return self.family_defaults[name]
        return self.model.provider.settings.get(name, default)

    @classmethod
    def settings_problems(cls, settings: Mapping[str, Any]) -> list[str]:
        return check_settings({**cls.family_defaults, **settings}, requires_model=cls.requires_model_setting)

    def wants_callback(self) -> bool:
        return True

    # --- the contract --------------------------------------------------------------------------

    async def dispatch(self, request: GenerationRequest) -> AdapterResult:
        unsupported = self.conf("unsupported")
        if unsupported:
            return AdapterResult.failure(self.unsupported_error(str(unsupported)))
        missing = self.missing_key_error()
        if missing is not None:
            return AdapterResult.failure(missing)
        try:
            routing = ImageRouting.from_settings(self.conf)
            field_map = read_field_map(self.conf)
        except SettingsError as exc:
            return AdapterResult.failure(self.unsupported_error(f"adapter settings are unusable: {exc}"))
        try:
            images = routing.check(request.input_images)
        except InputImageError as exc:
            return AdapterResult.failure(exc.to_adapter_error())
        urls = await self.image_urls(images)
        if isinstance(urls, AdapterError):
            return AdapterResult.failure(urls)
        payload = self.payload(request, routing, urls, field_map)
        body = self.build_body(payload)
        if request.callback_url:
            body["callBackUrl"] = request.callback_url
        return await self.submit(body)

    async def check_status(self, provider_task_id: str) -> AdapterResult:
        unsupported = self.conf("unsupported")
        if unsupported:
            return AdapterResult.failure(
                self.unsupported_error(str(unsupported)), provider_task_id=provider_task_id
            )
        missing = self.missing_key_error()
        if missing is not None:
            return AdapterResult.failure(missing, provider_task_id=provider_task_id)
        reply = await self.request("GET", self.status_path, params={"taskId": provider_task_id})
        body = self.envelope(reply)
        if isinstance(body, AdapterError):
            return AdapterResult.failure(body, provider_task_id=provider_task_id)
        assert isinstance(reply, HttpReply)
        data = body.get("data")
        if not isinstance(data, Mapping):
            return AdapterResult.failure(
                self.bad_response(reply, "status answer has no data record"),
                provider_task_id=provider_task_id,
            )
        try:
            view = self.read_record(data)
        except _UNREADABLE as exc:
            return AdapterResult.failure(
                self.bad_response(reply, f"status record unreadable: {exc}"),
                provider_task_id=provider_task_id,
            )
        return to_result(view, provider_task_id, self.model.output_type)

    def parse_callback(self, callback: CallbackRequest) -> AdapterResult:
        try:
            body = json.loads(callback.body)
        except (ValueError, UnicodeDecodeError):
            return AdapterResult.failure(self.bad_response(callback.body, "callback body is not JSON"))
        if not isinstance(body, Mapping):
            return AdapterResult.failure(self.bad_response(callback.body, "callback body is not an object"))
        data = body.get("data")
        task_id = self.callback_task_id(data) if isinstance(data, Mapping) else ""
        key = self.conf("webhook_hmac_key")
        if key:
            headers = {name.lower(): value for name, value in callback.headers.items()}
            max_age = as_float(self.conf("webhook_max_age_s"))
            problem = verify(str(key), task_id, headers, max_age_s=max_age)
            if problem is not None:
                return AdapterResult.failure(
                    AdapterError(ErrorCode.CALLBACK_REJECTED, f"Kie.ai {problem}", retryable=False),
                    provider_task_id=task_id or None,
                )
        if not isinstance(data, Mapping) or not task_id:
            return AdapterResult.failure(self.bad_response(callback.body, "callback names no task id"))
        try:
            view = self.read_callback(body, data)
        except _UNREADABLE as exc:
            return AdapterResult.failure(
                self.bad_response(callback.body, f"callback unreadable: {exc}"), provider_task_id=task_id
            )
        return to_result(view, task_id, self.model.output_type)

    async def health(self) -> HealthResult:
        checked = await probe(self, CREDIT_PATH)
        if isinstance(checked, HealthResult):
            return checked
        body = self.envelope(checked.reply)
        if isinstance(body, AdapterError):
            return checked.unhealthy(body.message)
        balance = as_float(body.get("data"))
        if balance is None:
            return checked.unhealthy("Kie.ai credit answer holds no balance")
        if balance <= 0:
            return HealthResult(
                ok=False,
                message="no credits left",
                latency_ms=checked.latency_ms,
                balance=balance,
                balance_unit="credits",
            )
        return checked.healthy(f"{balance:g} credits left", balance=balance, balance_unit="credits")

    # --- for families --------------------------------------------------------------------------

    def build_body(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The create body from the family-neutral payload; most families send it as is."""
        return payload

    def read_record(self, data: Mapping[str, Any]) -> TaskView:
        raise NotImplementedError

    def read_callback(self, body: Mapping[str, Any], data: Mapping[str, Any]) -> TaskView:
        raise NotImplementedError

    def callback_task_id(self, data: Mapping[str, Any]) -> str:
        return text_of(data.get("taskId"))

    # --- shared machinery ----------------------------------------------------------------------

    def unsupported_error(self, reason: str) -> AdapterError:
        return AdapterError(ErrorCode.UNSUPPORTED, f"{self.model.slug}: {reason}", retryable=False)

    def payload(
        self,
        request: GenerationRequest,
        routing: ImageRouting,
        urls: Sequence[str],
        field_map: Mapping[str, str],
    ) -> dict[str, Any]:
        """Prompt, images, parameters and output count under Kie's names, before family wrapping."""
        payload = map_parameters(request.parameters, field_map)
        if self.conf("send_prompt", True) and request.prompt:
            payload["prompt"] = request.prompt
        routing.place(payload, urls)
        outputs_parameter = self.conf("outputs_parameter")
        if outputs_parameter:
            payload[str(outputs_parameter)] = request.number_of_outputs
        return payload

    async def submit(self, body: Mapping[str, Any]) -> AdapterResult:
        reply = await self.request("POST", self.create_path, json_body=body)
        answer = self.envelope(reply)
        if isinstance(answer, AdapterError):
            return AdapterResult.failure(answer)
        assert isinstance(reply, HttpReply)
        data = answer.get("data")
        task_id = text_of(data.get("taskId")) if isinstance(data, Mapping) else ""
        if not task_id:
            return AdapterResult.failure(self.bad_response(reply, "create answer has no data.taskId"))
        return AdapterResult.processing(task_id, provider_state="submitted")

    def envelope(self, reply: HttpReply | AdapterError) -> Mapping[str, Any] | AdapterError:
        """The decoded body when Kie says success (`code` 200), else the error it describes."""
        if isinstance(reply, AdapterError):
            return reply
        try:
            body = reply.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        code = code_of(body) if isinstance(body, Mapping) else None
        if not isinstance(body, Mapping) or code is None:
            # A proxy's HTML error page or a truncated body: the HTTP status is all there is.
            if reply.status >= 400:
                return self.http_error(reply)
            why = "body is not JSON" if body is None else "body is not a Kie envelope"
            return self.bad_response(reply, why)
        if code == OK and reply.status < 400:
            return body
        return classify(
            code if code != OK else reply.status,
            self.scrub(message_of(body)),
            http_status=reply.status,
            retry_after=parse_retry_after(reply.headers),
            snippet=snippet(reply.content, self.api_key),
        )

    def scrub(self, text: str) -> str:
        return text.replace(self.api_key, "***") if self.api_key else text

    async def image_urls(self, images: Sequence[InputImage]) -> list[str] | AdapterError:
        """Kie fetches inputs by URL: data URLs are uploaded first through Kie's file API."""
        urls: list[str] = []
        for image in images:
            if image.url is not None:
                urls.append(image.url)
                continue
            uploaded = await self.upload(image)
            if isinstance(uploaded, AdapterError):
                return uploaded
            urls.append(uploaded)
        return urls

    async def upload(self, image: InputImage) -> str | AdapterError:
        base = str(self.conf("upload_endpoint") or self.endpoint).rstrip("/")
        reply = await self.request(
            "POST",
            UPLOAD_PATH,
            base_url=base,
            json_body={
                "base64Data": image.data_url(),
                "uploadPath": str(self.conf("upload_path", DEFAULT_UPLOAD_DIR)).strip("/"),
            },
        )
        answer = self.envelope(reply)
        if isinstance(answer, AdapterError):
            return dataclasses.replace(
                answer, message=f"upload of input_images[{image.index}] failed: {answer.message}"
            )
        assert isinstance(reply, HttpReply)
        data = answer.get("data")
        if isinstance(data, Mapping):
            # The OpenAPI page documents downloadUrl; a quickstart example shows fileUrl.
            for key in ("downloadUrl", "fileUrl"):
                url = data.get(key)
                if isinstance(url, str) and url.startswith(("http://", "https://")):
                    return url
        return self.bad_response(reply, "upload answer has no data.downloadUrl")


def callback_code(body: Mapping[str, Any]) -> int:
    """The callback envelope's code; a callback without one is unreadable."""
    code = code_of(body)
    if code is None:
        raise Malformed("callback has no code")
    return code
