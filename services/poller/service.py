"""The poller: owns the schedule of tasks waiting on their provider, and their callbacks.

- `Scheduler` (a NATS consumer of task events) adds a poll job when a task is dispatched and drops
  it when the task ends, is cancelled or deleted.
- `PollWorker` claims due jobs (leases, SKIP LOCKED: replicas share the work, no task is checked
  by two at once), checks the provider, and appends the outcome and the next schedule in one
  transaction. A restart or kill -9 loses nothing: unfinished leases expire and are claimed again.
- `DeliverCallback` (gRPC, called by the gateway) completes a task at once when the provider
  calls back, and removes its pending checks. Replays find the task settled and change nothing.
- After a timeout failure one late reconciliation check runs (default after an hour), so media
  the provider made and billed after our deadline is recorded instead of lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import httpx
from aigen import context, errors, metrics
from aigen.bus.consumer import AlreadyProcessed, Delivery
from aigen.eventstore.store import ConcurrencyError
from aigen.providers.base import BaseAdapter
from aigen.providers.registry import create_adapter
from aigen.providers.types import AdapterResult, CallbackRequest, ErrorCode, Outcome
from aigen.tasks.access import ProviderAccess
from aigen.tasks.callbacks import task_of
from aigen.tasks.domain import TaskState, may_accept_late_completion
from aigen.tasks.repository import TaskRepository
from aigen.tasks.results import completed_event
from aigen.tasks.scope import task_scope
from aigen.tasks.steps import TaskSteps
from aigen.v1 import events_pb2, generation_pb2, generation_pb2_grpc
from aigen.workqueue import Job, WorkQueue, serve
from google.protobuf.message import Message

from services.poller import domain
from services.poller.fold import StreamFold
from services.poller.ratelimit import RateLimiter

log = logging.getLogger("aigen.poller")

RECONCILE_SUFFIX = ":reconcile"
SLOT_WAIT_S = 0.5  # longer waits for a rate-limit slot give the worker back
STATE_CACHE_SIZE = 100_000
ADAPTER_CACHE_SIZE = 1_000
TERMINAL_EVENTS = (events_pb2.TaskCompleted, events_pb2.TaskCancelled, events_pb2.TaskDeleted)
# Completions whose own transaction already ended the task's checks: a poll or a reconciliation
# completed its job, a synchronous result never had one. (A callback's completion can come before
# the dispatch was scheduled here, so its delete is still needed.)
JOB_ENDED_WITH_COMPLETION = frozenset({"poll", "reconcile", "dispatch"})
# Events after which the schedule consumer's fold has nothing more to do for a task.
FOLLOWED_UNTIL = (events_pb2.TaskDispatched, events_pb2.TaskFailed, *TERMINAL_EVENTS)


class PollSettings:
    def __init__(
        self,
        *,
        reconcile_after_s: float | None = 3600.0,
        interval_override: float | None = None,
        attempts_override: int | None = None,
        duration_override: float | None = None,
        replicas: int = 1,
        respect_rate_limits: bool = True,
    ) -> None:
        self.replicas = replicas
        self.respect_rate_limits = respect_rate_limits
        self.reconcile_after_s = reconcile_after_s
        self.interval_override = interval_override
        self.attempts_override = attempts_override
        self.duration_override = duration_override


class Scheduler:
    """React to task events: start polling dispatched tasks, stop polling finished ones.

    `triage` sees every task event in delivery order, before any handler runs (the consumer calls
    it as events are fetched), and says which need the handler; with `fold`, the events seen there
    also build each task's state, handed to `prime` (the worker's cache) when the task is
    dispatched: its first check then reads nothing. Most events need nothing more."""

    def __init__(
        self,
        jobs: WorkQueue,
        settings: PollSettings,
        *,
        fold: StreamFold | None = None,
        prime: Callable[[TaskState], None] | None = None,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.jobs = jobs
        self.settings = settings
        self.fold = fold
        self.prime = prime
        self.wake = wake

    def triage(self, delivery: Delivery) -> bool:
        message = delivery.message
        if self.fold is not None:
            folded = self.fold.observe(delivery.envelope, message)
            if isinstance(message, FOLLOWED_UNTIL):
                self.fold.take(delivery.envelope.stream_id)  # handed over below, or finished
            if isinstance(message, events_pb2.TaskDispatched) and folded is not None and self.prime:
                self.prime(folded)
        return isinstance(message, events_pb2.TaskDispatched) or bool(self._ended_jobs(message))

    async def __call__(self, delivery: Delivery) -> None:
        message = delivery.message
        if isinstance(message, events_pb2.TaskDispatched):
            await self._schedule(delivery, message)
            self.wake()
            return
        # Ending checks is a delete, harmless to repeat: no tracking row needed, and the statements go
        # to the server together.
        keys = self._ended_jobs(message)
        if keys:
            async with delivery.db.connection() as conn, conn.pipeline():
                for key in keys:
                    await self.jobs.remove(conn, key)

    async def _schedule(self, delivery: Delivery, message: events_pb2.TaskDispatched) -> None:
        polling = message.model.polling
        plan = domain.plan_for(
            started_at=delivery.envelope.time.ToSeconds() + delivery.envelope.time.nanos / 1e9,
            interval_s=polling.interval_s,
            max_attempts=polling.max_attempts,
            max_duration_s=polling.max_duration_s,
            callback=message.callback_requested,
            interval_override=self.settings.interval_override,
            attempts_override=self.settings.attempts_override,
            duration_override=self.settings.duration_override,
        )
        delay = max(0.0, plan.started_at + domain.first_delay(plan) - time.time())
        new = await self.jobs.enqueue_for_event(
            delivery.consumer, delivery.event_id, message.task_id, delay_s=delay, state=plan.to_state()
        )
        if not new:
            raise AlreadyProcessed

    @staticmethod
    def _ended_jobs(message: Message | None) -> list[str]:
        """The jobs an event ends: a finished task's checks (and reconciliation)."""
        if isinstance(message, TERMINAL_EVENTS):
            if isinstance(message, events_pb2.TaskCompleted) and message.source in JOB_ENDED_WITH_COMPLETION:
                return []
            if isinstance(message, events_pb2.TaskCompleted):
                return [message.task_id]
            return [message.task_id, message.task_id + RECONCILE_SUFFIX]
        if isinstance(message, events_pb2.TaskFailed) and message.stage != "timeout":
            return [message.task_id]
        return []


