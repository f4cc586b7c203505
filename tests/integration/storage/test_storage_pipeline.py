"""Result storage driven by real events: TaskCompleted appended to the log, relayed to JetStream,
consumed by the storage handler, ResultsStored appended; objects checked in S3 (over HTTP) and on
disk. Includes G13: one object per result and one ResultsStored, also across redelivery and a
crash between upload and append."""

from __future__ import annotations

from aigen.bus.consumer import Consumer
from aigen.bus.relay import envelope_of
from aigen.eventstore import EventStore
from aigen.eventstore.mapper import to_new_event
from aigen.objectstore import ObjectStore, ObjectStoreError
from aigen.tasks.domain import Status, stream_id
from aigen.v1 import events_pb2

from services.storage.handlers import TaskCompletedHandler
from tests.integration.storage.conftest import SECRET
from tests.integration.storage.harness import (
    Pipeline,
    bucket_objects,
    completed_task,
    large_sha256,
    media,
    results_stored,
    sha256,
    staged_count,
    url_result,
)


async def test_url_results_are_streamed_into_s3_with_type_size_and_sha256(
    s3_pipeline, provider_files, s3_endpoint, bucket
):
    task = await completed_task(
        s3_pipeline.db,
        prefix="renders/",
        results=[
            url_result(provider_files.file_url("sample.png")),
            url_result(provider_files.file_url("sample.mp4"), "video"),
            url_result(f"{provider_files.url}/untyped/sample.png"),  # octet-stream: typed by the URL
        ],
    )
    event = await s3_pipeline.store_task(task)
    expected = [
        (f"renders/{task}/0.png", "sample.png", "image/png", "image"),
        (f"renders/{task}/1.mp4", "sample.mp4", "video/mp4", "video"),
        (f"renders/{task}/2.png", "sample.png", "image/png", "image"),
    ]
    assert [(r.storage_key, r.content_type, r.type) for r in event.results] == [
        (k, t, kind) for k, _, t, kind in expected
    ]
    for result, (_, name, _, _) in zip(event.results, expected, strict=True):
        assert result.stored
        assert not result.error
        assert (result.size, result.sha256) == (len(media(name)), sha256(media(name)))
        assert result.original_url.startswith(provider_files.url)
        assert "X-Amz-Signature=" in result.url  # a private bucket: a presigned URL
    objects = bucket_objects(s3_endpoint, bucket)
    assert sorted(objects) == sorted(k for k, _, _, _ in expected)
    for key, name, content_type, _ in expected:
        assert objects[key]["body"] == media(name)
        assert objects[key]["content_type"] == content_type
    state = await s3_pipeline.state(task)
    assert state.status is Status.SUCCESS
    assert state.results_stored


async def test_a_large_result_is_streamed_up_in_parts(s3_pipeline, provider_files, s3_endpoint, bucket):
    size = 11 * 1024 * 1024 + 7
    task = await completed_task(
        s3_pipeline.db, results=[url_result(f"{provider_files.url}/large/{size}.mp4", "video")]
    )
    event = await s3_pipeline.store_task(task)
    (result,) = event.results
    assert (result.storage_key, result.size, result.sha256) == (
        f"ai-generation/{task}/0.mp4",
        size,
        large_sha256(size),
    )
    obj = bucket_objects(s3_endpoint, bucket)[result.storage_key]
    assert obj["size"] == size
    assert sha256(obj["body"]) == result.sha256
    assert obj["etag"].strip('"').endswith("-3")  # a multipart object of three parts


