"""Kie's Midjourney API: image grids (four images per job) and short videos."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aigen.providers.kie.adapter import KieAdapter, callback_code
from aigen.providers.kie.envelope import OK, message_of
from aigen.providers.kie.outcome import Phase, TaskView
from aigen.providers.kie.parsing import Malformed, as_int, as_mapping, text_of, url_list

# Task types for which Kie ignores `speed` (they run at one fixed speed).
_NO_SPEED = frozenset({"mj_video", "mj_video_hd", "mj_omni_reference"})
_VIDEO = frozenset({"mj_video", "mj_video_hd"})
# Fields that only mean something for some task types; the form sends every default, so they
# are dropped elsewhere rather than sent where Kie does not document them.
_ONLY_FOR = {
    "videoBatchSize": _VIDEO,
    "motion": _VIDEO,
    "ow": frozenset({"mj_omni_reference"}),
}


def read_mj_record(data: Mapping[str, Any]) -> TaskView:
    flag = as_int(data.get("successFlag"))
    if flag == 0:
        return TaskView(Phase.RUNNING, "successFlag=0")
    if flag == 1:
        info = as_mapping(data.get("resultInfoJson"), "resultInfoJson")
        urls = url_list(info.get("resultUrls"), "resultInfoJson.resultUrls")
        if not urls:
            raise Malformed("successFlag is 1 but resultInfoJson holds no resultUrls")
        return TaskView(Phase.SUCCEEDED, "successFlag=1", urls=urls)
    if flag in (2, 3):
        return TaskView(
            Phase.FAILED,
            f"successFlag={flag}",
            fail_code=text_of(data.get("errorCode")) or None,
            fail_message=text_of(data.get("errorMessage")) or "Midjourney task failed",
        )
    raise Malformed(f"unknown successFlag {data.get('successFlag')!r}")


class KieMidjourneyAdapter(KieAdapter):
    create_path = "/api/v1/mj/generate"
    status_path = "/api/v1/mj/record-info"
    family_defaults = {"images_to": "fileUrls[]", "images_max": 5}

    def build_body(self, payload: dict[str, Any]) -> dict[str, Any]:
        task_type = str(payload.get("taskType") or "mj_txt2img")
        if task_type == "mj_txt2img" and payload.get("fileUrls"):
            # A reference image turns the job into image-to-image; Kie would otherwise ignore it.
            task_type = "mj_img2img"
        payload["taskType"] = task_type
        if task_type in _NO_SPEED:
            payload.pop("speed", None)
        for name, task_types in _ONLY_FOR.items():
            if task_type not in task_types:
                payload.pop(name, None)
        return payload

    def read_record(self, data: Mapping[str, Any]) -> TaskView:
        return read_mj_record(data)

    def read_callback(self, body: Mapping[str, Any], data: Mapping[str, Any]) -> TaskView:
        code = callback_code(body)
        if code != OK:
            return TaskView(Phase.FAILED, f"code={code}", fail_code=str(code), fail_message=message_of(body))
        urls = url_list(data.get("resultUrls"), "resultUrls")
        if not urls:
            raise Malformed("success callback holds no resultUrls")
        return TaskView(Phase.SUCCEEDED, "success", urls=urls)
