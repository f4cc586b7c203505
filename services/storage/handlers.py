"""On TaskCompleted: copy the results, then append ResultsStored — once.

The copying happens before any transaction (it can take minutes; the consumer keeps the message
alive meanwhile). The append then commits together with the consumer's tracking row, against
the version just loaded: a concurrent change to the task makes the append fail, and the
decision is taken again on the fresh state. A crash anywhere before that commit leaves no
ResultsStored and no tracking row, so the redelivered event copies again onto the same keys.
"""

from __future__ import annotations

import logging

from aigen import context
from aigen.bus.consumer import AlreadyProcessed, Delivery
from aigen.eventstore.mapper import current_metadata, to_new_event
from aigen.eventstore.store import ConcurrencyError, EventStore
from aigen.tasks.domain import stream_id
from aigen.tasks.repository import TaskRepository
from aigen.v1 import events_pb2

from services.storage import domain
from services.storage.repository import drop_staged
from services.storage.transfer import Copy, ResultCopier

log = logging.getLogger("aigen.storage")


class ResultsChanged(Exception):
    """The task's provider results are not the ones just copied; the delivery starts over."""


class TaskCompletedHandler:
    def __init__(
        self, *, events: EventStore, copier: ResultCopier, max_deliver: int, append_attempts: int = 8
    ) -> None:
        self.events = events
        self.repo = TaskRepository(events)
        self.copier = copier
        self.max_deliver = max_deliver
        self.append_attempts = append_attempts

    async def __call__(self, delivery: Delivery) -> None:
        message = delivery.message
        if not isinstance(message, events_pb2.TaskCompleted):
            return
        with context.bound(task=message.task_id):
            if await delivery.already_processed():
                raise AlreadyProcessed
            state = await self.repo.load(message.task_id)
            why = domain.skip_reason(state)
            if why is not None:
                log.info("nothing to store: %s", why)
                return
            copies = await self.copier.copy_all(state, last_chance=delivery.num_delivered >= self.max_deliver)
            await self.record(delivery, message.task_id, state.provider_results, copies)

    async def record(
        self,
        delivery: Delivery,
        task_id: str,
        copied_from: tuple[events_pb2.ProviderResult, ...],
        copies: list[Copy],
    ) -> None:
        """Append ResultsStored with the tracking row; drop the staged bytes it made redundant."""
        event = events_pb2.ResultsStored(task_id=task_id, results=[c.result for c in copies])
        staged = [c.staged for c in copies if c.staged is not None]
        for _ in range(self.append_attempts):
            try:
                async with delivery.transaction() as conn:
                    state = await self.repo.load(task_id, conn=conn)
                    why = domain.skip_reason(state)
                    if why is not None:
                        log.info("not recording the copies: %s", why)
                        return
                    if state.provider_results != copied_from:
                        raise ResultsChanged(f"task {task_id}: the provider results changed while copying")
                    new = to_new_event(event, metadata=current_metadata(causation_id=str(delivery.event_id)))
                    await self.events.append(stream_id(task_id), state.version, [new], conn=conn)
                    await drop_staged(conn, staged)
            except ConcurrencyError:
                log.info("the task changed while recording its results; deciding again")
                continue
            stored = sum(1 for c in copies if c.result.stored)
            log.info("results stored: %d of %d in the object store", stored, len(copies))
            return
        raise ConcurrencyError(stream_id(task_id), -1, -1)
