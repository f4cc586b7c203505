"""What the storage tests share: provider files over real HTTP, an "internal" server that must
never be reached, a real S3 endpoint, and a storage pipeline driven by real events."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aigen.simulator
import boto3
from aigen.bus import topology as topo
from aigen.bus.consumer import Consumer
from aigen.bus.relay import Relay
from aigen.db.pool import Database
from aigen.eventstore import EventStore
from aigen.eventstore.mapper import decode, to_new_event
from aigen.netguard import AllowList, NetGuard
from aigen.objectstore import ObjectStore
from aigen.tasks import blobs
from aigen.tasks.domain import stream_id
from aigen.tasks.repository import TaskRepository
from aigen.v1 import common_pb2, events_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from services.storage.handlers import TaskCompletedHandler
from services.storage.transfer import CopyPolicy, ResultCopier

MEDIA = Path(aigen.simulator.__file__).parent / "media"
MEDIA_TYPES = {"sample.png": "image/png", "sample.mp4": "video/mp4", "sample.mp3": "audio/mpeg"}
PROVIDER_HOST = "127.0.0.2"  # the allow-listed "provider"; 127.0.0.1 stays forbidden
FAST = CopyPolicy(attempts=3, backoff_base_s=0.01, backoff_max_s=0.05)


def media(name: str) -> bytes:
    return (MEDIA / name).read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_BLOCK = hashlib.sha256(b"aigen large result").digest() * 2048  # 64 KiB


def large_chunks(size: int) -> Iterator[bytes]:
    """A deterministic body of `size` bytes, in 64 KiB chunks."""
    sent = 0
    while sent < size:
        piece = _BLOCK[: min(len(_BLOCK), size - sent)]
        sent += len(piece)
        yield piece


def large_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for piece in large_chunks(size):
        digest.update(piece)
    return digest.hexdigest()


# --- HTTP servers ---------------------------------------------------------------------------------


@dataclass
class ProviderFiles:
    """Counts every request by path; `fail[path] = n` answers the next n requests with 503."""

    url: str = ""
    hits: collections.Counter[str] = field(default_factory=collections.Counter)
    fail: dict[str, int] = field(default_factory=dict)

    def app(self) -> Starlette:
        async def count(request: Request) -> Response | None:
            self.hits[request.url.path] += 1
            if self.fail.get(request.url.path, 0) > 0:
                self.fail[request.url.path] -= 1
                return PlainTextResponse("try later", status_code=503)
            return None

        async def file(request: Request) -> Response:
            name = request.path_params["name"]
            if (busy := await count(request)) is not None:
                return busy
            if name not in MEDIA_TYPES:
                return PlainTextResponse("no such file", status_code=404)
            return Response(media(name), media_type=MEDIA_TYPES[name])

        async def untyped(request: Request) -> Response:
            await count(request)
            return Response(media(request.path_params["name"]), media_type="application/octet-stream")

        async def large(request: Request) -> Response:
            await count(request)
            size = int(request.path_params["size"])
            return StreamingResponse(
                _aiter(large_chunks(size)), media_type="video/mp4", headers={"content-length": str(size)}
            )

        async def chunked(request: Request) -> Response:
            await count(request)
            # No Content-Length: only counting the bytes as they come can enforce a cap.
            return StreamingResponse(
                _aiter(large_chunks(int(request.path_params["size"]))), media_type="video/mp4"
            )

        async def loop(request: Request) -> Response:
            await count(request)
            return RedirectResponse(f"/loop/{request.path_params['n'] + 1}", status_code=302)

        async def redirect(request: Request) -> Response:
            await count(request)
            return RedirectResponse(request.query_params["to"], status_code=302)

        async def html(request: Request) -> Response:
            await count(request)
            return HTMLResponse("<html><body>This link has expired</body></html>")

        return Starlette(
            routes=[
                Route("/files/{name}", file),
                Route("/untyped/{name}", untyped),
                Route("/large/{size:int}.mp4", large),
                Route("/chunked/{size:int}.mp4", chunked),
                Route("/loop/{n:int}", loop),
                Route("/redirect", redirect),
                Route("/expired.png", html),
            ]
        )

    def file_url(self, name: str) -> str:
        return f"{self.url}/files/{name}"


async def _aiter(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@dataclass
class InternalServer:
    """Stands for what lives on the loopback interface: it must never be asked anything."""

    url: str = ""
    hits: int = 0

    def app(self) -> Starlette:
        async def anything(request: Request) -> Response:
            self.hits += 1
            return PlainTextResponse("internal secrets")

        return Starlette(routes=[Route("/{path:path}", anything)])


def provider_guard(**options: Any) -> NetGuard:
    return NetGuard(allow=AllowList.parse(PROVIDER_HOST), connect_timeout_s=2, read_timeout_s=5, **options)


# --- S3 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def client(self) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )


def bucket_objects(endpoint: S3Endpoint, bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every object under `prefix`: key → {size, content_type, body, etag}."""
    client = endpoint.client()
    found: dict[str, dict[str, Any]] = {}
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    for item in listing.get("Contents", []):
        got = client.get_object(Bucket=bucket, Key=item["Key"])
        found[item["Key"]] = {
            "size": item["Size"],
            "content_type": got["ContentType"],
            "body": got["Body"].read(),
            "etag": item["ETag"],
        }
    return found


