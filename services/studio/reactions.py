"""Studio's reactions to task events (the `studio-tasks` consumer).

Events of one task may be handled in any order and concurrently (the consumer runs several at
once, and redeliveries come late), so a handler never trusts the event alone: under a per-task
lock it replays the task's stream from the log and writes what the whole stream says. The task's
row in `studio_tasks` (status, error, quote, actual cost) is therefore always the latest state,
and frames created for `ResultsStored` carry no task link when the task was already deleted.

- any event of a task bound to a shot → the task's row is refreshed (history, running tasks, cost);
- `ResultsStored` → one frame per result, numbered after the shot's frames, the first of each
  slot selected when the shot has none chosen there;
- `TaskDeleted` → the task's frames stay, their task link is cleared.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict

from aigen.bus.consumer import Delivery
from aigen.eventstore.mapper import decode
from aigen.eventstore.store import EventStore
from aigen.tasks.domain import TaskState, stream_id, task_id_of
from aigen.tasks.repository import TaskRepository
from aigen.tasks.views import task_view
from aigen.v1 import events_pb2

from services.studio import domain
from services.studio.messages import MEDIA_TYPES
from services.studio.repository import StudioRepository, TaskRow

log = logging.getLogger("aigen.studio")


def _shot_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None  # bound to something that is not a studio shot


def _task_of(delivery: Delivery) -> str | None:
    """The task a known task event is about; None for anything else."""
    if delivery.message is None or not delivery.envelope.stream_id.startswith("task-"):
        return None
    return task_id_of(delivery.envelope.stream_id)


def row_of(state: TaskState, shot_id: uuid.UUID) -> TaskRow:
    created = state.created
    assert created is not None
    assert state.created_at is not None
    charge = domain.usd(state.charge.usd) if state.charge is not None and state.charge.usd else None
    quoted, settled = domain.task_cost(state.status.value, domain.usd(created.quote.usd), charge)
    return TaskRow(
        task_id=state.id,
        shot_id=shot_id,
        version=state.version,
        status=state.status.value,
        deleted=state.deleted,
        quoted=quoted,
        settled=settled,
        created_at=state.created_at,
        view=task_view(state).SerializeToString(),
    )


class TaskReactions:
    def __init__(self, repo: StudioRepository, store: EventStore, *, remember: int = 50_000) -> None:
        self.repo = repo
        self.store = store
        self.tasks = TaskRepository(store)
        # Each task's shot, or None for none, as its creation named it (a fact that never
        # changes), least recent first: most tasks are submitted outside the studio, and each of
        # their events would otherwise cost a look-up or two to find that out again.
        self._shots: OrderedDict[str, uuid.UUID | None] = OrderedDict()
        self._remember = remember
        self.lookups = 0  # shot look-ups in the database, for the curious and the tests

    async def _shot_of(self, task_id: str, delivery: Delivery) -> uuid.UUID | None:
        known, shot_id = self._remembered(task_id, delivery)
        if known:
            return shot_id
        self.lookups += 1
        from_row = await self.repo.known_task_shot(task_id)
        if from_row is not None:
            return self._learnt(task_id, from_row)
        first = await self.store.read_stream(stream_id(task_id), 1, to_version=1)
        if not first:
            return None  # not in the log (yet): nothing learnt
        created = decode(first[0])
        if not isinstance(created, events_pb2.TaskCreated):
            return None
        return self._learnt(task_id, _shot_uuid(created.shot_id))

    def triage(self, delivery: Delivery) -> bool:
        """Whether the event may concern a shot (the consumer's triage, as events are fetched):
        the events of tasks known to be on none are acknowledged without further ado."""
        task_id = _task_of(delivery)
        if task_id is None:
            return False
        known, shot_id = self._remembered(task_id, delivery)
        return not known or shot_id is not None

    def _remembered(self, task_id: str, delivery: Delivery) -> tuple[bool, uuid.UUID | None]:
        """(True, the task's shot or None) when the event is its creation or the shot is
        remembered; (False, None) when only a look-up can tell."""
        if isinstance(delivery.message, events_pb2.TaskCreated):
            return True, self._learnt(task_id, _shot_uuid(delivery.message.shot_id))
        if task_id in self._shots:
            self._shots.move_to_end(task_id)
            return True, self._shots[task_id]
        return False, None

    def _learnt(self, task_id: str, shot_id: uuid.UUID | None) -> uuid.UUID | None:
        self._shots[task_id] = shot_id
        self._shots.move_to_end(task_id)
        if len(self._shots) > self._remember:
            self._shots.popitem(last=False)
        return shot_id

    async def __call__(self, delivery: Delivery) -> None:
        task_id = _task_of(delivery)
        if task_id is None:
            return
        shot_id = await self._shot_of(task_id, delivery)
        if shot_id is None:
            return
        async with delivery.transaction() as conn:
            # One task at a time: a ResultsStored and a TaskDeleted handled at once must not both
            # miss each other's effect.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('studio-task'), hashtext(%s))", (task_id,)
            )
            state = await self.tasks.load(task_id, conn=conn)
            if not state.exists:
                return
            await self.repo.upsert_task(row_of(state, shot_id), conn)
            message = delivery.message
            if isinstance(message, events_pb2.ResultsStored):
                output = MEDIA_TYPES.get(state.created.model.output_type) if state.created else None
                media = [
                    (domain.media_type_of_result(r.type, output), r.url, r.storage_key)
                    for r in message.results
                    if r.url
                ]
                frames = await self.repo.add_frames(conn, shot_id, media, None if state.deleted else task_id)
                log.info("task %s: %d frame(s) for shot %s", task_id, len(frames), shot_id)
            elif isinstance(message, events_pb2.TaskDeleted):
                unlinked = await self.repo.unlink_task(conn, task_id)
                log.info("task %s deleted: %d frame(s) unlinked", task_id, unlinked)
