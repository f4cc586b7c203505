"""Usage count per model: a projection of task events (the seed counts successful generations).

A task counts once, for the model that served it (after a failover, the alternative), when the
provider delivered its results (`TaskCompleted`, late completions included).
"""

from __future__ import annotations

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

    async def apply(self, conn: Conn, event: RecordedEvent, message: Message) -> None:
        if isinstance(message, (events_pb2.TaskCreated, events_pb2.TaskDispatched)):
            await self._serving(conn, message.task_id, message.model.model_slug)
        elif isinstance(message, events_pb2.TaskFailedOver):
            await self._serving(conn, message.task_id, message.to_model_slug)
        elif isinstance(message, events_pb2.TaskCompleted):
            row = await (
                await conn.execute(
                    "DELETE FROM catalog_usage_tasks WHERE task_id = %s RETURNING model_slug",
                    (message.task_id,),
                )
            ).fetchone()
            if row is not None:
                await conn.execute(
                    "INSERT INTO catalog_model_usage (model_slug, usage_count) VALUES (%s, 1) "
                    "ON CONFLICT (model_slug) DO UPDATE "
                    "SET usage_count = catalog_model_usage.usage_count + 1",
                    (row[0],),
                )

    @staticmethod
    async def _serving(conn: Conn, task_id: str, model_slug: str) -> None:
        await conn.execute(
            "INSERT INTO catalog_usage_tasks (task_id, model_slug) VALUES (%s, %s) "
            "ON CONFLICT (task_id) DO UPDATE SET model_slug = EXCLUDED.model_slug",
            (task_id, model_slug),
        )
