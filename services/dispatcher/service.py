"""GenerationService: submit, read, list, cancel, delete and watch tasks.

Generate validates through the catalog, appends `TaskCreated` (quote and model snapshot captured)
and a dispatch job in one transaction, and returns the PENDING task at once; the dispatch worker
calls the provider. Submissions without an idempotency key arriving together share that
transaction (group commit, `aigen.groupcommit`). An idempotency key maps to one task per owner,
also under concurrency (the event store's request-id table decides), and never reaches the
provider twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aigen import context, errors
from aigen.eventstore.mapper import to_new_event
from aigen.eventstore.notifier import StreamNotifier
from aigen.eventstore.store import ConcurrencyError, Conn, EventStore, ManyDuplicate, NewEvent, StreamAppend
from aigen.groupcommit import GroupCommit
from aigen.modeldefs.requests import check_request, price_quote
from aigen.providers.images import InputImageError, check_input_images
from aigen.tasks import domain as task_domain
from aigen.tasks.access import ProviderAccess, snapshot_of
from aigen.tasks.domain import TaskState, evolve
from aigen.tasks.repository import TaskRepository, with_origin
from aigen.tasks.views import STATUS_TO_PROTO, task_view
from aigen.v1 import catalog_pb2_grpc, events_pb2, generation_pb2, generation_pb2_grpc
from aigen.workqueue import WorkQueue
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from services.dispatcher import domain
from services.dispatcher.projection import COLUMNS, decode_cursor, encode_cursor, task_from_row

log = logging.getLogger("aigen.dispatcher")

MAX_PAGE = 200


class _Replayed(Exception):
    """The request id had created a task before."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.stream_id = stream_id


@dataclass(frozen=True)
class _NewTask:
    task_id: str
    event: NewEvent
    request_id: str | None = None


