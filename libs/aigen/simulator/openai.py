"""Fake OpenAI Images API: synchronous generations (JSON) and edits (multipart), per-model
validation, `url` or `b64_json` results (real PNG bytes), and `{"error": {…}}` bodies."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aigen.simulator.base import FakeProvider, Fault, media_bytes

DALLE2_SIZES = ["256x256", "512x512", "1024x1024"]
DALLE3_SIZES = ["1024x1024", "1792x1024", "1024x1792"]
GPT_SIZES = ["1024x1024", "1536x1024", "1024x1536", "auto"]
EDIT_SIZES = ["256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "auto"]
MODELS: dict[str, dict[str, Any]] = {
    "dall-e-2": {"sizes": DALLE2_SIZES, "qualities": ["standard", "auto"], "max_prompt": 1000, "max_n": 10},
    "dall-e-3": {
        "sizes": DALLE3_SIZES,
        "qualities": ["standard", "hd", "auto"],
        "max_prompt": 4000,
        "max_n": 1,
    },
    "gpt-image-1": {
        "sizes": GPT_SIZES,
        "qualities": ["low", "medium", "high", "auto"],
        "max_prompt": 32000,
        "max_n": 10,
    },
    "gpt-image-1-mini": {
        "sizes": GPT_SIZES,
        "qualities": ["low", "medium", "high", "auto"],
        "max_prompt": 32000,
        "max_n": 10,
    },
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": type_, "param": param, "code": code}},
        status_code=status,
        headers=headers,
    )


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], list[tuple[str, str, bytes]]]:
    """Form fields and (field, filename, bytes) files of a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    files: list[tuple[str, str, bytes]] = []
    if not message.is_multipart():
        return fields, files
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        if not isinstance(name, str):
            continue
        if filename is not None:
            files.append((name, str(filename), payload))
        else:
            fields[name] = payload.decode()
    return fields, files


