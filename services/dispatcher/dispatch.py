"""The dispatch worker: calls the provider for each PENDING task, exactly once per attempt.

Per attempt: append `TaskDispatching` (the intent) → call the adapter → append the outcome:
`TaskDispatched` (the provider is working; the poller takes over), `TaskCompleted` (a synchronous
provider answered with the media), `DispatchAttemptFailed` + a later retry, `TaskFailedOver` to
an alternative provider, or `TaskFailed`.

A crash between the intent and the outcome leaves the intent without an outcome. On recovery we
cannot know whether the provider received the job, so we never resubmit blindly (that could pay
twice): an adapter that can look a job up by our reference finds it; otherwise the task fails
with DISPATCH_OUTCOME_UNKNOWN and says so. The same holds for a timeout after the request was
sent. Refusals that prove the provider did not take the job (connection refused, 429, 5xx on
create, maintenance) are retried with backoff, then failed over when the model has alternatives.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from aigen import context, errors
from aigen.eventstore.store import ConcurrencyError
from aigen.grpcx.client import call
from aigen.ops.breaker import BreakerGate, Cooling
from aigen.providers.base import BaseAdapter
from aigen.providers.registry import UnknownAdapterError, create_adapter
from aigen.providers.types import AdapterError, AdapterResult, ErrorCode, GenerationRequest, Outcome
from aigen.tasks.access import ProviderAccess, snapshot_of
from aigen.tasks.callbacks import callback_url
from aigen.tasks.domain import Status, TaskState, next_alternative
from aigen.tasks.repository import TaskRepository
from aigen.tasks.results import completed_event
from aigen.tasks.scope import task_scope
from aigen.tasks.steps import TaskSteps
from aigen.v1 import catalog_pb2, catalog_pb2_grpc, events_pb2
from aigen.workqueue import Job, WorkQueue, serve
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct

from services.dispatcher import domain

log = logging.getLogger("aigen.dispatcher")

OUTCOME_UNKNOWN = "DISPATCH_OUTCOME_UNKNOWN"
FRESH_LIMIT = 10_000  # handed-over states kept for their first claim


class Dispatcher:
    def __init__(
        self,
        *,
        repo: TaskRepository,
        jobs: WorkQueue,
        catalog: catalog_pb2_grpc.CatalogServiceStub,
        access: ProviderAccess,
        http: httpx.AsyncClient,
        secret: str,
        callback_base_url: str | None = None,
        concurrency: int = 32,
        adapter_factory: Callable[..., BaseAdapter] = create_adapter,
        on_outcome: Callable[[str, str, AdapterResult], Awaitable[None]] | None = None,
        breaker: BreakerGate | None = None,
    ) -> None:
        self.repo = repo
        self.db = repo.store.db
        self.jobs = jobs
        self.catalog = catalog
        self.access = access
        self.http = http
        self.secret = secret
        self.callback_base_url = callback_base_url
        self.concurrency = concurrency
        self.adapter_factory = adapter_factory
        self.on_outcome = on_outcome
        self.breaker = breaker
        self._wake = asyncio.Event()
        self.dispatched = 0
        # States of tasks this process just created, for their first claim (least recent first).
        self._fresh: OrderedDict[str, TaskState] = OrderedDict()
        # Intents and outcomes of all workers, committed together (group commit).
        self._steps = TaskSteps(repo.store, jobs)

    def wake(self) -> None:
        self._wake.set()

    def hand_over(self, state: TaskState) -> None:
        """A task this process just created: its first dispatch starts from this state instead of
        reading the stream. A state at a version is a fact; if the stream moved on meanwhile (a
        cancel), the intent's append meets a ConcurrencyError before any provider call, and the
        job is retried from the stream."""
        self._fresh[state.id] = state
        if len(self._fresh) > FRESH_LIMIT:
            self._fresh.popitem(last=False)

    async def run(self, stop: asyncio.Event) -> None:
        await serve(self.jobs, self._guarded, stop, concurrency=self.concurrency, wake=self._wake)

    async def _guarded(self, job: Job) -> None:
        with context.bound(task=job.key):
            try:
                async with self.jobs.held(job.key):
                    await self.process(job)
            except ConcurrencyError:
                # Someone else changed the task meanwhile (a cancel, a delete): look again soon.
                await self.jobs.release(job.key, delay_s=0.2)
            except Exception:
                log.exception("dispatch of task %s failed unexpectedly; will retry", job.key)
                await self.jobs.release(job.key, delay_s=min(60.0, 2.0**job.claims))

    async def process(self, job: Job) -> None:
        state = self._fresh.pop(job.key, None) or await self.repo.load(job.key)
        with task_scope(state, "dispatch"):
            await self._process(job, state)

    async def _process(self, job: Job, state: TaskState) -> None:
        if not state.exists or state.deleted or state.status is not Status.PENDING:
            await self._finish(job, state, [])
            return
        created = state.created
        assert created is not None and state.model is not None
        if created.HasField("deadline") and created.deadline.ToSeconds() <= _now_s():
            await self._finish(
                job,
                state,
                [
                    events_pb2.TaskCancelled(
                        task_id=state.id, reason="deadline passed before dispatch", requested_by="system"
                    )
                ],
            )
            return
        config = await self.access.dispatch_config(state.model.model_slug)
        try:
            adapter = self.adapter_factory(self.access.model_config(config, state.model), self.http)
        except UnknownAdapterError as exc:
            await self._finish(job, state, [self._failed(state, "UNKNOWN_ADAPTER", str(exc), False)])
            return
        if state.dispatch_in_flight:
            await self._recover(job, state, adapter)
            return
        if self.breaker is not None and (cooling := await self.breaker.cooling(state.model.provider_slug)):
            await self._avoid(job, state, cooling)
            return
        intent = events_pb2.TaskDispatching(
            task_id=state.id, attempt=state.dispatch_attempts + 1, model=state.model
        )
        state = await self._steps.commit(state, [intent])
        request = self._request(state, adapter)
        result = await adapter.dispatch(request)
        await self._record(job, state, result, callback_requested=request.callback_url is not None)

    def _request(self, state: TaskState, adapter: BaseAdapter) -> GenerationRequest:
        created = state.created
        assert created is not None and state.model is not None
        url = None
        if self.callback_base_url and adapter.wants_callback():
            url = callback_url(self.callback_base_url, state.model.provider_slug, self.secret, state.id)
        return GenerationRequest(
            prompt=created.prompt,
            input_images=tuple(created.input_images),
            number_of_outputs=created.number_of_outputs or 1,
            parameters=dict(state.parameters or {}),
            callback_url=url,
            reference=state.id,
        )

    async def _record(
        self, job: Job, state: TaskState, result: AdapterResult, *, callback_requested: bool = False
    ) -> None:
        assert state.model is not None
        if self.on_outcome is not None:
            await self.on_outcome(state.id, state.model.provider_slug, result)
        if result.outcome is Outcome.SUCCESS:
            async with self.db.transaction() as conn:
                event = await completed_event(conn, state, result, source="dispatch")
                await self.jobs.complete(conn, job.key)
                await self.repo.append(state, [event], conn=conn)  # last: it holds the log's counter
            self.dispatched += 1
            log.info("completed synchronously by %s", state.model.provider_slug)
            return
        if result.outcome is Outcome.PROCESSING and result.provider_task_id:
            dispatched = events_pb2.TaskDispatched(
                task_id=state.id,
                provider_task_id=result.provider_task_id,
                model=state.model,
                callback_requested=callback_requested,
            )
            await self._finish(job, state, [dispatched])
            self.dispatched += 1
            log.info("dispatched to %s as %s", state.model.provider_slug, result.provider_task_id)
            return
        error = result.error or AdapterError(
            ErrorCode.PROVIDER_BAD_RESPONSE,
            "the provider answered without a task id or results",
            retryable=False,
        )
        await self._handle_error(job, state, error)

    async def _handle_error(self, job: Job, state: TaskState, error: AdapterError) -> None:
        assert state.model is not None
        if error.code is ErrorCode.TIMEOUT:
            await self._finish(
                job,
                state,
                [
                    self._failed(
                        state,
                        OUTCOME_UNKNOWN,
                        f"{state.model.provider_slug} did not answer in time after receiving the request; "
                        "not resubmitted, to avoid paying twice — check the provider's dashboard or retry",
                        False,
                    )
                ],
            )
            return
        attempt_failed = events_pb2.DispatchAttemptFailed(
            task_id=state.id,
            attempt=state.dispatch_attempts,
            code=error.code.value,
            message=error.message,
            retryable=error.retryable,
            provider_slug=state.model.provider_slug,
            retry_after_s=error.retry_after or 0.0,
        )
        plan = domain.plan_retry(state.model_attempts, error.retryable, error.retry_after)
        if plan.retry:
            log.warning(
                "%s refused (%s: %s); retrying in %.1fs",
                state.model.provider_slug,
                error.code,
                error.message,
                plan.delay_s,
            )
            async with self.db.transaction() as conn:
                await self.jobs.reschedule(conn, job.key, delay_s=plan.delay_s)
                await self.repo.append(state, [attempt_failed], conn=conn)
            return
        if error.provider_side:
            failover = await self._failover_event(state, error)
            if failover is not None:
                log.warning("failing over from %s to %s", failover.from_model_slug, failover.to_model_slug)
                async with self.db.transaction() as conn:
                    await self.jobs.reschedule(conn, job.key, delay_s=0.0)
                    await self.repo.append(state, [attempt_failed, failover], conn=conn)
                return
        await self._finish(
            job,
            state,
            [attempt_failed, self._failed(state, error.code.value, error.message, error.retryable)],
        )

    async def _failover_event(
        self, state: TaskState, error: AdapterError
    ) -> events_pb2.TaskFailedOver | None:
        """The next alternative that is runnable and accepts the request, as an event."""
        assert state.model is not None and state.created is not None
        probe = state
        while (slug := next_alternative(probe)) is not None:
            probe = _mark_tried(probe, slug)
            try:
                config = await self.access.dispatch_config(slug)
                if self.breaker is not None and await self.breaker.cooling(config.provider.slug):
                    log.info("alternative %s cannot take the task: its provider is cooled down", slug)
                    continue
                domain.check_runnable(config)
                parameters = domain.carry_parameters(dict(state.parameters or {}), config.model)
                validation = await self._validate_for(config, state, parameters)
            except errors.DomainError as exc:
                log.info("alternative %s cannot take the task: %s", slug, exc)
                continue
            return events_pb2.TaskFailedOver(
                task_id=state.id,
                from_model_slug=state.model.model_slug,
                to_model_slug=config.model.slug,
                reason=f"{error.code.value}: {error.message}",
                model=snapshot_of(config),
                parameters=validation.parameters,
            )
        return None

    async def _validate_for(
        self, config: catalog_pb2.DispatchConfig, state: TaskState, parameters: dict[str, Any]
    ) -> catalog_pb2.ValidateParametersResponse:
        assert state.created is not None
        request = catalog_pb2.ValidateParametersRequest(
            model=config.model.slug,
            parameters=_struct(parameters),
            prompt=state.created.prompt,
            number_of_outputs=state.created.number_of_outputs,
            input_images=list(state.created.input_images),
        )
        try:
            return await call(self.catalog.ValidateParameters, request)
        except errors.InvalidArgument as exc:
            # Drop what the alternative refuses and let its defaults apply; once.
            bad = {v.field.removeprefix("parameters.") for v in exc.violations}
            if any(not v.field.startswith("parameters.") for v in exc.violations):
                raise
            request.parameters.CopyFrom(_struct({k: v for k, v in parameters.items() if k not in bad}))
            return await call(self.catalog.ValidateParameters, request)

    async def _avoid(self, job: Job, state: TaskState, cooling: Cooling) -> None:
        """The provider is cooled down: fail over without calling it, or refuse clearly."""
        error = AdapterError(ErrorCode.PROVIDER_UNAVAILABLE, cooling.message(), retryable=True)
        failover = await self._failover_event(state, error)
        if failover is not None:
            log.warning("%s is cooled down; failing over to %s", cooling.provider, failover.to_model_slug)
            async with self.db.transaction() as conn:
                await self.jobs.reschedule(conn, job.key, delay_s=0.0)
                await self.repo.append(state, [failover], conn=conn)
            return
        log.warning("%s is cooled down and no alternative can take the task", cooling.provider)
        await self._finish(job, state, [self._failed(state, error.code.value, error.message, True)])

    async def _recover(self, job: Job, state: TaskState, adapter: BaseAdapter) -> None:
        """An intent without an outcome: the process died mid-call. Ask, never resubmit."""
        finder = getattr(adapter, "find_by_reference", None)
        found: AdapterResult | None = await finder(state.id) if finder is not None else None
        if found is not None and found.outcome is not Outcome.ERROR:
            log.warning("recovered an interrupted dispatch: the provider has the job")
            await self._record(job, state, found)
            return
        assert state.model is not None
        await self._finish(
            job,
            state,
            [
                self._failed(
                    state,
                    OUTCOME_UNKNOWN,
                    f"the dispatch to {state.model.provider_slug} was interrupted after the request may have "
                    "been sent; it was not resubmitted, to avoid paying twice",
                    False,
                )
            ],
        )

    def _failed(self, state: TaskState, code: str, message: str, retryable: bool) -> events_pb2.TaskFailed:
        return events_pb2.TaskFailed(
            task_id=state.id,
            code=code,
            message=message,
            retryable=retryable,
            provider_slug=state.model.provider_slug if state.model else "",
            stage="dispatch",
        )

    async def _finish(self, job: Job, state: TaskState, messages: list[Message]) -> None:
        await self._steps.commit(state, messages, complete=job.key)


def _mark_tried(state: TaskState, slug: str) -> TaskState:
    from dataclasses import replace

    return replace(state, failed_over_from=(*state.failed_over_from, slug))


def _struct(values: dict[str, Any]) -> Struct:
    s = Struct()
    s.update(values)
    return s


def _now_s() -> int:
    import time

    return int(time.time())
