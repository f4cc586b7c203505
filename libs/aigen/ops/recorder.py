"""Adapter outcomes into metrics, and adapter errors into the error log.

The dispatcher and the poller hand every adapter answer to one of the hooks here. Each answer
counts in `aigen_dispatch_outcomes_total` / `aigen_poll_outcomes_total`; an error also becomes a
`ProviderErrorRecorded` event (stream `errors-<provider>`), with what task events do not keep:
the provider's own code, the HTTP status and a truncated response. Recording never fails the
work that reported it: a log that cannot be written is itself logged and skipped.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from aigen import context, logs, metrics
from aigen.eventstore.mapper import to_new_event
from aigen.eventstore.store import ANY_VERSION, EventStore
from aigen.ops.streams import errors_stream
from aigen.providers.types import AdapterError, AdapterResult
from aigen.v1 import ops_pb2

log = logging.getLogger("aigen.ops.recorder")

MESSAGE_LIMIT = 2000
SNIPPET_LIMIT = 1000


def _clip(text: str, limit: int) -> str:
    text = logs.scrub(text)
    return text if len(text) <= limit else text[:limit] + "…"


def error_event(
    *, provider: str, model: str, task_id: str, stage: str, error: AdapterError
) -> ops_pb2.ProviderErrorRecorded:
    return ops_pb2.ProviderErrorRecorded(
        provider_slug=provider,
        model_slug=model,
        task_id=task_id,
        stage=stage,
        code=error.code.value,
        message=_clip(error.message, MESSAGE_LIMIT),
        retryable=error.retryable,
        provider_side=error.provider_side,
        http_status=error.http_status or 0,
        provider_code=error.provider_code or "",
        response_snippet=_clip(error.snippet or "", SNIPPET_LIMIT),
        correlation_id=context.correlation_id.get() or "",
    )


class ErrorRecorder:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.recorded = 0

    async def on_dispatch(self, task_id: str, provider: str, result: AdapterResult) -> None:
        """The dispatcher's `on_outcome` hook."""
        await self._outcome(metrics.DISPATCH_OUTCOMES, "dispatch", task_id, provider, result)

    async def on_poll(self, task_id: str, provider: str, result: AdapterResult) -> None:
        """The poller's `on_outcome` hook."""
        await self._outcome(metrics.POLL_OUTCOMES, "poll", task_id, provider, result)

    async def _outcome(
        self, counter: Counter, stage: str, task_id: str, provider: str, result: AdapterResult
    ) -> None:
        code = result.error.code.value if result.error is not None else ""
        counter.labels(provider, result.outcome.value, metrics.code_label(code)).inc()
        if result.error is not None:
            await self.record(provider=provider, model="", task_id=task_id, stage=stage, error=result.error)

    async def record(
        self, *, provider: str, model: str, task_id: str, stage: str, error: AdapterError
    ) -> None:
        metrics.ERRORS_RECORDED.labels(provider, stage, metrics.code_label(error.code.value)).inc()
        event = error_event(provider=provider, model=model, task_id=task_id, stage=stage, error=error)
        try:
            await self.store.append(errors_stream(provider), ANY_VERSION, [to_new_event(event)])
        except Exception as exc:
            log.warning("error log entry for %s (%s) not written: %s", provider, error.code.value, exc)
            return
        self.recorded += 1
