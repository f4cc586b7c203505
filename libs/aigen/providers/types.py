"""The values every provider adapter takes and returns.

An adapter never raises for a provider's behaviour: whatever the provider answers (success, a
task id, an error body, garbage, a timeout) comes back as one `AdapterResult`. Exceptions are for
programming errors only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class OutputType(enum.StrEnum):
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    AUDIO = "AUDIO"


class Outcome(enum.StrEnum):
    SUCCESS = "SUCCESS"
    PROCESSING = "PROCESSING"
    ERROR = "ERROR"


class ErrorCode(enum.StrEnum):
    """Our stable error vocabulary; each provider's own codes map onto it."""

    MISSING_API_KEY = "MISSING_API_KEY"
    AUTH_FAILED = "AUTH_FAILED"  # 401/403: the key is wrong or lacks permission
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"  # 402 and friends: top up, do not retry
    INVALID_REQUEST = "INVALID_REQUEST"  # 400/422: our request was refused as invalid
    INVALID_INPUT_IMAGE = "INVALID_INPUT_IMAGE"  # refused before any provider call
    CONTENT_POLICY = "CONTENT_POLICY"  # moderation refusal: never retried
    NOT_FOUND = "NOT_FOUND"  # unknown task id / endpoint
    RATE_LIMITED = "RATE_LIMITED"  # 429: retry after the hinted delay
    PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"  # 5xx, maintenance, queue full
    TIMEOUT = "TIMEOUT"
    CONNECTION_FAILED = "CONNECTION_FAILED"
    PROVIDER_BAD_RESPONSE = "PROVIDER_BAD_RESPONSE"  # HTML, truncated JSON, missing fields
    GENERATION_FAILED = "GENERATION_FAILED"  # the provider ran the job and it failed
    CANCELLED = "CANCELLED"
    UNSUPPORTED = "UNSUPPORTED"  # the model or operation is not available
    CALLBACK_REJECTED = "CALLBACK_REJECTED"  # a callback whose signature does not verify


# Codes that are the provider's fault (not the user's): they count towards circuit breaking and
# allow failing over to an alternative provider.
PROVIDER_SIDE_CODES = frozenset(
    {
        ErrorCode.RATE_LIMITED,
        ErrorCode.PROVIDER_UNAVAILABLE,
        ErrorCode.TIMEOUT,
        ErrorCode.CONNECTION_FAILED,
        ErrorCode.PROVIDER_BAD_RESPONSE,
        ErrorCode.AUTH_FAILED,
        ErrorCode.INSUFFICIENT_CREDITS,
        ErrorCode.MISSING_API_KEY,
    }
)


@dataclass(frozen=True)
class AdapterError:
    code: ErrorCode
    message: str
    retryable: bool
    retry_after: float | None = None  # seconds, from Retry-After or the provider's hint
    http_status: int | None = None
    provider_code: str | None = None  # the provider's own code, as text ("455", "FORBIDDEN")
    snippet: str | None = None  # truncated raw response, for the error log (never holds secrets)

    @property
    def provider_side(self) -> bool:
        return self.code in PROVIDER_SIDE_CODES


@dataclass(frozen=True)
class ResultItem:
    """One produced file. Either `url` (the provider hosts it) or `data` (bytes we were handed)."""

    type: OutputType
    url: str | None = None
    data: bytes | None = None
    content_type: str | None = None
    # Extra facts worth keeping (cover image of a video, revised prompt, duration …).
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderCost:
    """What the provider says it charged, in its own unit (credits or USD)."""

    amount: float
    currency: str  # "credits" | "usd" | "characters"


@dataclass(frozen=True)
class AdapterResult:
    outcome: Outcome
    results: Sequence[ResultItem] = ()
    provider_task_id: str | None = None
    progress: float | None = None  # 0..1 when the provider says
    error: AdapterError | None = None
    cost: ProviderCost | None = None
    provider_state: str | None = None  # the provider's own status word, for logs

    @staticmethod
    def success(
        results: Sequence[ResultItem],
        *,
        provider_task_id: str | None = None,
        cost: ProviderCost | None = None,
        provider_state: str | None = None,
    ) -> AdapterResult:
        return AdapterResult(
            Outcome.SUCCESS,
            results=tuple(results),
            provider_task_id=provider_task_id,
            progress=1.0,
            cost=cost,
            provider_state=provider_state,
        )

    @staticmethod
    def processing(
        provider_task_id: str, progress: float | None = None, *, provider_state: str | None = None
    ) -> AdapterResult:
        if progress is not None:
            progress = min(1.0, max(0.0, progress))
        return AdapterResult(
            Outcome.PROCESSING,
            provider_task_id=provider_task_id,
            progress=progress,
            provider_state=provider_state,
        )

    @staticmethod
    def failure(
        error: AdapterError,
        *,
        provider_task_id: str | None = None,
        cost: ProviderCost | None = None,
        provider_state: str | None = None,
    ) -> AdapterResult:
        return AdapterResult(
            Outcome.ERROR,
            provider_task_id=provider_task_id,
            error=error,
            cost=cost,
            provider_state=provider_state,
        )


@dataclass(frozen=True)
class ProviderConfig:
    slug: str
    api_endpoint: str
    api_key: str = field(default="", repr=False)  # resolved key; never logged (repr hides it)
    settings: Mapping[str, Any] = field(default_factory=dict)  # e.g. upload_endpoint, webhook secret


@dataclass(frozen=True)
class ModelConfig:
    slug: str
    adapter_name: str
    output_type: OutputType
    provider: ProviderConfig
    settings: Mapping[str, Any] = field(default_factory=dict)  # the definition's adapter_settings


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    input_images: Sequence[str] = ()
    number_of_outputs: int = 1
    parameters: Mapping[str, Any] = field(default_factory=dict)  # already validated, defaults applied
    callback_url: str | None = None  # where the provider should POST on completion, if it can
    reference: str | None = None  # our task id, for providers that accept an external id


@dataclass(frozen=True)
class CallbackRequest:
    """An HTTP request a provider sent to our callback endpoint, as received."""

    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    message: str
    latency_ms: float
    balance: float | None = None  # in the provider's unit, where it can be read for free
    balance_unit: str | None = None