async def test_byte_results_are_always_stored_and_their_staging_is_dropped(
    s3_pipeline, provider_files, s3_endpoint, bucket
):
    """uploadToS3 off: the URL result is kept as the provider's (never downloaded), while bytes
    handed over directly (OpenAI b64, ElevenLabs audio) are stored, having nowhere else to live."""
    task = await completed_task(
        s3_pipeline.db,
        upload=False,
        results=[url_result(provider_files.file_url("sample.png"))],
        staged=[("audio", media("sample.mp3"), "audio/mpeg"), ("image", media("sample.png"), "image/png")],
    )
    assert await staged_count(s3_pipeline.db, task) == 2
    event = await s3_pipeline.store_task(task)
    kept, audio, image = event.results
    assert not kept.stored
    assert kept.url == kept.original_url == provider_files.file_url("sample.png")
    assert provider_files.hits["/files/sample.png"] == 0
    assert (audio.stored, audio.storage_key, audio.content_type) == (
        True,
        f"ai-generation/{task}/1.mp3",
        "audio/mpeg",
    )
    assert (image.stored, image.storage_key, image.sha256) == (
        True,
        f"ai-generation/{task}/2.png",
        sha256(media("sample.png")),
    )
    assert audio.original_url == ""
    assert not audio.url.startswith("blob:")
    objects = bucket_objects(s3_endpoint, bucket)
    assert sorted(objects) == [audio.storage_key, image.storage_key]
    assert objects[audio.storage_key]["body"] == media("sample.mp3")
    assert await staged_count(s3_pipeline.db, task) == 0


async def test_upload_to_s3_off_keeps_the_provider_urls_without_downloading(
    s3_pipeline, provider_files, s3_endpoint, bucket
):
    urls = [provider_files.file_url("sample.png"), provider_files.file_url("sample.mp4")]
    task = await completed_task(s3_pipeline.db, upload=False, results=[url_result(u) for u in urls])
    event = await s3_pipeline.store_task(task)
    assert [(r.url, r.original_url, r.stored, r.storage_key, r.error) for r in event.results] == [
        (u, u, False, "", "") for u in urls
    ]
    assert sum(provider_files.hits.values()) == 0
    assert bucket_objects(s3_endpoint, bucket) == {}
    assert (await s3_pipeline.state(task)).status is Status.SUCCESS


async def test_g13_a_redelivered_task_completed_stores_once(s3_pipeline, provider_files, s3_endpoint, bucket):
    task = await completed_task(
        s3_pipeline.db,
        results=[
            url_result(provider_files.file_url("sample.png")),
            url_result(provider_files.file_url("sample.mp3"), "audio"),
        ],
    )
    first = await s3_pipeline.store_task(task)
    # The same TaskCompleted arrives again after JetStream's duplicate window: stored as a new
    # message, so only storage itself can tell it was handled.
    events = await EventStore(s3_pipeline.db).read_stream(stream_id(task))
    completed = next(e for e in events if e.type == "aigen.v1.TaskCompleted")
    js = s3_pipeline.nc.jetstream()
    for copy in range(2):
        await js.publish(
            s3_pipeline.topology.event_subject("task", "TaskCompleted"),
            envelope_of(completed).SerializeToString(),
            headers={"Nats-Msg-Id": f"{completed.event_id}-again-{copy}"},
        )

    async def both_seen(consumer: Consumer) -> bool:
        return consumer.processed + consumer.skipped >= 2

    consumer = await s3_pipeline.run_until(both_seen)
    assert (consumer.skipped, consumer.processed) == (2, 0)
    assert len(await results_stored(s3_pipeline.db, task)) == 1
    objects = bucket_objects(s3_endpoint, bucket)
    assert sorted(objects) == sorted(r.storage_key for r in first.results)
    assert provider_files.hits["/files/sample.png"] == 1
    assert provider_files.hits["/files/sample.mp3"] == 1


class KilledOnce(TaskCompletedHandler):
    """Dies after every result is in the object store, before ResultsStored is appended."""

    kills = 0
    forget_copies = False

    async def record(self, delivery, task_id, copied_from, copies):
        if KilledOnce.kills == 0:
            KilledOnce.kills += 1
            if self.forget_copies:
                async with delivery.db.transaction() as conn:
                    await conn.execute("DELETE FROM storage_copies WHERE task_id = %s", (task_id,))
            raise RuntimeError("storage process killed between the upload and the append")
        await super().record(delivery, task_id, copied_from, copies)


