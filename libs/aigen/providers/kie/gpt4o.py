"""Kie's 4o Image API (GPT-4o image generation and editing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aigen.providers.kie.adapter import KieAdapter, callback_code
from aigen.providers.kie.envelope import OK, message_of
from aigen.providers.kie.outcome import Phase, TaskView
from aigen.providers.kie.parsing import Malformed, as_float, as_int, as_mapping, text_of, url_list


def _urls(holder: Mapping[str, Any], what: str) -> list[str]:
    # The reference page says resultUrls, the quickstart and callbacks say result_urls.
    value = holder.get("resultUrls")
    return url_list(value if value is not None else holder.get("result_urls"), what)


def read_4o_record(data: Mapping[str, Any]) -> TaskView:
    flag = as_int(data.get("successFlag"))
    state = text_of(data.get("status")) or f"successFlag={flag}"
    if flag == 0:
        progress = as_float(data.get("progress"))
        if progress is not None and progress > 1.0:
            progress /= 100.0  # tolerate a percentage
        return TaskView(Phase.RUNNING, state, progress=progress)
    if flag == 1:
        urls = _urls(as_mapping(data.get("response"), "response"), "response.resultUrls")
        if not urls:
            raise Malformed("successFlag is 1 but response holds no result URLs")
        return TaskView(Phase.SUCCEEDED, state, urls=urls)
    if flag in (2, 3):
        return TaskView(
            Phase.FAILED,
            state,
            fail_code=text_of(data.get("errorCode")) or None,
            fail_message=text_of(data.get("errorMessage")) or f"4o image task ended with {state}",
        )
    raise Malformed(f"unknown successFlag {data.get('successFlag')!r}")


class Kie4oImageAdapter(KieAdapter):
    create_path = "/api/v1/gpt4o-image/generate"
    status_path = "/api/v1/gpt4o-image/record-info"
    family_defaults = {"images_to": "filesUrl[]", "images_max": 5, "outputs_parameter": "nVariants"}

    def read_record(self, data: Mapping[str, Any]) -> TaskView:
        return read_4o_record(data)

    def read_callback(self, body: Mapping[str, Any], data: Mapping[str, Any]) -> TaskView:
        code = callback_code(body)
        if code != OK:
            return TaskView(Phase.FAILED, f"code={code}", fail_code=str(code), fail_message=message_of(body))
        urls = _urls(as_mapping(data.get("info"), "info"), "info.result_urls")
        if not urls:
            raise Malformed("success callback holds no result URLs")
        return TaskView(Phase.SUCCEEDED, "success", urls=urls)
