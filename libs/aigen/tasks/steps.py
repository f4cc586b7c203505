"""A task's next events committed together with the end of its job, shared with the other
workers' steps of the moment (group commit, see `aigen.groupcommit`).

The dispatcher's intent and outcome, the poller's completions: each is "append these events at
the version I read (and complete my job)". Done one by one that is a transaction each (BEGIN, the
job's statement, the append, COMMIT: four round trips, the log's counter held from the append to
the COMMIT). Here the steps waiting at one moment go as one pipelined transaction: the jobs'
statement, one append to all their streams, COMMIT. A step whose task moved meanwhile refuses the
batch; the steps are then written one by one and only that one gets the ConcurrencyError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from aigen.eventstore.mapper import to_new_event
from aigen.eventstore.store import ConcurrencyError, Conn, EventStore, NewEvent, StreamAppend
from aigen.groupcommit import GroupCommit
from aigen.tasks.domain import TaskState, stream_id
from aigen.tasks.repository import advanced
from aigen.workqueue import WorkQueue


@dataclass(frozen=True)
class _Step:
    stream_id: str
    expected_version: int
    events: list[NewEvent]
    complete: str | None  # the job this step ends


class TaskSteps:
    def __init__(self, store: EventStore, jobs: WorkQueue) -> None:
        self.store = store
        self.jobs = jobs
        self._group: GroupCommit[_Step, None] = GroupCommit(
            self._write_batch, self._write_one, key=lambda s: s.stream_id, retry_alone=(ConcurrencyError,)
        )

    async def commit(
        self, state: TaskState, messages: Sequence[Message], *, complete: str | None = None
    ) -> TaskState:
        """Append `messages` after `state` (and complete the job `complete`); the new state.
        Raises ConcurrencyError, with nothing written, if the task moved past `state`."""
        # The events are made here, in the caller's context: their metadata carries its
        # correlation id and trace.
        step = _Step(stream_id(state.id), state.version, [to_new_event(m) for m in messages], complete)
        await self._group.submit(step)
        return advanced(state, messages)

    async def _write_batch(self, steps: Sequence[_Step]) -> list[None]:
        done = [s.complete for s in steps if s.complete is not None]
        appends = [StreamAppend(s.stream_id, s.expected_version, s.events) for s in steps if s.events]

        async def complete(conn: Conn) -> None:
            await self.jobs.complete_many(conn, done)

        if appends:
            # The jobs first, the append last: the append holds the log's position counter until
            # the commit, which goes to the server with it.
            await self.store.append_many(appends, alongside=complete if done else None)
        else:
            async with self.store.db.connection() as conn:
                await complete(conn)
        return [None] * len(steps)

    async def _write_one(self, step: _Step) -> None:
        async with self.store.db.transaction() as conn:
            if step.complete is not None:
                await self.jobs.complete(conn, step.complete)
            if step.events:
                await self.store.append(step.stream_id, step.expected_version, step.events, conn=conn)
