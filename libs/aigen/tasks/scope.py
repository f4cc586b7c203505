"""Work on a task, wherever it runs, under the identity of the request that created it.

A dispatch attempt or a status check runs long after the gRPC call that created the task, in a
worker with no request around it. `task_scope` binds the task's correlation id (every log line
carries it, and events appended inside carry it on to NATS consumers) and opens a span in the
task's own trace, so provider calls made inside appear under the original request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import trace

from aigen import context, tracing
from aigen.tasks.domain import TaskState


@contextlib.contextmanager
def task_scope(state: TaskState, name: str) -> Iterator[None]:
    attributes = {"aigen.task_id": state.id}
    if state.model is not None:
        attributes["aigen.provider"] = state.model.provider_slug
        attributes["aigen.model"] = state.model.model_slug
    with (
        context.bound(correlation=state.correlation_id or None, task=state.id),
        tracing.span(
            "aigen.tasks",
            name,
            context=tracing.context_from(state.trace_context),
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
        ),
    ):
        yield
