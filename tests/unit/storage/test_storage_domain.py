"""Result storage rules: keys, types, what to copy, when to skip, what the task records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from aigen.objectstore import InvalidKey, StoredObject
from aigen.tasks.domain import TaskState, replay
from aigen.v1 import events_pb2

from services.storage import domain
from services.storage.domain import Action

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def result(
    url: str = "https://cdn.example.com/a.png", kind: str = "image", **kw
) -> events_pb2.ProviderResult:
    return events_pb2.ProviderResult(type=kind, url=url, **kw)


def model(upload: bool, prefix: str = "") -> events_pb2.ModelSnapshot:
    return events_pb2.ModelSnapshot(model_slug="m", upload_to_s3=upload, s3_path_prefix=prefix)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", "ai-generation/"),
        ("renders", "renders/"),
        ("/renders/", "renders/"),
        ("studio/shots//", "studio/shots/"),
        ("  ", "ai-generation/"),
    ],
)
def test_prefixes_are_normalised(prefix, expected):
    assert domain.normalize_prefix(prefix) == expected


def test_keys_are_deterministic_per_task_and_index():
    key = domain.object_key("renders/", "t1", 2, "mp4")
    assert key == "renders/t1/2.mp4" == domain.object_key("/renders", "t1", 2, "mp4")
    assert domain.object_key("", "t1", 0, "png") == "ai-generation/t1/0.png"


@pytest.mark.parametrize("prefix", ["../escape/", "a/../b", "a/.hidden/"])
def test_a_prefix_cannot_escape_or_hide(prefix):
    with pytest.raises(InvalidKey):
        domain.object_key(prefix, "t1", 0, "png")


@pytest.mark.parametrize(
    ("header", "hint", "url", "kind", "content_type", "extension"),
    [
        ("image/png", "", "https://x/a", "image", "image/png", "png"),
        (
            "image/jpeg; charset=binary",
            "",
            "https://x/a.png",
            "image",
            "image/jpeg",
            "jpg",
        ),  # the header wins
        ("application/octet-stream", "", "https://x/out.webp?sig=1", "image", "image/webp", "webp"),
        ("binary/octet-stream", "video/mp4", "https://x/out", "video", "video/mp4", "mp4"),
        ("", "", "https://x/speech", "audio", "audio/mpeg", "mp3"),
        (None, "", "https://x/clip.MOV", "video", "video/quicktime", "mov"),
        ("audio/wav", "", "https://x/a", "audio", "audio/wav", "wav"),
        ("image/x-unknown", "", "https://x/a", "image", "image/x-unknown", "bin"),
        ("", "", "https://x/a", "", "application/octet-stream", "bin"),
    ],
)
def test_content_type_and_extension_come_from_the_response_then_hints(
    header, hint, url, kind, content_type, extension
):
    found = domain.content_type_for(header, hint, url, kind)
    assert found == content_type
    assert domain.extension_for(found, url, kind) == extension


@pytest.mark.parametrize(
    "header", ["text/html; charset=utf-8", "application/json", "text/plain", "application/xml"]
)
def test_error_pages_are_not_media(header):
    with pytest.raises(domain.NotMedia, match="not a media file"):
        domain.check_media("https://x/a.png", header)


@pytest.mark.parametrize("header", ["image/png", "video/mp4", "application/octet-stream", "", None])
def test_media_and_unknown_types_pass(header):
    domain.check_media("https://x/a.png", header)


def test_plan_downloads_when_upload_is_on_keeps_when_off_and_always_copies_bytes():
    blob = uuid.uuid4()
    results = (
        result(),
        result(f"blob:{blob}", "audio"),
        result("", "image", blob_id=str(blob)),
    )
    on = domain.plan(model(upload=True), results)
    off = domain.plan(model(upload=False), results)
    assert [j.action for j in on] == [Action.DOWNLOAD, Action.STAGED, Action.STAGED]
    assert [j.action for j in off] == [Action.KEEP, Action.STAGED, Action.STAGED]
    assert on[1].blob_id == on[2].blob_id == blob
    assert on[1].source == f"blob:{blob}"
    assert [j.index for j in on] == [0, 1, 2]
    assert domain.plan(None, (result(),))[0].action is Action.KEEP


def state(*events) -> TaskState:
    return replay("t1", [(e, NOW) for e in events])


CREATED = events_pb2.TaskCreated(task_id="t1", model=model(True))
COMPLETED = events_pb2.TaskCompleted(task_id="t1", results=[result()])


def test_skip_reasons():
    assert domain.skip_reason(state()) == "the task does not exist"
    assert domain.skip_reason(state(CREATED)) == "the task has not completed"
    assert domain.skip_reason(state(CREATED, COMPLETED)) is None
    assert (
        domain.skip_reason(state(CREATED, COMPLETED, events_pb2.TaskDeleted(task_id="t1")))
        == "the task was deleted"
    )
    assert (
        domain.skip_reason(state(CREATED, events_pb2.TaskCancelled(task_id="t1"))) == "the task was cancelled"
    )
    done = state(CREATED, COMPLETED, events_pb2.ResultsStored(task_id="t1"))
    assert domain.skip_reason(done) == "the results are already stored"


def test_what_the_task_records_for_each_outcome():
    provider = result("https://cdn.example.com/a.png", content_type="image/png")
    obj = StoredObject("ai-generation/t1/0.png", 10, "ab" * 32, "image/png")
    stored = domain.stored(provider, obj, "https://bucket/ai-generation/t1/0.png?sig")
    assert (
        stored.stored,
        stored.url,
        stored.original_url,
        stored.storage_key,
        stored.size,
        stored.sha256,
    ) == (
        True,
        "https://bucket/ai-generation/t1/0.png?sig",
        "https://cdn.example.com/a.png",
        obj.key,
        10,
        obj.sha256,
    )
    kept = domain.kept(provider)
    assert (kept.stored, kept.url, kept.original_url, kept.error) == (False, provider.url, provider.url, "")
    fell = domain.fell_back(provider, "HTTP 503")
    assert (fell.stored, fell.url, fell.original_url, fell.error) == (
        False,
        provider.url,
        provider.url,
        "HTTP 503",
    )
    staged = result(f"blob:{uuid.uuid4()}", "audio")
    assert domain.stored(staged, obj, "u").original_url == ""  # a blob: URL means nothing outside
    assert domain.fell_back(staged, "x").url == ""


def test_backoff_grows_and_is_capped():
    assert [domain.backoff_s(a, 1.0, 5.0) for a in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
