"""The error log over gRPC: adapter errors from dispatch and polling (with the provider's response
and the request's correlation id) and task failures, filtered, paged and counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aigen import errors
from aigen.grpcx.client import call
from aigen.simulator.base import Script
from aigen.v1 import generation_pb2, ops_pb2
from google.protobuf.timestamp_pb2 import Timestamp


def ts(at: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(at)
    return t


async def listed(ops, **filters) -> list[ops_pb2.ErrorEntry]:
    return list((await call(ops.errors.ListErrors, ops_pb2.ListErrorsRequest(**filters))).errors)


async def test_adapter_errors_and_task_failures_are_logged_with_what_happened(ops):
    kie = ops.pipeline.fakes["kie"]
    kie.script = Script(polls_to_finish=2)
    kie.faults.add("server_error", scope="create")  # refused once, then the retry goes through
    kie.faults.add("server_error", scope="status")  # one check fails, the next succeeds
    recovered = await ops.pipeline.generate("kie-nano-banana")
    await ops.settled(recovered.id)

    kie.script = Script(polls_to_finish=1, outcome="fail", fail_message="the model ran out of dreams")
    failed = await ops.pipeline.generate("kie-nano-banana")
    await ops.settled(failed.id)

    def complete(found: list[ops_pb2.ErrorEntry]) -> bool:
        # Adapter errors and task failures reach the log by different paths: wait for all three.
        of_recovered = [x for x in found if x.task_id == recovered.id]
        return len(of_recovered) >= 2 and any(
            x.task_id == failed.id and x.kind == ops_pb2.ERROR_KIND_TASK_FAILURE for x in found
        )

    entries = await ops.eventually(lambda: listed(ops, provider="kie"), complete)
    mine = [e for e in entries if e.task_id == recovered.id]
    stages = sorted((e.stage, e.code) for e in mine)
    assert stages == [("dispatch", "PROVIDER_UNAVAILABLE"), ("poll", "PROVIDER_UNAVAILABLE")]
    for entry in mine:
        assert entry.kind == ops_pb2.ERROR_KIND_ADAPTER
        assert entry.model == "kie-nano-banana" and entry.retryable and entry.http_status == 500
        assert "Server error" in entry.response_snippet  # the provider's own body, truncated
        assert entry.correlation_id  # the Generate call's, carried by the worker
    assert len({e.correlation_id for e in mine}) == 1

    [failure] = [e for e in entries if e.task_id == failed.id and e.kind == ops_pb2.ERROR_KIND_TASK_FAILURE]
    assert failure.model == "kie-nano-banana" and failure.stage == "poll"
    assert "ran out of dreams" in failure.message and failure.correlation_id

    # Filters: code, model, kind, time.
    assert {e.task_id for e in await listed(ops, code="PROVIDER_UNAVAILABLE")} == {recovered.id}
    assert await listed(ops, model="kie-4o-image") == []
    only_failures = await listed(ops, kind=ops_pb2.ERROR_KIND_TASK_FAILURE)
    assert {e.kind for e in only_failures} == {ops_pb2.ERROR_KIND_TASK_FAILURE}
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await listed(ops, since=ts(later)) == []
    assert len(await listed(ops, until=ts(later))) == len(entries)


async def test_pages_follow_the_cursor_newest_first(ops):
    kie = ops.pipeline.fakes["kie"]
    kie.faults.add("rate_limit", scope="create", times=3, retry_after=0.1)
    created = await ops.pipeline.generate("kie-nano-banana")
    await ops.settled(created.id)
    await ops.eventually(lambda: listed(ops, task_id=created.id), lambda e: len(e) >= 3)

    seen: list[str] = []
    token = ""
    while True:
        page = await call(
            ops.errors.ListErrors,
            ops_pb2.ListErrorsRequest(task_id=created.id, page_size=1, page_token=token),
        )
        seen.extend(e.id for e in page.errors)
        token = page.next_page_token
        if not token:
            break
    everything = [e.id for e in await listed(ops, task_id=created.id)]
    assert seen == everything and len(seen) == len(set(seen)) >= 3
    assert [int(i) for i in seen] == sorted((int(i) for i in seen), reverse=True)


async def test_counts_per_code_per_provider(ops):
    kie = ops.pipeline.fakes["kie"]
    kie.faults.add("rate_limit", scope="create", times=2, retry_after=0.1)
    kie.script = Script(polls_to_finish=1, outcome="fail")
    created = await ops.pipeline.generate("kie-nano-banana")
    task = await ops.settled(created.id)
    assert task.status == generation_pb2.FAILED

    async def counts():
        reply = await call(ops.errors.CountErrors, ops_pb2.CountErrorsRequest(provider="kie"))
        return {(c.provider, c.code): c.count for c in reply.counts}

    found = await ops.eventually(counts, lambda c: c.get(("kie", "RATE_LIMITED"), 0) >= 2)
    assert found[("kie", "GENERATION_FAILED")] >= 1
    adapters = await call(
        ops.errors.CountErrors, ops_pb2.CountErrorsRequest(provider="kie", kind=ops_pb2.ERROR_KIND_ADAPTER)
    )
    assert {c.code for c in adapters.counts} >= {"RATE_LIMITED"}
    old = await call(
        ops.errors.CountErrors,
        ops_pb2.CountErrorsRequest(
            since=ts(datetime.now(UTC) - timedelta(days=3)), until=ts(datetime.now(UTC) - timedelta(days=2))
        ),
    )
    assert list(old.counts) == []


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ops_pb2.ListErrorsRequest(page_size=-1), "page_size"),
        (ops_pb2.ListErrorsRequest(page_size=100_000), "page_size"),
        (ops_pb2.ListErrorsRequest(page_token="not-ours"), "page_token"),
        (ops_pb2.ListErrorsRequest(provider="KIE!"), "provider"),
        (
            ops_pb2.ListErrorsRequest(
                since=ts(datetime(2024, 1, 2, tzinfo=UTC)), until=ts(datetime(2024, 1, 1, tzinfo=UTC))
            ),
            "until",
        ),
        (ops_pb2.ListErrorsRequest(kind=42), "kind"),  # type: ignore[arg-type]
    ],
)
async def test_bad_filters_name_their_field(ops, request_, field):
    with pytest.raises(errors.InvalidArgument) as bad:
        await call(ops.errors.ListErrors, request_)
    assert [v.field for v in bad.value.violations] == [field]