class OpenAIFake(FakeProvider):
    slug = "openai"

    def provider_routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/images/generations", self.generations, methods=["POST"]),
            Route("/v1/images/edits", self.edits, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
        ]

    def unauthorized(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if auth == f"Bearer {self.api_key}":
            return None
        if not auth:
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        given = auth.removeprefix("Bearer ")
        masked = given[:3] + "*" * 8 + given[-4:] if len(given) > 8 else "***"
        return openai_error(
            401,
            f"Incorrect API key provided: {masked}. You can find your API key at https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    async def fault_response(self, fault: Fault) -> Response | None:
        if fault.kind == "rate_limit":
            headers = {"x-should-retry": "true"}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
                headers["retry-after-ms"] = f"{int(fault.retry_after * 1000)}"
            return openai_error(
                429,
                "Rate limit reached for images per minute. Please try again later.",
                type_="requests",
                code="rate_limit_exceeded",
                headers=headers,
            )
        if fault.kind == "server_error":
            return openai_error(
                500,
                "The server had an error while processing your request. Sorry about that!",
                type_="server_error",
            )
        if fault.kind == "auth":
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        return await super().fault_response(fault)

    async def models(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        if (fault := await self.guard("any")) is not None:
            return fault
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 1698785189, "owned_by": "system"} for m in MODELS
                ],
            }
        )

    # --- generation ----------------------------------------------------------------------------

    async def generations(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        task_fault = self.take_task_fault()
        if (fault := await self.guard("create")) is not None:
            return fault
        try:
            body = json.loads(await request.body())
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return openai_error(400, "The request body must be a JSON object.")
        refused = self.validate(body, edit=False)
        return refused or self.answer(body, task_fault)

    async def edits(self, request: Request) -> Response:
        if (denied := self.unauthorized(request)) is not None:
            return denied
        task_fault = self.take_task_fault()
        if (fault := await self.guard("create")) is not None:
            return fault
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return openai_error(400, "Invalid Content-Type header, expected multipart/form-data.")
        fields, files = parse_multipart(content_type, await request.body())
        body: dict[str, Any] = dict(fields)
        for key in ("n", "output_compression"):
            if key in body:
                try:
                    body[key] = int(body[key])
                except ValueError:
                    return openai_error(400, f"Invalid type for '{key}': expected an integer.", param=key)
        images = [data for name, _, data in files if name in ("image", "image[]")]
        body.setdefault("model", "dall-e-2")
        if not images:
            return openai_error(400, "Missing required parameter: 'image'.", param="image")
        if body["model"] == "dall-e-3":
            return openai_error(
                400,
                "Invalid value: 'dall-e-3'. Supported values are: 'dall-e-2', 'gpt-image-1' "
                "and 'gpt-image-1-mini'.",
                param="model",
                code="invalid_value",
            )
        if body["model"] == "dall-e-2" and (len(images) != 1 or not images[0].startswith(PNG_MAGIC)):
            return openai_error(
                400, "Invalid input image - format must be in ['RGBA', 'LA', 'L'], got RGB.", param="image"
            )
        if any(len(img) > 50 * 1024 * 1024 for img in images):
            return openai_error(400, "Image file too large.", param="image")
        refused = self.validate(body, edit=True)
        return refused or self.answer(body, task_fault)

    def validate(self, body: dict[str, Any], *, edit: bool) -> Response | None:
        model = body.get("model", "dall-e-2")
        spec = MODELS.get(model)
        if spec is None:
            return openai_error(
                400,
                f"Invalid value: '{model}'. Supported values are: {', '.join(repr(m) for m in MODELS)}.",
                param="model",
                code="invalid_value",
            )
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return openai_error(
                400,
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        if len(prompt) > spec["max_prompt"]:
            return openai_error(
                400,
                f"Invalid 'prompt': string too long. Expected a string with maximum length "
                f"{spec['max_prompt']}, but got a string with length {len(prompt)} instead.",
                param="prompt",
                code="string_above_max_length",
            )
        n = body.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > 10:
            return openai_error(
                400,
                f"Invalid 'n': integer between 1 and 10 expected, got {n!r}.",
                param="n",
                code="integer_out_of_range",
            )
        if n > spec["max_n"]:
            return openai_error(400, "You must provide n=1 for this model.", param="n")
        sizes = EDIT_SIZES if edit and model != "dall-e-2" else spec["sizes"]
        if "size" in body and body["size"] not in sizes:
            return openai_error(400, f"'{body['size']}' is not one of {sizes} - 'size'", param="size")
        if "quality" in body and body["quality"] not in spec["qualities"]:
            return openai_error(
                400,
                f"Invalid value: '{body['quality']}'. Supported values are: {spec['qualities']}.",
                param="quality",
                code="invalid_value",
            )
        if "style" in body and (model != "dall-e-3" or body["style"] not in ("vivid", "natural")):
            return openai_error(400, "Invalid value for 'style'.", param="style", code="invalid_value")
        gpt = model.startswith("gpt-image")
        if "response_format" in body:
            if gpt:
                return openai_error(
                    400,
                    "Unknown parameter: 'response_format'.",
                    param="response_format",
                    code="unknown_parameter",
                )
            if body["response_format"] not in ("url", "b64_json"):
                return openai_error(
                    400, "Invalid value for 'response_format'.", param="response_format", code="invalid_value"
                )
        for gpt_only in ("background", "output_format", "output_compression", "moderation"):
            if gpt_only in body and not gpt:
                return openai_error(
                    400, f"Unknown parameter: '{gpt_only}'.", param=gpt_only, code="unknown_parameter"
                )
        if body.get("background") == "transparent" and body.get("output_format", "png") == "jpeg":
            return openai_error(
                400, "Transparent background requires png or webp output.", param="background"
            )
        return None

    def answer(self, body: dict[str, Any], task_fault: str | None) -> Response:
        model = body.get("model", "dall-e-2")
        gpt = model.startswith("gpt-image")
        if task_fault == "content_policy":
            if gpt:
                return openai_error(
                    400,
                    "Your request was rejected by the safety system. If you believe this is an error, "
                    "contact us at help.openai.com and include the request ID.",
                    type_="image_generation_user_error",
                    code="moderation_blocked",
                )
            return openai_error(
                400,
                "Your request was rejected as a result of our safety system. Your prompt may contain "
                "text that is not allowed by our safety system.",
                code="content_policy_violation",
            )
        if task_fault == "fail":
            return openai_error(500, self.script.fail_message, type_="server_error")
        if self.balance <= 0:
            return openai_error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                type_="insufficient_quota",
                code="insufficient_quota",
            )
        n = int(body.get("n", 1))
        self.balance -= n
        b64 = gpt or body.get("response_format") == "b64_json"
        png = media_bytes("png")
        data: list[dict[str, Any]] = []
        for i in range(n):
            item: dict[str, Any] = (
                {"b64_json": base64.b64encode(png).decode()}
                if b64
                else {"url": self.media_url("png", f"img-{self.new_id('img')}-{i}")}
            )
            if model == "dall-e-3":
                item["revised_prompt"] = f"A detailed rendering of: {body['prompt']}"
            data.append(item)
        out: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt:
            out.update(
                background=body.get("background", "opaque"),
                output_format=body.get("output_format", "png"),
                quality=body.get("quality", "medium"),
                size=body.get("size", "1024x1024"),
                usage={
                    "input_tokens": 12,
                    "input_tokens_details": {"text_tokens": 12, "image_tokens": 0},
                    "output_tokens": 272 * n,
                    "total_tokens": 12 + 272 * n,
                },
            )
        return JSONResponse(out)