class PollWorker:
    def __init__(
        self,
        *,
        repo: TaskRepository,
        jobs: WorkQueue,
        access: ProviderAccess,
        http: httpx.AsyncClient,
        settings: PollSettings | None = None,
        concurrency: int = 64,
        prefetch: int | None = None,
        adapter_factory: Callable[..., BaseAdapter] = create_adapter,
        clock: Callable[[], float] = time.time,
        on_outcome: Callable[[str, str, AdapterResult], Awaitable[None]] | None = None,
    ) -> None:
        self.repo = repo
        self.db = repo.store.db
        self.jobs = jobs
        # Outcomes of all workers' checks, committed together (group commit).
        self.steps = TaskSteps(repo.store, jobs)
        self.access = access
        self.http = http
        self.settings = settings or PollSettings()
        self.concurrency = concurrency
        # Jobs claimed ahead of the workers, in batches: one claim round trip per batch rather
        # than one per finished check.
        self.prefetch = concurrency if prefetch is None else prefetch
        self.adapter_factory = adapter_factory
        self.clock = clock
        self.on_outcome = on_outcome
        self.limiter = RateLimiter(self.settings.replicas, enabled=self.settings.respect_rate_limits)
        self.checks = 0
        self.stream_reads = 0  # tasks read from the log before a check (not in the cache)
        self._states: OrderedDict[str, TaskState] = OrderedDict()
        # Adapters are stateless: one per (catalog config, task contract) serves every check of
        # the tasks that share them, instead of a config and an adapter built per check.
        self._adapters: dict[tuple[str, str, int, bytes], tuple[object, BaseAdapter]] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        await serve(
            self.jobs,
            self._guarded,
            stop,
            concurrency=self.concurrency,
            wake=self._wake,
            on_claim=self._claimed,
            prefetch=self.prefetch,
        )

    def _claimed(self, job: Job) -> None:
        """Called when a worker starts the job: the lag counts the time it waited in hand."""
        waited = time.monotonic() - job.fetched_at if job.fetched_at else 0.0
        lag = max(0.0, (job.claimed_at - job.due_at).total_seconds() + waited)
        metrics.POLL_LAG.observe(lag)

    async def _guarded(self, job: Job) -> None:
        task_id = job.key.removesuffix(RECONCILE_SUFFIX)
        with context.bound(task=task_id):
            try:
                async with self.jobs.held(job.key):
                    if job.key.endswith(RECONCILE_SUFFIX):
                        await self.reconcile(job, task_id)
                    else:
                        await self.check(job, task_id)
            except ConcurrencyError:
                # A callback or a cancel got there first; look again shortly, at the fresh task.
                self.forget(task_id)
                await self.jobs.release(job.key, delay_s=0.1)
            except Exception:
                log.exception("poll of task %s failed unexpectedly", task_id)
                await self.jobs.release(job.key, delay_s=min(60.0, 2.0**job.claims))

    async def _adapter(self, state: TaskState) -> BaseAdapter:
        snapshot = state.model
        assert snapshot is not None
        config = await self.access.dispatch_config(snapshot.model_slug)
        key = (
            snapshot.model_slug,
            snapshot.adapter_name,
            snapshot.output_type,
            snapshot.adapter_settings.SerializeToString(deterministic=True),
        )
        hit = self._adapters.get(key)
        # The same config object: the catalog's answer has not been refreshed since (a key or an
        # endpoint change arrives with a new one, within the access cache's few seconds).
        if hit is not None and hit[0] is config:
            return hit[1]
        adapter = self.adapter_factory(self.access.model_config(config, snapshot), self.http)
        if len(self._adapters) >= ADAPTER_CACHE_SIZE:
            self._adapters.clear()
        self._adapters[key] = (config, adapter)
        return adapter

    async def check(self, job: Job, task_id: str) -> None:
        state = await self._state(task_id)
        with task_scope(state, "poll"):
            await self._check(job, state)

    async def _state(self, task_id: str) -> TaskState:
        """The task as this worker last saw it. Checks that bring no news (most of them) need
        no read of the stream; a stale state shows up as a ConcurrencyError on the next append,
        after which the task is read afresh — and cancels and deletes remove the job anyway."""
        cached = self._states.get(task_id)
        if cached is not None:
            self._states.move_to_end(task_id)
            return cached
        state = await self.repo.load(task_id)
        self.stream_reads += 1
        self._remember(state)
        return state

    def cached(self, task_id: str) -> TaskState | None:
        return self._states.get(task_id)

    def prime(self, state: TaskState) -> None:
        """A task's state from elsewhere (the schedule consumer's fold), unless one is cached."""
        if state.id not in self._states:
            self._remember(state)

    def _remember(self, state: TaskState) -> None:
        self._states[state.id] = state
        self._states.move_to_end(state.id)
        while len(self._states) > STATE_CACHE_SIZE:
            self._states.popitem(last=False)

    def forget(self, task_id: str) -> None:
        self._states.pop(task_id, None)

    async def _check(self, job: Job, state: TaskState) -> None:
        task_id = state.id
        plan = domain.PollPlan.from_state(job.state)
        if not state.awaiting_provider:
            await self._settle(job, state, [])
            return
        now = self.clock()
        created = state.created
        assert created is not None and state.model is not None
        if created.HasField("deadline") and created.deadline.ToSeconds() <= now:
            cancelled = events_pb2.TaskCancelled(
                task_id=task_id, reason="deadline passed", requested_by="system"
            )
            await self._settle(job, state, [cancelled])
            return
        limit = domain.exhausted(plan, job.attempts, now)
        if limit is not None:
            failed = events_pb2.TaskFailed(
                task_id=task_id,
                code=limit.code,
                message=limit.message,
                retryable=False,
                provider_slug=state.model.provider_slug,
                stage="timeout",
            )
            await self._settle(job, state, [failed], reconcile=True)
            log.warning("%s", limit.message)
            return
        adapter = await self._adapter(state)
        if "slot" not in job.state:
            config = await self.access.dispatch_config(state.model.model_slug)
            wait = self.limiter.book(state.model.provider_slug, config.provider.status_per_second)
            if wait > SLOT_WAIT_S:
                # The provider's rate is spoken for until then: come back at the booked slot.
                await self.jobs.reschedule_soon(
                    job.key, delay_s=wait, state={**job.state, "slot": now + wait}, count_attempt=False
                )
                return
            if wait > 0:
                await asyncio.sleep(wait)
        result = await adapter.check_status(state.provider_task_id)
        self.checks += 1
        if self.on_outcome is not None:
            await self.on_outcome(task_id, state.model.provider_slug, result)
        await self._apply(job, state, plan, result, source="poll")

    async def _apply(
        self, job: Job, state: TaskState, plan: domain.PollPlan, result: AdapterResult, *, source: str
    ) -> None:
        assert state.model is not None
        if result.outcome is Outcome.SUCCESS:
            if any(item.data is not None for item in result.results):
                # Bytes are staged in the same transaction as the event that points at them.
                async with self.db.transaction() as conn:
                    await self.jobs.complete(conn, job.key)
                    event = await completed_event(conn, state, result, source=source)
                    # Appends go last: the log's position counter stays locked until the commit.
                    await self.repo.append(state, [event], conn=conn)
            else:
                event = await completed_event(None, state, result, source=source)
                await self.steps.commit(state, [event], complete=job.key)
            self.forget(state.id)
            log.info("provider finished (%d results)", len(result.results))
            return
        if domain.is_transient(result):
            assert result.error is not None
            errors_in_row = plan.errors + 1
            if errors_in_row >= domain.MAX_CONSECUTIVE_ERRORS:
                failed = events_pb2.TaskFailed(
                    task_id=state.id,
                    code="POLLING_FAILED",
                    message=f"Polling failed: {result.error.message}",
                    retryable=False,
                    provider_slug=state.model.provider_slug,
                    stage="poll",
                )
                await self._settle(job, state, [failed])
                return
            delay = result.error.retry_after or domain.next_delay(plan, self.clock())
            new_plan = domain.PollPlan(**{**plan.to_state(), "errors": errors_in_row})
            await self.jobs.reschedule_soon(job.key, delay_s=delay, state=new_plan.to_state())
            log.warning("check failed (%d in a row): %s", errors_in_row, result.error.message)
            return
        if result.outcome is Outcome.ERROR:
            error = result.error
            failed = events_pb2.TaskFailed(
                task_id=state.id,
                code=error.code.value if error else ErrorCode.GENERATION_FAILED.value,
                message=error.message if error else "the provider reported a failure",
                retryable=False,
                provider_slug=state.model.provider_slug,
                stage=source,
            )
            await self._settle(job, state, [failed])
            return
        # Still working.
        progress = domain.rounded_progress(result.progress)
        messages: list[Message] = []
        new_plan = domain.PollPlan(**{**plan.to_state(), "errors": 0})
        if progress is not None and progress != plan.progress and progress > state.progress:
            messages.append(
                events_pb2.TaskProgressed(
                    task_id=state.id, progress=progress, provider_state=result.provider_state or ""
                )
            )
            new_plan = domain.PollPlan(**{**new_plan.to_state(), "progress": progress})
        delay = domain.next_delay(new_plan, self.clock())
        if not messages:
            # Most checks: no news, only the next due time. One statement, grouped with the
            # other workers' (see WorkQueue.reschedule_soon); nothing else has to commit with it.
            await self.jobs.reschedule_soon(job.key, delay_s=delay, state=new_plan.to_state())
            return
        async with self.db.transaction() as conn:
            await self.jobs.reschedule(conn, job.key, delay_s=delay, state=new_plan.to_state())
            self._remember(await self.repo.append(state, messages, conn=conn))

    async def _settle(
        self, job: Job, state: TaskState, messages: list[Message], *, reconcile: bool = False
    ) -> None:
        self.forget(state.id)
        reconcile_after_s = self.settings.reconcile_after_s if reconcile else None
        if reconcile_after_s is None:
            await self.steps.commit(state, messages, complete=job.key)
            return
        async with self.db.transaction() as conn:
            await self.jobs.complete(conn, job.key)
            await self.jobs.enqueue(
                conn, state.id + RECONCILE_SUFFIX, delay_s=reconcile_after_s, state={"kind": "reconcile"}
            )
            if messages:
                await self.repo.append(state, messages, conn=conn)

    async def reconcile(self, job: Job, task_id: str) -> None:
        """One late look after a timeout: record a late success rather than lose paid media."""
        state = await self.repo.load(task_id)
        with task_scope(state, "reconcile"):
            await self._reconcile(job, state)

    async def _reconcile(self, job: Job, state: TaskState) -> None:
        if not may_accept_late_completion(state):
            await self._settle(job, state, [])
            return
        adapter = await self._adapter(state)
        result = await adapter.check_status(state.provider_task_id)
        if result.outcome is Outcome.SUCCESS:
            async with self.db.transaction() as conn:
                event = await completed_event(conn, state, result, source="reconcile", late=True)
                await self.repo.append(state, [event], conn=conn)
                await self.jobs.complete(conn, job.key)
            log.warning("late success after the timeout: recorded (and charged) now")
            return
        await self._settle(job, state, [])

    async def deliver_callback(
        self, provider: str, token: str, headers: dict[str, str], body: bytes, secret: str
    ) -> tuple[str, bool]:
        task_id = task_of(secret, token)
        if task_id is None:
            raise errors.NotFound("callback", token[:12] + "…", "unknown callback token")
        with context.bound(task=task_id):
            state = await self.repo.load(task_id)
            if not state.exists or state.model is None:
                raise errors.NotFound("task", task_id)
            if provider != state.model.provider_slug:
                raise errors.InvalidArgument.field(
                    "provider", f"this task is served by {state.model.provider_slug}"
                )
            adapter = await self._adapter(state)
            result = adapter.parse_callback(
                CallbackRequest(headers={k.lower(): v for k, v in headers.items()}, body=body)
            )
            if result.error is not None and result.error.code is ErrorCode.CALLBACK_REJECTED:
                raise errors.Unauthenticated(f"callback rejected: {result.error.message}")
            if result.error is not None and result.error.code is ErrorCode.PROVIDER_BAD_RESPONSE:
                raise errors.InvalidArgument.field("body", result.error.message)
            if not state.awaiting_provider:
                return task_id, False  # a replay, or news about a settled task: harmless
            await self._apply_callback(state, result)
            return task_id, True

    async def _apply_callback(self, state: TaskState, result: AdapterResult) -> None:
        """The outcome and the end of the task's checks commit together (or neither)."""
        assert state.model is not None
        messages: list[Message] = []
        async with self.db.transaction() as conn:
            if result.outcome is Outcome.SUCCESS:
                messages.append(await completed_event(conn, state, result, source="callback"))
            elif result.outcome is Outcome.ERROR and result.error is not None:
                messages.append(
                    events_pb2.TaskFailed(
                        task_id=state.id,
                        code=result.error.code.value,
                        message=result.error.message,
                        provider_slug=state.model.provider_slug,
                        stage="callback",
                    )
                )
            else:
                # A progress callback: note it, keep polling.
                progress = domain.rounded_progress(result.progress)
                if progress is not None and progress > state.progress:
                    messages.append(events_pb2.TaskProgressed(task_id=state.id, progress=progress))
                await self.repo.append(state, messages, conn=conn)
                return
            await self.repo.append(state, messages, conn=conn)
            await self.jobs.remove(conn, state.id)


class PollerService(generation_pb2_grpc.PollerServiceServicer):
    def __init__(self, worker: PollWorker, secret: str) -> None:
        self.worker = worker
        self.secret = secret

    async def DeliverCallback(
        self, request: generation_pb2.DeliverCallbackRequest, context_: object
    ) -> generation_pb2.DeliverCallbackResponse:
        task_id, accepted = await self.worker.deliver_callback(
            request.provider, request.token, dict(request.headers), request.body, self.secret
        )
        return generation_pb2.DeliverCallbackResponse(task_id=task_id, accepted=accepted)