# --- tasks and the pipeline -----------------------------------------------------------------------


def snapshot(*, upload: bool, prefix: str = "") -> events_pb2.ModelSnapshot:
    return events_pb2.ModelSnapshot(
        model_id="m-1",
        model_slug="test-model",
        provider_slug="test-provider",
        adapter_name="TestAdapter",
        output_type=common_pb2.IMAGE,
        upload_to_s3=upload,
        s3_path_prefix=prefix,
    )


def url_result(url: str, kind: str = "image", content_type: str = "") -> events_pb2.ProviderResult:
    return events_pb2.ProviderResult(type=kind, url=url, content_type=content_type)


async def completed_task(
    db: Database,
    *,
    results: Sequence[events_pb2.ProviderResult] = (),
    staged: Sequence[tuple[str, bytes, str]] = (),
    upload: bool = True,
    prefix: str = "",
) -> str:
    """A task created, dispatched and completed; `staged` (type, bytes, content type) are staged
    in result_blobs in the TaskCompleted's transaction, as the dispatcher does. Returns its id."""
    task_id = uuid.uuid4().hex
    model = snapshot(upload=upload, prefix=prefix)
    store = EventStore(db)
    async with db.transaction() as conn:
        completed = list(results)
        for kind, data, content_type in staged:
            blob = await blobs.put(conn, task_id, data, content_type)
            completed.append(
                events_pb2.ProviderResult(
                    type=kind, url=blobs.blob_url(blob), blob_id=str(blob), content_type=content_type
                )
            )
        await store.append(
            stream_id(task_id),
            0,
            [
                to_new_event(
                    events_pb2.TaskCreated(task_id=task_id, model=model, prompt="a cat", number_of_outputs=1)
                ),
                to_new_event(events_pb2.TaskDispatched(task_id=task_id, provider_task_id="p-1", model=model)),
                to_new_event(events_pb2.TaskCompleted(task_id=task_id, results=completed, source="poll")),
            ],
            conn=conn,
        )
    return task_id


async def results_stored(db: Database, task_id: str) -> list[events_pb2.ResultsStored]:
    events = await EventStore(db).read_stream(stream_id(task_id))
    return [m for m in (decode(e) for e in events) if isinstance(m, events_pb2.ResultsStored)]


async def staged_count(db: Database, task_id: str) -> int:
    async with db.connection() as conn:
        row = await (
            await conn.execute("SELECT count(*) FROM result_blobs WHERE task_id = %s", (task_id,))
        ).fetchone()
    return int(row[0]) if row else 0


@dataclass
class Pipeline:
    """The storage consumer as the service runs it, fed by the relay from the event log."""

    db: Database
    nc: Any
    topology: topo.Topology
    store: ObjectStore
    guard: NetGuard
    policy: CopyPolicy = FAST
    handler_factory: Callable[..., TaskCompletedHandler] = TaskCompletedHandler
    handler: TaskCompletedHandler = field(init=False)
    spec: topo.ConsumerSpec = field(init=False)

    def __post_init__(self) -> None:
        self.spec = next(
            c for c in topo.system_consumers(self.topology) if c.durable.endswith("storage-completed")
        )
        copier = ResultCopier(db=self.db, store=self.store, guard=self.guard, policy=self.policy)
        self.handler = self.handler_factory(
            events=EventStore(self.db), copier=copier, max_deliver=self.spec.max_deliver
        )

    async def ensure(self) -> None:
        await topo.ensure(self.nc.jetstream(), self.topology.streams(), (self.spec,))

    async def relay(self) -> None:
        relay = Relay(self.db, self.nc, self.topology)
        while await relay.publish_once() > 0:
            pass

    def consumer(self) -> Consumer:
        return Consumer(self.db, self.nc, self.spec, self.handler, retry_base_s=0.05, fetch_timeout=0.2)

    async def run_until(self, done: Callable[[Consumer], Awaitable[bool]], timeout: float = 30.0) -> Consumer:
        """Run the storage consumer until `done(consumer)` holds."""
        consumer = self.consumer()
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while not await done(consumer):
                if task.done():
                    task.result()
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError("the storage consumer did not finish in time")
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        return consumer

    async def store_task(self, task_id: str) -> events_pb2.ResultsStored:
        """Relay the log, consume until the task's ResultsStored is there; return it."""
        await self.ensure()
        await self.relay()

        async def stored(consumer: Consumer) -> bool:
            return bool(await results_stored(self.db, task_id))

        await self.run_until(stored)
        (event,) = await results_stored(self.db, task_id)
        return event

    async def state(self, task_id: str) -> Any:
        return await TaskRepository(EventStore(self.db)).load(task_id)
