"""The base every provider adapter builds on: HTTP, auth headers and error classification.

Adapters are one class per provider API *family*; what differs between models of one family
(a model string, which input field takes the images) is data in the model definition and reaches
the adapter as `ModelConfig.settings`.
"""

from __future__ import annotations

import email.utils
import enum
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from opentelemetry import trace

from aigen import metrics, tracing
from aigen.providers.types import (
    AdapterError,
    AdapterResult,
    CallbackRequest,
    ErrorCode,
    GenerationRequest,
    HealthResult,
    ModelConfig,
)

log = logging.getLogger("aigen.providers")

SNIPPET_LIMIT = 500


class AuthStyle(enum.StrEnum):
    BEARER = "bearer"
    X_API_KEY = "x-api-key"
    XI_API_KEY = "xi-api-key"
    NONE = "none"


@dataclass(frozen=True)
class HttpTimeouts:
    connect: float = 10.0
    total: float = 120.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(self.total, connect=self.connect)


def make_http_client(
    timeouts: HttpTimeouts | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    client_class: Callable[..., httpx.AsyncClient] = httpx.AsyncClient,
) -> httpx.AsyncClient:
    """One client per process: connection pooling across all adapters. `transport` and
    `client_class` replace httpx's own (the poller uses leaner ones for its status checks)."""
    timeouts = timeouts or HttpTimeouts()
    return client_class(
        timeout=timeouts.to_httpx(),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        transport=transport,
        follow_redirects=False,
        headers={"User-Agent": "aigen/0.1"},
    )


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: httpx.Headers
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds or HTTP date) or `retry-after-ms`."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def snippet(content: bytes | str, secret: str = "") -> str:
    """A short, secret-free excerpt of a provider response for the error log."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    if secret:
        text = text.replace(secret, "***")
    return text if len(text) <= SNIPPET_LIMIT else text[:SNIPPET_LIMIT] + "…"


def classify_status(status: int, message: str, *, retry_after: float | None = None) -> AdapterError:
    """Generic HTTP status → error class. Providers refine this with their own codes."""
    if status in (401, 403):
        return AdapterError(ErrorCode.AUTH_FAILED, message, retryable=False, http_status=status)
    if status == 402:
        return AdapterError(ErrorCode.INSUFFICIENT_CREDITS, message, retryable=False, http_status=status)
    if status == 404:
        return AdapterError(ErrorCode.NOT_FOUND, message, retryable=False, http_status=status)
    if status in (400, 409, 413, 415, 422):
        return AdapterError(ErrorCode.INVALID_REQUEST, message, retryable=False, http_status=status)
    if status == 429:
        return AdapterError(
            ErrorCode.RATE_LIMITED, message, retryable=True, retry_after=retry_after, http_status=status
        )
    if status == 408:
        return AdapterError(ErrorCode.TIMEOUT, message, retryable=True, http_status=status)
    if status >= 500:
        return AdapterError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            message,
            retryable=True,
            retry_after=retry_after,
            http_status=status,
        )
    return AdapterError(ErrorCode.PROVIDER_BAD_RESPONSE, message, retryable=False, http_status=status)


class BaseAdapter(ABC):
    """Common plumbing. Subclasses implement `dispatch` and, for async providers, `check_status`."""

    auth_style: ClassVar[AuthStyle] = AuthStyle.BEARER

    def __init__(self, model: ModelConfig, http: httpx.AsyncClient) -> None:
        self.model = model
        self.http = http

    # --- configuration -------------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        return self.model.provider.api_key

    @property
    def endpoint(self) -> str:
        return self.model.provider.api_endpoint.rstrip("/")

    def setting(self, name: str, default: Any = None) -> Any:
        """A model setting, else a provider setting, else the default."""
        if name in self.model.settings:
            return self.model.settings[name]
        return self.model.provider.settings.get(name, default)

    def auth_headers(self) -> dict[str, str]:
        key = self.api_key
        if self.auth_style is AuthStyle.BEARER:
            return {"Authorization": f"Bearer {key}"}
        if self.auth_style is AuthStyle.X_API_KEY:
            return {"x-api-key": key}
        if self.auth_style is AuthStyle.XI_API_KEY:
            return {"xi-api-key": key}
        return {}

    def missing_key_error(self) -> AdapterError | None:
        if self.auth_style is AuthStyle.NONE or self.api_key:
            return None
        env = "AI_PROVIDER_" + self.model.provider.slug.upper().replace("-", "_") + "_API_KEY"
        return AdapterError(
            ErrorCode.MISSING_API_KEY,
            f"No API key for provider {self.model.provider.slug!r}: set it in the catalog or in ${env}",
            retryable=False,
        )

    # --- HTTP ----------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        base_url: str | None = None,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> HttpReply | AdapterError:
        """Send one request. Transport failures come back as an `AdapterError`, never raised.

        Every call is a client span (in the trace of the task it serves) and counts in the
        provider request metrics; neither records the URL, which can carry ids or keys."""
        provider = self.model.provider.slug
        started = time.perf_counter()
        with tracing.span(
            "aigen.providers",
            f"{provider} {method}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "aigen.provider": provider,
                "aigen.model": self.model.slug,
            },
        ) as span:
            reply = await self._send(
                method,
                path,
                base_url=base_url,
                json_body=json_body,
                params=params,
                data=data,
                files=files,
                headers=headers,
                timeout=timeout,
            )
            status = reply.status if isinstance(reply, HttpReply) else None
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            else:
                assert isinstance(reply, AdapterError)
                span.set_attribute("error.type", reply.code.value)
            if status is None or status >= 500:
                span.set_status(trace.StatusCode.ERROR)
        metrics.PROVIDER_REQUESTS.labels(provider, metrics.status_class(status)).inc()
        metrics.PROVIDER_LATENCY.labels(provider).observe(time.perf_counter() - started)
        return reply

    async def _send(
        self,
        method: str,
        path: str,
        *,
        base_url: str | None,
        json_body: Any,
        params: Mapping[str, Any] | None,
        data: Mapping[str, Any] | None,
        files: Any,
        headers: Mapping[str, str] | None,
        timeout: httpx.Timeout | None,
    ) -> HttpReply | AdapterError:
        url = path if path.startswith(("http://", "https://")) else (base_url or self.endpoint) + path
        all_headers = {**self.auth_headers(), **(headers or {})}
        try:
            response = await self.http.request(
                method,
                url,
                json=json_body,
                params=params,
                data=data,
                files=files,
                headers=all_headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # The request never reached the provider: always safe to retry.
            return AdapterError(
                ErrorCode.CONNECTION_FAILED,
                f"{self.model.provider.slug}: cannot connect ({type(exc).__name__})",
                retryable=True,
            )
        except httpx.TimeoutException as exc:
            # The provider may have received the request: callers decide whether a retry is safe.
            return AdapterError(
                ErrorCode.TIMEOUT,
                f"{self.model.provider.slug}: {method} {path} timed out ({type(exc).__name__})",
                retryable=True,
            )
        except httpx.HTTPError as exc:
            return AdapterError(
                ErrorCode.CONNECTION_FAILED,
                f"{self.model.provider.slug}: transport error ({type(exc).__name__}: {exc})",
                retryable=True,
            )
        return HttpReply(response.status_code, response.headers, response.content)

    def bad_response(self, reply: HttpReply | bytes | str, why: str) -> AdapterError:
        content = reply.content if isinstance(reply, HttpReply) else reply
        return AdapterError(
            ErrorCode.PROVIDER_BAD_RESPONSE,
            f"{self.model.provider.slug}: unexpected response ({why})",
            retryable=True,
            http_status=reply.status if isinstance(reply, HttpReply) else None,
            snippet=snippet(content, self.api_key),
        )

    def json_of(self, reply: HttpReply) -> Any | AdapterError:
        """Decode a JSON body, or an error naming what was wrong with it."""
        try:
            return reply.json()
        except (ValueError, UnicodeDecodeError):
            return self.bad_response(reply, "body is not JSON")

    def http_error(self, reply: HttpReply, message: str | None = None) -> AdapterError:
        """Generic classification of a non-2xx reply; providers override `map_error` for more."""
        retry_after = parse_retry_after(reply.headers)
        err = classify_status(reply.status, message or f"HTTP {reply.status}", retry_after=retry_after)
        return AdapterError(
            err.code,
            err.message,
            err.retryable,
            retry_after=err.retry_after,
            http_status=reply.status,
            provider_code=err.provider_code,
            snippet=snippet(reply.content, self.api_key),
        )

    # --- the adapter contract ------------------------------------------------------------------

    @abstractmethod
    async def dispatch(self, request: GenerationRequest) -> AdapterResult:
        """Submit a generation: SUCCESS with results, PROCESSING with a provider task id, or ERROR."""

    async def check_status(self, provider_task_id: str) -> AdapterResult:
        """Ask the provider how a task is doing. Synchronous providers have nothing to check."""
        return AdapterResult.failure(
            AdapterError(
                ErrorCode.UNSUPPORTED,
                f"{type(self).__name__} completes synchronously; there is no status to check",
                retryable=False,
            ),
            provider_task_id=provider_task_id,
        )

    def wants_callback(self) -> bool:
        """Whether the provider can POST the outcome to us (then the poller checks less often)."""
        return False

    def parse_callback(self, callback: CallbackRequest) -> AdapterResult:
        """Turn a provider callback into a result; verifies the signature where the provider signs."""
        return AdapterResult.failure(
            AdapterError(
                ErrorCode.UNSUPPORTED, f"{type(self).__name__} does not receive callbacks", retryable=False
            )
        )

    async def health(self) -> HealthResult:
        """Prove key and endpoint work without spending money, where the provider allows."""
        return HealthResult(ok=False, message="no health check for this provider", latency_ms=0.0)
