"""Request-scoped facts carried through async code: correlation id and task id for every log line."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
task_id: ContextVar[str | None] = ContextVar("task_id", default=None)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def bound(*, correlation: str | None = None, task: str | None = None) -> Iterator[None]:
    """Bind correlation/task ids for the duration of a block (restored afterwards)."""
    tokens = []
    if correlation is not None:
        tokens.append((correlation_id, correlation_id.set(correlation)))
    if task is not None:
        tokens.append((task_id, task_id.set(task)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