async def killed_then_redelivered(pipeline: Pipeline, provider_files, *, forget_copies: bool):
    KilledOnce.kills = 0
    KilledOnce.forget_copies = forget_copies
    pipeline = Pipeline(
        pipeline.db,
        pipeline.nc,
        pipeline.topology,
        pipeline.store,
        pipeline.guard,
        handler_factory=KilledOnce,
    )
    task = await completed_task(
        pipeline.db,
        results=[
            url_result(provider_files.file_url("sample.png")),
            url_result(provider_files.file_url("sample.mp4"), "video"),
        ],
        staged=[("audio", media("sample.mp3"), "audio/mpeg")],
    )
    event = await pipeline.store_task(task)
    assert KilledOnce.kills == 1
    assert len(await results_stored(pipeline.db, task)) == 1
    return task, event


async def test_g13_killed_after_upload_before_append_stores_once(
    s3_pipeline, provider_files, s3_endpoint, bucket
):
    task, event = await killed_then_redelivered(s3_pipeline, provider_files, forget_copies=False)
    objects = bucket_objects(s3_endpoint, bucket)
    assert sorted(objects) == [
        f"ai-generation/{task}/0.png",
        f"ai-generation/{task}/1.mp4",
        f"ai-generation/{task}/2.mp3",
    ]
    assert [r.storage_key for r in event.results] == sorted(objects)
    assert all(r.stored for r in event.results)
    # The redelivery found the copies of the killed attempt and did not download again.
    assert provider_files.hits["/files/sample.png"] == 1
    assert provider_files.hits["/files/sample.mp4"] == 1
    assert await staged_count(s3_pipeline.db, task) == 0


async def test_g13_killed_before_the_copies_were_noted_overwrites_the_same_keys(
    s3_pipeline, provider_files, s3_endpoint, bucket
):
    _task, event = await killed_then_redelivered(s3_pipeline, provider_files, forget_copies=True)
    assert provider_files.hits["/files/sample.png"] == 2  # copied twice…
    objects = bucket_objects(s3_endpoint, bucket)
    assert sorted(objects) == [r.storage_key for r in event.results]  # …onto the same keys: no duplicate
    assert len(objects) == 3
    for result in event.results:
        assert sha256(objects[result.storage_key]["body"]) == result.sha256


async def test_a_failing_provider_url_falls_back_to_itself_after_retries(
    s3_pipeline, provider_files, s3_endpoint, bucket
):
    provider_files.fail["/files/sample.png"] = 100
    flaky = provider_files.file_url("sample.png")
    task = await completed_task(
        s3_pipeline.db,
        results=[url_result(flaky), url_result(provider_files.file_url("sample.mp4"), "video")],
    )
    event = await s3_pipeline.store_task(task)
    failed, ok = event.results
    assert (failed.stored, failed.url, failed.original_url, failed.storage_key) == (False, flaky, flaky, "")
    assert "HTTP 503" in failed.error
    assert provider_files.hits["/files/sample.png"] == s3_pipeline.policy.attempts
    assert ok.stored
    assert sorted(bucket_objects(s3_endpoint, bucket)) == [ok.storage_key]
    assert (await s3_pipeline.state(task)).status is Status.SUCCESS


async def test_a_passing_failure_is_retried_and_then_stored(s3_pipeline, provider_files):
    provider_files.fail["/files/sample.png"] = 2
    task = await completed_task(s3_pipeline.db, results=[url_result(provider_files.file_url("sample.png"))])
    event = await s3_pipeline.store_task(task)
    assert event.results[0].stored
    assert provider_files.hits["/files/sample.png"] == 3