class GenerationService(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(
        self,
        *,
        store: EventStore,
        jobs: WorkQueue,
        catalog: catalog_pb2_grpc.CatalogServiceStub,
        access: ProviderAccess,
        notifier: StreamNotifier,
        wake_worker: Callable[[], None] = lambda: None,
        hand_over: Callable[[task_domain.TaskState], None] | None = None,
    ) -> None:
        self.store = store
        self.db = store.db
        self.repo = TaskRepository(store)
        self.jobs = jobs
        self.catalog = catalog
        self.access = access
        self.notifier = notifier
        self.wake_worker = wake_worker
        self.hand_over = hand_over
        # Two submissions with one request id never share a batch: the second is a replay.
        self._creations: GroupCommit[_NewTask, None] = GroupCommit(
            self._create_many,
            self._create,
            key=lambda t: t.request_id or t.task_id,
            retry_alone=(ConcurrencyError, ManyDuplicate),
        )

    # --- Generate ------------------------------------------------------------------------------

    async def Generate(
        self, request: generation_pb2.GenerateRequest, context_: object
    ) -> generation_pb2.Task:
        owner = request.owner or "anonymous"
        self._check_request_shape(request)
        config = await self.access.dispatch_config(request.model)
        domain.check_runnable(config)
        model = config.model
        try:
            check_input_images(
                list(request.input_images),
                min_count=0,
                max_count=max(model.input_images.max, len(request.input_images)),
                max_bytes=model.input_images.max_bytes or 10 * 1024 * 1024,
                mime_types=list(model.input_images.mime_types) or ["image/png", "image/jpeg", "image/webp"],
            )
        except InputImageError as exc:
            raise errors.InvalidArgument.field(f"input_images[{exc.index}]", exc.reason) from None
        model_def, provider_def = self.access.definitions(config)
        checked = check_request(
            model_def,
            MessageToDict(request.parameters),
            prompt=request.prompt,
            number_of_outputs=request.number_of_outputs or None,
            input_images=list(request.input_images),
        )
        if checked.violations:
            raise errors.InvalidArgument(
                f"{len(checked.violations)} invalid input(s) for {model.slug}: "
                + "; ".join(f"{v.field}: {v.description}" for v in checked.violations),
                checked.violations,
            )
        parameters = Struct()
        parameters.update(checked.parameters)
        quote = price_quote(
            model_def,
            provider_def,
            checked.parameters,
            checked.number_of_outputs,
            request.prompt,
            len(request.input_images),
        )
        task_id = domain.new_task_id()
        created = events_pb2.TaskCreated(
            task_id=task_id,
            model=snapshot_of(config),
            prompt=request.prompt,
            input_images=list(request.input_images),
            number_of_outputs=checked.number_of_outputs,
            parameters=parameters,
            quote=quote,
            shot_id=request.shot_id,
            owner=owner,
            request_id=request.request_id,
            webhook_url=request.webhook_url,
            request_fingerprint=domain.fingerprint(request),
        )
        if request.HasField("deadline"):
            created.deadline.CopyFrom(request.deadline)
        key = domain.idempotency_key(owner, request.request_id) if request.request_id else None
        event = to_new_event(created)
        with context.bound(task=task_id):
            # The task shares a transaction with the others created now. A request id appended
            # before refuses the batch; each is then created alone, and the replay is told.
            try:
                await self._creations.submit(_NewTask(task_id, event, key))
            except _Replayed as replayed:
                return await self._replay_of(task_domain.task_id_of(replayed.stream_id), created)
            log.info("task created for %s (quote %s)", model.slug, quote.display)
        # The stream holds exactly TaskCreated now: its view needs no read back, and the dispatch
        # worker of this process can start from this state instead of reading the stream.
        state = evolve(TaskState(id=task_id), created, datetime.now(UTC))
        if self.hand_over is not None:
            self.hand_over(with_origin(state, event.metadata))
        self.wake_worker()
        return task_view(state)

    async def _create(self, task: _NewTask) -> None:
        async with self.db.transaction() as conn:
            # The job first, the append last: the append holds the log's position counter until
            # the commit, so nothing else runs while it is held.
            await self.jobs.enqueue(conn, task.task_id)
            result = await self.store.append(
                task_domain.stream_id(task.task_id), 0, [task.event], request_id=task.request_id, conn=conn
            )
            if result.duplicate:
                raise _Replayed(result.stream_id)  # rolls the job back: no task of that id

    async def _create_many(self, tasks: Sequence[_NewTask]) -> list[None]:
        keys = [t.task_id for t in tasks]

        async def enqueue(conn: Conn) -> None:
            await self.jobs.enqueue_many(conn, keys)

        await self.store.append_many(
            [StreamAppend(task_domain.stream_id(t.task_id), 0, [t.event], t.request_id) for t in tasks],
            alongside=enqueue,
        )
        return [None] * len(tasks)

    def _check_request_shape(self, request: generation_pb2.GenerateRequest) -> None:
        violations = []
        if not request.model:
            violations.append(errors.Violation("model", "is required (a model id or slug)"))
        if request.number_of_outputs < 0:
            violations.append(errors.Violation("number_of_outputs", "must be a positive integer"))
        if (problem := domain.webhook_problem(request.webhook_url)) is not None:
            violations.append(errors.Violation("webhook_url", problem))
        if len(request.request_id) > 200:
            violations.append(errors.Violation("request_id", "must be at most 200 characters"))
        if request.HasField("deadline") and request.deadline.ToDatetime(UTC) <= datetime.now(UTC):
            violations.append(errors.Violation("deadline", "must be in the future"))
        if violations:
            raise errors.InvalidArgument("the request is invalid", violations)

    async def _replay_of(self, task_id: str, attempted: events_pb2.TaskCreated) -> generation_pb2.Task:
        state = await self.repo.load(task_id)
        if state.created is not None and state.created.request_fingerprint != attempted.request_fingerprint:
            raise errors.FailedPrecondition(
                "this idempotency key was used for a different request",
                [errors.Violation("request_id", "already used with a different body")],
                reason="IDEMPOTENCY_KEY_REUSED",
            )
        return task_view(state)

    # --- reads ---------------------------------------------------------------------------------

    async def _owned(self, task_id: str, owner: str) -> task_domain.TaskState:
        if not task_id:
            raise errors.InvalidArgument.field("id", "is required")
        state = await self.repo.load(task_id)
        if not state.exists or (owner and state.owner != owner):
            raise errors.NotFound("task", task_id)
        return state

    async def GetTask(self, request: generation_pb2.GetTaskRequest, context_: object) -> generation_pb2.Task:
        return task_view(await self._owned(request.id, request.owner))

    async def ListTasks(
        self, request: generation_pb2.ListTasksRequest, context_: object
    ) -> generation_pb2.ListTasksResponse:
        page_size = request.page_size or 50
        if not 0 < page_size <= MAX_PAGE:
            raise errors.InvalidArgument.field("page_size", f"must be between 1 and {MAX_PAGE}")
        where = ["true"]
        params: list[object] = []
        if request.statuses:
            names = []
            for s in request.statuses:
                status = {v: k for k, v in STATUS_TO_PROTO.items()}.get(s)
                if status is None:
                    raise errors.InvalidArgument.field("statuses", f"unknown status {s}")
                names.append(status.value)
            where.append("status = ANY(%s)")
            params.append(names)
        if request.model:
            where.append("(model_slug = %s OR model_id = %s)")
            params += [request.model, request.model]
        if request.provider:
            where.append("provider_slug = %s")
            params.append(request.provider)
        if request.shot_id:
            where.append("shot_id = %s")
            params.append(request.shot_id)
        if request.owner:
            where.append("owner = %s")
            params.append(request.owner)
        if request.HasField("created_after"):
            where.append("created_at >= %s")
            params.append(request.created_after.ToDatetime(UTC))
        if request.HasField("created_before"):
            where.append("created_at < %s")
            params.append(request.created_before.ToDatetime(UTC))
        if not request.include_deleted:
            where.append("deleted_at IS NULL")
        if request.page_token:
            cursor = decode_cursor(request.page_token)
            if cursor is None:
                raise errors.InvalidArgument.field("page_token", "is not a token this service issued")
            where.append("(created_at, task_id) < (%s, %s)")
            params += [cursor[0], cursor[1]]
        query = (
            f"SELECT {COLUMNS} FROM task_views WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, task_id DESC LIMIT %s"
        )
        params.append(page_size + 1)
        async with self.db.connection() as conn:
            rows = await (await conn.execute(query, params)).fetchall()
        response = generation_pb2.ListTasksResponse(tasks=[task_from_row(r) for r in rows[:page_size]])
        if len(rows) > page_size:
            last = rows[page_size - 1]
            response.next_page_token = encode_cursor(last[23], last[0])
        return response

    # --- changes -------------------------------------------------------------------------------

    async def CancelTask(
        self, request: generation_pb2.CancelTaskRequest, context_: object
    ) -> generation_pb2.Task:
        await self._owned(request.id, request.owner)

        def decide(state: task_domain.TaskState) -> list[events_pb2.TaskCancelled]:
            try:
                return [task_domain.cancel(state, request.reason, request.owner or "admin")]
            except task_domain.RuleViolation as exc:
                raise errors.FailedPrecondition(
                    f"task {state.id} cannot be cancelled: {exc}", [errors.Violation("id", str(exc))]
                ) from None

        state = await self.repo.update(request.id, decide)
        async with self.db.transaction() as conn:
            await self.jobs.remove(conn, request.id)
        return task_view(state)

    async def DeleteTask(
        self, request: generation_pb2.DeleteTaskRequest, context_: object
    ) -> generation_pb2.Task:
        await self._owned(request.id, request.owner)

        def decide(state: task_domain.TaskState) -> list[events_pb2.TaskDeleted]:
            event = task_domain.delete(state, request.owner or "admin")
            return [event] if event is not None else []

        state = await self.repo.update(request.id, decide)
        async with self.db.transaction() as conn:
            await self.jobs.remove(conn, request.id)
        return task_view(state)

    async def WatchTask(
        self, request: generation_pb2.WatchTaskRequest, context_: object
    ) -> AsyncIterator[generation_pb2.Task]:
        state = await self._owned(request.id, request.owner)
        stream = task_domain.stream_id(request.id)
        with self.notifier.subscribe(stream) as changed:
            yield task_view(state)
            while not state.terminal:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 15.0)
                changed.clear()
                newer = await self.repo.load(request.id)
                if newer.version != state.version:
                    state = newer
                    yield task_view(state)
