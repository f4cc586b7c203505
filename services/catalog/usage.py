"""Usage count per model: a projection of task events (the seed counts successful generations).

A task counts once, for the model that served it (after a failover, the alternative), when the
provider delivered its results (`TaskCompleted`, late completions included).

A batch is worked out in memory and written in a few statements at its end (the rows of tasks
completed now that started earlier, read and removed at once; which model serves which task; tasks
no longer waiting; counts added), instead of a statement per event.
"""

from __future__ import annotations

from collections import Counter

from aigen.eventstore.store import Conn, RecordedEvent
from aigen.projections.runner import Projection
from aigen.v1 import events_pb2
from google.protobuf.message import Message


class ModelUsageProjection(Projection):
    name = "model-usage"
    tables = ("catalog_model_usage", "catalog_usage_tasks")
    types = frozenset(
        cls.DESCRIPTOR.full_name
        for cls in (
            events_pb2.TaskCreated,
            events_pb2.TaskDispatched,
            events_pb2.TaskFailedOver,
            events_pb2.TaskCompleted,
        )
    )

    def __init__(self) -> None:
        # This batch's changes to `catalog_usage_tasks`: the model now serving a task, or None
        # for a task whose completion was counted (its row goes). Tasks not in here are as the
        # table says.
        self._serving: dict[str, str | None] = {}
        self._counts: Counter[str] = Counter()
        # Completed tasks whose model is in the table (they started in an earlier batch).
        self._unresolved: list[str] = []

    def begin_batch(self) -> None:
        self._serving, self._counts, self._unresolved = {}, Counter(), []

    async def apply(self, conn: Conn, event: RecordedEvent, message: Message) -> None:
        if isinstance(message, (events_pb2.TaskCreated, events_pb2.TaskDispatched)):
            self._serving[message.task_id] = message.model.model_slug
        elif isinstance(message, events_pb2.TaskFailedOver):
            self._serving[message.task_id] = message.to_model_slug
        elif isinstance(message, events_pb2.TaskCompleted):
            task_id = message.task_id
            if task_id in self._serving:
                model_slug = self._serving[task_id]
                if model_slug is not None:
                    self._counts[model_slug] += 1
            else:
                # Served as the table says: counted at the end of the batch, with the others.
                self._unresolved.append(task_id)
            self._serving[task_id] = None  # counted once: a second completion finds nothing

    async def end_batch(self, conn: Conn) -> None:
        serving, self._serving = self._serving, {}
        counts, self._counts = self._counts, Counter()
        unresolved, self._unresolved = self._unresolved, []
        if unresolved:
            # Their rows go and their models count, in one statement rather than a read per task.
            cursor = await conn.execute(
                "DELETE FROM catalog_usage_tasks WHERE task_id = ANY(%s) RETURNING model_slug", (unresolved,)
            )
            rows = await cursor.fetchall()
            counts.update(row[0] for row in rows)
        waiting = {task: model for task, model in serving.items() if model is not None}
        done = [task for task, model in serving.items() if model is None]
        if waiting:
            await conn.execute(
                "INSERT INTO catalog_usage_tasks (task_id, model_slug) "
                "SELECT * FROM unnest(%s::text[], %s::text[]) "
                "ON CONFLICT (task_id) DO UPDATE SET model_slug = EXCLUDED.model_slug",
                (list(waiting), list(waiting.values())),
            )
        if done:
            await conn.execute("DELETE FROM catalog_usage_tasks WHERE task_id = ANY(%s)", (done,))
        if counts:
            await conn.execute(
                "INSERT INTO catalog_model_usage (model_slug, usage_count) "
                "SELECT * FROM unnest(%s::text[], %s::bigint[]) "
                "ON CONFLICT (model_slug) DO UPDATE "
                "SET usage_count = catalog_model_usage.usage_count + EXCLUDED.usage_count",
                (list(counts), list(counts.values())),
            )
