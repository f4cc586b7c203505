"""Logs as operators read them: JSON lines, each line about a task naming the task and the
request it came from, and no provider key anywhere — not in the logs, not in what the ops API
returns — while tasks succeed, fail, retry and providers are checked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from aigen.grpcx.client import call
from aigen.logs import JsonFormatter
from aigen.simulator.base import Script
from aigen.simulator.catalog import FAKES, api_key_of, webhook_secret_of
from aigen.v1 import catalog_pb2, ops_pb2

from tests.integration.pipeline.conftest import SECRET

STORED_KEY = "kie-stored-key-7d1f0c2b9e8a4f6d"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("test"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_task_lines_carry_their_ids_and_no_key_is_ever_written(ops, json_log):
    pipeline = ops.pipeline
    kie = pipeline.fakes["kie"]
    tasks = []
    kie.faults.add("server_error", scope="create")  # a retry
    kie.faults.add("server_error", scope="status")  # a failed check
    tasks.append(await pipeline.generate("kie-4o-image"))
    tasks.append(await pipeline.generate("openai-dall-e", prompt="a red fox"))
    tasks.append(await pipeline.generate("elevenlabs-tts", prompt="Hello there."))
    for task in tasks:
        await ops.settled(task.id)
    pipeline.fakes["replicate"].script = Script(polls_to_finish=1, outcome="fail")
    failed = await pipeline.generate("replicate-flux")
    await ops.settled(failed.id)
    tasks.append(failed)

    # A key stored in the catalog that the provider refuses: the refusal is logged, the key not.
    await call(
        pipeline.catalog.UpdateProviderApiKey,
        catalog_pb2.UpdateProviderApiKeyRequest(provider="kie", api_key=STORED_KEY),
    )
    health = []
    for slug in FAKES:
        health.append(
            await call(ops.health.CheckProviderHealth, ops_pb2.ProviderHealthCheckRequest(provider=slug))
        )
    refused = await pipeline.generate("kie-nano-banana")
    await ops.settled(refused.id)
    tasks.append(refused)
    errors_logged = await ops.eventually(
        lambda: call(ops.errors.ListErrors, ops_pb2.ListErrorsRequest(page_size=500)),
        lambda r: any(e.task_id == refused.id for e in r.errors),
    )

    secrets = [STORED_KEY, SECRET, *(api_key_of(s) for s in FAKES), *(webhook_secret_of(s) for s in FAKES)]
    text = json_log.getvalue()
    returned = str(errors_logged) + "".join(str(h) for h in health)
    for secret in secrets:
        assert secret not in text, f"a key reached the log: {secret[:6]}…"
        assert secret not in returned, f"a key reached an API answer: {secret[:6]}…"

    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines and all({"ts", "level", "service", "logger", "msg"} <= set(line) for line in lines)
    about_tasks = [line for line in lines if "task_id" in line]
    assert {t.id for t in tasks} <= {line["task_id"] for line in about_tasks}
    unlinked = [line for line in about_tasks if not line.get("correlation_id")]
    assert unlinked == [], unlinked[:3]
    for task in tasks:
        mentioned = [line for line in lines if task.id in line["msg"]]
        assert all(line.get("task_id") == task.id for line in mentioned), mentioned[:3]
        correlations = {line["correlation_id"] for line in about_tasks if line["task_id"] == task.id}
        assert len(correlations) == 1, (task.id, correlations)  # one request, one id, every process