async def test_unreachable_and_unwanted_urls_fall_back(s3_pipeline, provider_files, bucket, s3_endpoint):
    urls = [
        "http://127.0.0.2:1/gone.png",  # nothing listens: unreachable after the retries
        f"{provider_files.url}/files/missing.png",  # 404: not retried
        f"{provider_files.url}/expired.png",  # an HTML error page is not an image
    ]
    task = await completed_task(s3_pipeline.db, results=[url_result(u) for u in urls])
    event = await s3_pipeline.store_task(task)
    assert [(r.stored, r.url) for r in event.results] == [(False, u) for u in urls]
    assert "cannot connect" in event.results[0].error
    assert "HTTP 404" in event.results[1].error
    assert provider_files.hits["/files/missing.png"] == 1
    assert "text/html" in event.results[2].error
    assert bucket_objects(s3_endpoint, bucket) == {}


async def test_ssrf_result_urls_are_refused_and_fall_back_unfetched(
    s3_pipeline, provider_files, internal, s3_endpoint, bucket
):
    urls = [
        f"{internal.url}/secret.png",
        "http://10.1.2.3/result.png",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        f"{provider_files.url}/redirect?to={internal.url}/secret.png",
    ]
    task = await completed_task(s3_pipeline.db, results=[url_result(u) for u in urls])
    event = await s3_pipeline.store_task(task)
    assert [(r.stored, r.url) for r in event.results] == [(False, u) for u in urls]
    assert all("refused" in r.error for r in event.results)
    assert internal.hits == 0
    assert provider_files.hits["/redirect"] == 1  # refused at once, not retried
    assert bucket_objects(s3_endpoint, bucket) == {}


async def test_a_deleted_task_is_not_stored(s3_pipeline, provider_files, s3_endpoint, bucket):
    task = await completed_task(s3_pipeline.db, results=[url_result(provider_files.file_url("sample.png"))])
    events = EventStore(s3_pipeline.db)
    await events.append(
        stream_id(task), 3, [to_new_event(events_pb2.TaskDeleted(task_id=task, requested_by="admin"))]
    )
    await s3_pipeline.ensure()
    await s3_pipeline.relay()
    consumer = await s3_pipeline.run_until(_handled_one)
    assert consumer.processed == 1
    assert await results_stored(s3_pipeline.db, task) == []
    assert provider_files.hits["/files/sample.png"] == 0
    assert bucket_objects(s3_endpoint, bucket) == {}


async def _handled_one(consumer: Consumer) -> bool:
    return consumer.processed + consumer.skipped >= 1


class DeletedWhileCopying(TaskCompletedHandler):
    """Someone deletes the task after the copies are made, just before the append."""

    async def record(self, delivery, task_id, copied_from, copies):
        original = self.events.append
        state = await self.repo.load(task_id)

        async def append_after_a_concurrent_delete(*args, **kwargs):
            self.events.append = original
            await original(
                stream_id(task_id), state.version, [to_new_event(events_pb2.TaskDeleted(task_id=task_id))]
            )
            return await original(*args, **kwargs)

        self.events.append = append_after_a_concurrent_delete
        await super().record(delivery, task_id, copied_from, copies)


async def test_a_concurrent_change_makes_storage_reload_and_decide_again(s3_pipeline, provider_files):
    pipeline = Pipeline(
        s3_pipeline.db,
        s3_pipeline.nc,
        s3_pipeline.topology,
        s3_pipeline.store,
        s3_pipeline.guard,
        handler_factory=DeletedWhileCopying,
    )
    task = await completed_task(pipeline.db, results=[url_result(provider_files.file_url("sample.png"))])
    await pipeline.ensure()
    await pipeline.relay()
    await pipeline.run_until(_handled_one)
    types = [e.type for e in await EventStore(pipeline.db).read_stream(stream_id(task))]
    # The append lost to the delete (ConcurrencyError); on the fresh state the task is deleted.
    assert types[-1] == "aigen.v1.TaskDeleted"
    assert "aigen.v1.ResultsStored" not in types


