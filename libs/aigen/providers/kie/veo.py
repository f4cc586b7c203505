"""Kie's Veo 3.1 API: generation (text, first/last frame, reference images) and extension."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aigen.providers.kie.adapter import KieAdapter, callback_code
from aigen.providers.kie.envelope import OK, message_of
from aigen.providers.kie.outcome import Phase, TaskView
from aigen.providers.kie.parsing import Malformed, as_int, as_mapping, text_of, url_list


def _result(holder: Mapping[str, Any], state: str, *, prefer_full: bool) -> TaskView:
    # The OpenAPI types resultUrls as a string "[url]" while examples send an array: read both.
    urls = url_list(holder.get("resultUrls"), "resultUrls")
    full = url_list(holder.get("fullResultUrls"), "fullResultUrls")
    extra: dict[str, Any] = {}
    resolution = text_of(holder.get("resolution"))
    if resolution:
        extra["resolution"] = resolution
    if prefer_full and full:
        # An extension's whole clip; the new segment alone stays available in `extra`.
        extra["segment_urls"] = urls
        urls = full
    if not urls:
        raise Malformed("success without resultUrls")
    return TaskView(Phase.SUCCEEDED, state, urls=urls, extra=extra)


class KieVeoAdapter(KieAdapter):
    create_path = "/api/v1/veo/generate"
    status_path = "/api/v1/veo/record-info"
    family_defaults = {"images_to": "imageUrls[]", "images_max": 3}
    prefer_full_video = False

    def read_record(self, data: Mapping[str, Any]) -> TaskView:
        flag = as_int(data.get("successFlag"))
        if flag == 0:
            return TaskView(Phase.RUNNING, "successFlag=0")
        if flag == 1:
            response = as_mapping(data.get("response"), "response")
            return _result(response, "successFlag=1", prefer_full=self.prefer_full_video)
        if flag in (2, 3):
            return TaskView(
                Phase.FAILED,
                f"successFlag={flag}",
                fail_code=text_of(data.get("errorCode")) or None,
                fail_message=text_of(data.get("errorMessage")) or "Veo task failed",
            )
        raise Malformed(f"unknown successFlag {data.get('successFlag')!r}")

    def read_callback(self, body: Mapping[str, Any], data: Mapping[str, Any]) -> TaskView:
        code = callback_code(body)
        if code != OK:
            return TaskView(Phase.FAILED, f"code={code}", fail_code=str(code), fail_message=message_of(body))
        return _result(as_mapping(data.get("info"), "info"), "success", prefer_full=self.prefer_full_video)


class KieVeoExtendAdapter(KieVeoAdapter):
    """Extends a video made by Kie's Veo API; `taskId` (the original task) is a parameter."""

    create_path = "/api/v1/veo/extend"
    family_defaults = {}
    prefer_full_video = True
