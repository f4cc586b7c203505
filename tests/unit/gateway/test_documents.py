"""Error documents and task documents: what clients see for each case."""

from __future__ import annotations

import pytest
from aigen import errors
from aigen.client import Task
from aigen.client._calls import SseParser
from aigen.v1 import common_pb2, generation_pb2
from fastapi.exceptions import RequestValidationError

from services.gateway.problems import from_domain, validation_problem
from services.gateway.schemas import TaskOut
from services.gateway.views import task_document


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.InvalidArgument.field("model", "is required"), 422, "INVALID_ARGUMENT"),
        (errors.NotFound("task", "t1"), 404, "TASK_NOT_FOUND"),
        (errors.NotFound("model", "m"), 404, "MODEL_NOT_FOUND"),
        (errors.FailedPrecondition("x", reason="IDEMPOTENCY_KEY_REUSED"), 422, "IDEMPOTENCY_KEY_REUSED"),
        (errors.FailedPrecondition("x", reason="MODEL_INACTIVE"), 409, "MODEL_INACTIVE"),
        (errors.Conflict("raced"), 409, "CONFLICT"),
        (errors.Unauthenticated("no"), 401, "UNAUTHENTICATED"),
        (errors.ResourceExhausted("slow down", retry_after=2.2), 429, "RESOURCE_EXHAUSTED"),
        (errors.Unavailable("down"), 503, "SERVICE_UNAVAILABLE"),
    ],
)
def test_domain_errors_become_problems(error, status, code):
    problem = from_domain(error)
    assert (problem.status, problem.code) == (status, code)
    document = problem.document("/x")
    assert document["detail"]
    if status in (429, 503):
        assert problem.retry_after_s is not None
        assert problem.retry_after_s >= 1


def test_field_names_are_the_rest_api_names():
    problem = from_domain(
        errors.InvalidArgument(
            "bad", [errors.Violation("model", "unknown"), errors.Violation("parameters.size", "no")]
        )
    )
    assert [e.field for e in problem.errors] == ["model_slug", "parameters.size"]


def test_validation_errors_name_their_fields():
    exc = RequestValidationError(
        [
            {"type": "missing", "loc": ("body", "model_slug"), "msg": "Field required"},
            {"type": "extra_forbidden", "loc": ("body", "colour"), "msg": "Extra inputs are not permitted"},
            {
                "type": "int_parsing",
                "loc": ("header", "cancel_after"),
                "msg": "Input should be a valid integer",
            },
        ]
    )
    problem = validation_problem(exc)
    assert problem.status == 422
    assert [(e.field, e.message) for e in problem.errors] == [
        ("model_slug", "is required"),
        ("colour", "is not a known field"),
        ("Cancel-After", "input should be a valid integer"),
    ]
    malformed = validation_problem(
        RequestValidationError([{"type": "json_invalid", "loc": ("body", 3), "msg": "x"}])
    )
    assert (malformed.status, malformed.code) == (400, "MALFORMED_JSON")


def test_task_document_is_the_seed_shape_and_parses_back():
    task = generation_pb2.Task(
        id="t1",
        status=generation_pb2.SUCCESS,
        progress=1.0,
        model_slug="kie-4o-image",
        provider_slug="kie",
        output_type=common_pb2.IMAGE,
        results=[generation_pb2.TaskResult(type="image", url="u0", original_url="o0", stored=True)],
        quote=common_pb2.PriceQuote(usd="0.03", display="6 Credits"),
    )
    document = task_document(task, ["fresh-url"])
    TaskOut.model_validate(document)
    assert document["results"][0]["url"] == "fresh-url"
    assert "error" not in document  # the seed's `error?`: absent, not null
    parsed = Task.from_json(document)
    assert parsed.succeeded
    assert str(parsed.cost.quoted_usd) == "0.03"
    failed = generation_pb2.Task(
        id="t2", status=generation_pb2.FAILED, error=generation_pb2.TaskError(code="X", message="m")
    )
    assert task_document(failed)["error"] == {"code": "X", "message": "m"}


def test_server_sent_events_are_parsed_line_by_line():
    parser = SseParser()
    lines = [": keep-alive", "", "event: task", "id: 3", 'data: {"a":', "data: 1}", ""]
    events = [e for e in (parser.feed(line) for line in lines) if e is not None]
    assert events == [("task", '{"a":\n1}')]