async def test_the_local_directory_backend_writes_files_with_signed_urls(
    local_pipeline, provider_files, local_store
):
    task = await completed_task(
        local_pipeline.db,
        prefix="/studio/renders",  # normalised: no leading '/', one trailing '/'
        results=[url_result(provider_files.file_url("sample.mp4"), "video")],
        staged=[("image", media("sample.png"), "image/png")],
    )
    event = await local_pipeline.store_task(task)
    video, image = event.results
    assert video.storage_key == f"studio/renders/{task}/0.mp4"
    assert image.storage_key == f"studio/renders/{task}/1.png"
    assert (local_store.root / video.storage_key).read_bytes() == media("sample.mp4")
    assert (local_store.root / image.storage_key).read_bytes() == media("sample.png")
    assert video.url.startswith(f"http://gateway.test/files/{video.storage_key}?exp=")
    query = dict(p.split("=", 1) for p in video.url.split("?", 1)[1].split("&"))
    assert local_store.verify_signed(video.storage_key, query["exp"], query["sig"])
    assert SECRET not in video.url
    assert (await local_store.stat(video.storage_key)).sha256 == video.sha256 == sha256(media("sample.mp4"))


class FailingPuts(ObjectStore):
    """The real store, except that the next `failures` puts fail as an unreachable backend would."""

    name = "failing"

    def __init__(self, inner: ObjectStore, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def put(self, key, chunks, *, content_type):
        if self.failures > 0:
            self.failures -= 1
            raise ObjectStoreError(f"S3 PutObject on s3://bucket/{key} failed: ServiceUnavailable")
        return await self.inner.put(key, chunks, content_type=content_type)

    def open(self, key):
        return self.inner.open(key)

    async def stat(self, key):
        return await self.inner.stat(key)

    async def delete(self, key):
        await self.inner.delete(key)

    async def url(self, key, *, expires_in_s):
        return await self.inner.url(key, expires_in_s=expires_in_s)


async def test_staged_bytes_that_cannot_be_stored_yet_wait_for_a_redelivery(s3_pipeline, s3_endpoint, bucket):
    """Bytes have no provider URL to fall back to: the delivery fails (all attempts of the first
    delivery fail), JetStream brings the event back, and the bytes are stored then."""
    attempts = s3_pipeline.policy.attempts
    failing = FailingPuts(s3_pipeline.store, failures=attempts)
    pipeline = Pipeline(s3_pipeline.db, s3_pipeline.nc, s3_pipeline.topology, failing, s3_pipeline.guard)
    task = await completed_task(pipeline.db, staged=[("audio", media("sample.mp3"), "audio/mpeg")])
    event = await pipeline.store_task(task)
    (audio,) = event.results
    assert audio.stored
    assert audio.storage_key == f"ai-generation/{task}/0.mp3"
    assert failing.failures == 0
    assert sorted(bucket_objects(s3_endpoint, bucket)) == [audio.storage_key]
    assert await staged_count(pipeline.db, task) == 0


async def test_staged_bytes_on_the_last_delivery_are_recorded_unstored_and_kept(
    s3_pipeline, bucket, s3_endpoint
):
    failing = FailingPuts(s3_pipeline.store, failures=1000)
    pipeline = Pipeline(s3_pipeline.db, s3_pipeline.nc, s3_pipeline.topology, failing, s3_pipeline.guard)
    pipeline.handler.max_deliver = 1  # this first delivery is the last one JetStream will make
    task = await completed_task(pipeline.db, staged=[("image", media("sample.png"), "image/png")])
    event = await pipeline.store_task(task)
    (image,) = event.results
    assert (image.stored, image.url, image.storage_key) == (False, "", "")
    assert "ServiceUnavailable" in image.error
    assert await staged_count(pipeline.db, task) == 1  # kept for an operator
    assert bucket_objects(s3_endpoint, bucket) == {}
