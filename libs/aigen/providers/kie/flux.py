"""Kie's Flux Kontext API: text-to-image, or editing when an input image is given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aigen.providers.kie.adapter import KieAdapter, callback_code
from aigen.providers.kie.envelope import OK, message_of
from aigen.providers.kie.outcome import Phase, TaskView
from aigen.providers.kie.parsing import Malformed, as_int, as_mapping, text_of


def _result(holder: Mapping[str, Any], fallback: Mapping[str, Any]) -> TaskView:
    # resultImageUrl is Kie's 14-day copy; originImageUrl (BFL's own) expires within minutes.
    url = text_of(holder.get("resultImageUrl")) or text_of(fallback.get("resultImageUrl"))
    if not url:
        raise Malformed("success without resultImageUrl")
    origin = text_of(holder.get("originImageUrl"))
    return TaskView(Phase.SUCCEEDED, "success", urls=[url], extra={"origin_url": origin} if origin else {})


def read_flux_record(data: Mapping[str, Any]) -> TaskView:
    flag = as_int(data.get("successFlag"))
    if flag == 0:
        return TaskView(Phase.RUNNING, "successFlag=0")
    if flag == 1:
        return _result(as_mapping(data.get("response"), "response"), data)
    if flag in (2, 3):
        return TaskView(
            Phase.FAILED,
            f"successFlag={flag}",
            fail_code=text_of(data.get("errorCode")) or None,
            fail_message=text_of(data.get("errorMessage")) or "Flux Kontext task failed",
        )
    raise Malformed(f"unknown successFlag {data.get('successFlag')!r}")


class KieFluxKontextAdapter(KieAdapter):
    create_path = "/api/v1/flux/kontext/generate"
    status_path = "/api/v1/flux/kontext/record-info"
    family_defaults = {"images_to": "inputImage"}

    def read_record(self, data: Mapping[str, Any]) -> TaskView:
        return read_flux_record(data)

    def read_callback(self, body: Mapping[str, Any], data: Mapping[str, Any]) -> TaskView:
        code = callback_code(body)
        if code != OK:
            return TaskView(Phase.FAILED, f"code={code}", fail_code=str(code), fail_message=message_of(body))
        return _result(as_mapping(data.get("info"), "info"), data)
