"""One family-neutral view of a Kie task, and how it becomes an `AdapterResult`.

Each family reads its own record or callback into a `TaskView`; everything after that (result
types, cost, failure classification) is shared.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aigen.providers.kie.envelope import task_failure
from aigen.providers.types import AdapterResult, OutputType, ProviderCost, ResultItem

_VIDEO_EXT = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}
_IMAGE_EXT = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}


class Phase(enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class TaskView:
    phase: Phase
    state: str  # the provider's own status word, for logs
    urls: Sequence[str] = ()
    progress: float | None = None
    fail_code: str | None = None
    fail_message: str = ""
    credits: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # kept on every result item


def result_type(url: str, default: OutputType) -> tuple[OutputType, str | None]:
    """Output type and content type from the URL's extension; the model's type when unknown."""
    path = urlsplit(url).path.lower()
    ext = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    if ext in _VIDEO_EXT:
        return OutputType.VIDEO, _VIDEO_EXT[ext]
    if ext in _IMAGE_EXT:
        return OutputType.IMAGE, _IMAGE_EXT[ext]
    return default, None


def to_result(view: TaskView, task_id: str, output_type: OutputType) -> AdapterResult:
    cost = ProviderCost(view.credits, "credits") if view.credits is not None else None
    if view.phase is Phase.SUCCEEDED:
        items = []
        for url in view.urls:
            kind, content_type = result_type(url, output_type)
            items.append(ResultItem(kind, url=url, content_type=content_type, extra=dict(view.extra)))
        return AdapterResult.success(items, provider_task_id=task_id, cost=cost, provider_state=view.state)
    if view.phase is Phase.FAILED:
        return AdapterResult.failure(
            task_failure(view.fail_code, view.fail_message),
            provider_task_id=task_id,
            cost=cost,
            provider_state=view.state,
        )
    return AdapterResult.processing(task_id, view.progress, provider_state=view.state)
