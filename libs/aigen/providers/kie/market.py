"""Kie's market ("jobs") API: one create and one record endpoint for most hosted models.

The model string and where the images go are data (adapter settings); the request is always
`{"model", "callBackUrl"?, "input": {...}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aigen.providers.kie.adapter import KieAdapter, callback_code
from aigen.providers.kie.envelope import OK, message_of
from aigen.providers.kie.outcome import Phase, TaskView
from aigen.providers.kie.parsing import Malformed, as_float, as_mapping, text_of, url_list

RUNNING_STATES = frozenset({"waiting", "queuing", "queueing", "generating"})


def read_market_record(data: Mapping[str, Any]) -> TaskView:
    state = text_of(data.get("state")).lower()
    credits = as_float(data.get("consumeCredits"))
    if state in RUNNING_STATES:
        return TaskView(Phase.RUNNING, state, credits=credits)
    if state == "success":
        result = as_mapping(data.get("resultJson"), "resultJson")
        urls = url_list(result.get("resultUrls"), "resultJson.resultUrls")
        if not urls:
            raise Malformed("state is success but resultJson holds no resultUrls")
        extra: dict[str, Any] = {}
        watermarked = url_list(result.get("resultWaterMarkUrls"), "resultJson.resultWaterMarkUrls")
        if watermarked:
            extra["watermarked_urls"] = watermarked
        return TaskView(Phase.SUCCEEDED, state, urls=urls, credits=credits, extra=extra)
    if state == "fail":
        return TaskView(
            Phase.FAILED,
            state,
            fail_code=text_of(data.get("failCode")) or None,
            fail_message=text_of(data.get("failMsg")),
            credits=credits,
        )
    raise Malformed(f"unknown state {state!r}")


class KieMarketAdapter(KieAdapter):
    create_path = "/api/v1/jobs/createTask"
    status_path = "/api/v1/jobs/recordInfo"
    requires_model_setting = True

    def build_body(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"model": str(self.conf("model")), "input": payload}

    def read_record(self, data: Mapping[str, Any]) -> TaskView:
        return read_market_record(data)

    def read_callback(self, body: Mapping[str, Any], data: Mapping[str, Any]) -> TaskView:
        # Market callbacks carry the same record as recordInfo; older ones only the envelope code.
        if data.get("state"):
            return read_market_record(data)
        code = callback_code(body)
        if code == OK:
            return read_market_record({**data, "state": "success"})
        return TaskView(
            Phase.FAILED,
            "fail",
            fail_code=text_of(data.get("failCode")) or str(code),
            fail_message=text_of(data.get("failMsg")) or message_of(body),
        )
