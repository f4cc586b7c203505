"""Request bodies (validated) and response shapes (for the OpenAPI document) of the REST API.

Handlers build responses as plain dicts (views.py) for speed; tests hold the two together by
validating real responses against these models and against the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator
from pydantic_core import PydanticCustomError

Status = Literal["PENDING", "PROCESSING", "SUCCESS", "FAILED", "CANCELLED"]
OutputType = Literal["IMAGE", "VIDEO", "AUDIO"]


def has_nul(value: Any) -> bool:
    """NUL characters cannot be stored as PostgreSQL text: they are refused at the door."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(item) for item in value)
    return False


def no_nul(value: Any) -> Any:
    if has_nul(value):
        raise PydanticCustomError("nul_character", "must not contain NUL characters")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


# --- requests -------------------------------------------------------------------------------------


EXAMPLE_REQUEST: dict[str, JsonValue] = {
    "model_slug": "local-image",
    "prompt": "a lighthouse at dusk",
    "number_of_outputs": 1,
    "parameters": {"width": 320, "height": 240},
}


class GenerationRequest(_Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_REQUEST]})

    model_slug: str = Field(min_length=1, max_length=200, description="The model, by slug (see /models).")
    prompt: str = Field("", max_length=20_000)
    input_images: list[str] = Field(
        default_factory=list, max_length=16, description="http(s) URLs or base64 data: URLs of input images."
    )
    number_of_outputs: int | None = Field(None, ge=1, le=64, description="Omitted: the model's default.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Model parameters (see the model's fields)."
    )
    webhook_url: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="Progress and the outcome are POSTed here, signed the Standard Webhooks way.",
    )


class QuoteRequest(_Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_REQUEST]})

    model_slug: str = Field(min_length=1, max_length=200)
    prompt: str = Field("", max_length=20_000)
    input_images: list[str] = Field(default_factory=list, max_length=16)
    number_of_outputs: int | None = Field(None, ge=1, le=64)
    parameters: dict[str, Any] = Field(default_factory=dict)


class AdminGenerationRequest(GenerationRequest):
    owner: str | None = Field(
        None, min_length=1, max_length=200, description="Owner recorded on the task (default: admin)."
    )
    shot_id: str | None = Field(None, min_length=1, max_length=200)


class KeyCreate(_Strict):
    name: str = Field(min_length=1, max_length=200)
    owner: str | None = Field(
        None, min_length=1, max_length=200, description="Owner of the key's tasks (default: the key id)."
    )
    allowed_models: list[str] | None = Field(
        None, max_length=1000, description="Model slugs; omitted: every model."
    )
    rate_per_minute: int | None = Field(None, ge=1, le=1_000_000)
    burst: int | None = Field(None, ge=1, le=1_000_000)
    max_concurrent: int | None = Field(None, ge=1, le=1_000_000)
    budget_usd: Decimal | None = Field(None, ge=0, le=Decimal("1e12"), max_digits=18, decimal_places=6)
    budget_period: Literal["total", "day", "week", "month"] = "total"
    expires_at: datetime | None = None


class KeyUpdate(_Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    allowed_models: list[str] | None = Field(None, max_length=1000)
    rate_per_minute: int | None = Field(None, ge=1, le=1_000_000)
    burst: int | None = Field(None, ge=1, le=1_000_000)
    max_concurrent: int | None = Field(None, ge=1, le=1_000_000)
    budget_usd: Decimal | None = Field(None, ge=0, le=Decimal("1e12"), max_digits=18, decimal_places=6)
    budget_period: Literal["total", "day", "week", "month"] | None = None
    expires_at: datetime | None = None


class ProviderKeyUpdate(_Strict):
    api_key: str = Field(
        max_length=4096, description="Empty: clear the stored key (the environment's applies)."
    )


class ProviderUpdate(_Strict):
    api_endpoint: str | None = Field(None, max_length=2000)
    upload_to_s3: bool | None = None
    s3_path_prefix: str | None = Field(None, max_length=500)
    active: bool | None = None
    sort_order: int | None = Field(None, ge=-1_000_000, le=1_000_000)


class ModelUpdate(_Strict):
    active: bool | None = None
    sort_order: int | None = Field(None, ge=-1_000_000, le=1_000_000)


class CancelRequest(_Strict):
    reason: str = Field("cancelled by an administrator", max_length=500)


# --- responses ------------------------------------------------------------------------------------


class FieldErrorOut(_Strict):
    field: str
    message: str


class ProblemOut(_Strict):
    """RFC 9457 problem details, with a stable machine-readable `code`."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str | None = None
    errors: list[FieldErrorOut] | None = None
    retryAfter: int | None = None


class ResultOut(_Strict):
    type: str
    url: str
    originalUrl: str | None = None
    contentType: str | None = None
    size: int | None = None
    sha256: str | None = None
    stored: bool


class TaskErrorOut(_Strict):
    code: str
    message: str


class CostOut(_Strict):
    quotedUsd: str
    display: str
    chargedUsd: str | None = None


class TaskOut(_Strict):
    taskId: str
    status: Status
    results: list[ResultOut]
    error: TaskErrorOut | None = None
    progress: float
    model: str
    provider: str
    outputType: OutputType
    prompt: str
    numberOfOutputs: int
    parameters: dict[str, Any]
    cost: CostOut
    createdAt: str | None = None
    updatedAt: str | None = None
    completedAt: str | None = None
    shotId: str | None = None
    owner: str | None = None
    providerTaskId: str | None = None
    deletedAt: str | None = None


class TaskListOut(_Strict):
    tasks: list[TaskOut]
    nextPageToken: str | None = None


class FieldOptionOut(_Strict):
    label: str
    value: Any


class FieldOut(_Strict):
    key: str
    label: str
    labelZh: str | None = None
    type: str
    required: bool
    default: Any = None
    options: list[FieldOptionOut] | None = None
    helperText: str | None = None
    placeholder: str | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    integer: bool | None = None
    maxLength: int | None = None


class PriceOut(_Strict):
    display: str
    note: str


class ModelOut(_Open):
    slug: str
    name: str
    description: str
    provider: str
    outputType: OutputType
    functionTags: list[str]
    active: bool
    available: bool
    price: PriceOut
    fields: list[FieldOut]
    unavailableReason: str | None = None


class ModelListOut(_Strict):
    models: list[ModelOut]


class QuoteOut(_Strict):
    model: str
    amount: str
    currency: str
    usd: str
    display: str
    numberOfOutputs: int
    parameters: dict[str, Any]


class UsageOut(_Open):
    keyId: str
    owner: str
    budgetUsd: str | None = None
    budgetPeriod: str
    periodStart: str
    periodChargedUsd: str
    openUsd: str
    openTasks: int
    remainingUsd: str | None = None


class KeyOut(_Open):
    id: str
    prefix: str
    name: str
    owner: str
    state: Literal["active", "expired", "revoked"]
    createdAt: str


class CreatedKeyOut(KeyOut):
    key: str = Field(description="The API key. Shown once: store it now.")
    webhookSecret: str = Field(description="Verifies this key's webhooks. Shown once.")


class CallbackOut(_Strict):
    taskId: str
    accepted: bool


class Json(_Open):
    """A JSON object (admin and Studio documents)."""
