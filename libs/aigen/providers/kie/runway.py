"""Kie's Runway API: generation and extension, each result a video plus a cover image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aigen.providers.kie.adapter import KieAdapter, callback_code
from aigen.providers.kie.envelope import OK, message_of
from aigen.providers.kie.outcome import Phase, TaskView
from aigen.providers.kie.parsing import Malformed, as_int, as_mapping, text_of

RUNNING_STATES = frozenset({"wait", "waiting", "queueing", "queuing", "generating"})


def _video(url: str, cover: str, state: str) -> TaskView:
    if not url:
        raise Malformed("success without a video URL")
    return TaskView(Phase.SUCCEEDED, state, urls=[url], extra={"cover_url": cover} if cover else {})


def read_runway_record(data: Mapping[str, Any]) -> TaskView:
    state = text_of(data.get("state")).lower()
    if state in RUNNING_STATES:
        return TaskView(Phase.RUNNING, state)
    if state == "success":
        if as_int(data.get("expireFlag")) == 1:
            return TaskView(Phase.FAILED, "expired", fail_message="the Runway video expired (kept 14 days)")
        info = as_mapping(data.get("videoInfo"), "videoInfo")
        return _video(text_of(info.get("videoUrl")), text_of(info.get("imageUrl")), state)
    if state == "fail":
        return TaskView(
            Phase.FAILED,
            state,
            fail_code=text_of(data.get("failCode")) or None,
            fail_message=text_of(data.get("failMsg")) or "Runway task failed",
        )
    raise Malformed(f"unknown state {state!r}")


class KieRunwayAdapter(KieAdapter):
    create_path = "/api/v1/runway/generate"
    status_path = "/api/v1/runway/record-detail"
    family_defaults = {"images_to": "imageUrl"}

    def read_record(self, data: Mapping[str, Any]) -> TaskView:
        return read_runway_record(data)

    def callback_task_id(self, data: Mapping[str, Any]) -> str:
        # Runway's callbacks alone are snake_case.
        return text_of(data.get("task_id")) or text_of(data.get("taskId"))

    def read_callback(self, body: Mapping[str, Any], data: Mapping[str, Any]) -> TaskView:
        code = callback_code(body)
        if code != OK:
            return TaskView(Phase.FAILED, f"code={code}", fail_code=str(code), fail_message=message_of(body))
        return _video(text_of(data.get("video_url")), text_of(data.get("image_url")), "success")


class KieRunwayExtendAdapter(KieRunwayAdapter):
    """Extends a Runway video; `taskId` (the original task) is a parameter. No input images."""

    create_path = "/api/v1/runway/extend"
    family_defaults = {}
