"""The gateway's reaction to task events (JetStream consumer `gateway-webhooks`).

One transaction per event, with the consumer's tracking row: the ledger's holds and charges,
the ledger events they cause, and the client webhook deliveries to send. A redelivered event
finds its tracking row and changes nothing.
"""

from __future__ import annotations

from datetime import UTC

from aigen.bus.consumer import Delivery
from aigen.eventstore.store import Conn
from aigen.v1 import events_pb2
from aigen.workqueue import WorkQueue
from google.protobuf.message import Message

from services.gateway.ledger import LedgerReactions
from services.gateway.webhooks import body_of, notice_for

# Events that move money or that clients hear about; the rest (dispatch attempts, failovers)
# only need the consumer's tracking row, which it writes by itself.
RELEVANT = (
    events_pb2.TaskCreated,
    events_pb2.TaskDispatched,
    events_pb2.TaskProgressed,
    events_pb2.TaskCompleted,
    events_pb2.ResultsStored,
    events_pb2.TaskFailed,
    events_pb2.TaskCancelled,
    events_pb2.TaskDeleted,
)


class TaskReactions:
    def __init__(self, ledger: LedgerReactions, webhook_jobs: WorkQueue) -> None:
        self.ledger = ledger
        self.jobs = webhook_jobs

    async def __call__(self, delivery: Delivery) -> None:
        message = delivery.message
        task_id = getattr(message, "task_id", "")
        if message is None or not task_id or not isinstance(message, RELEVANT):
            return  # unknown to this version, not about a task, or nothing to do
        async with delivery.transaction() as conn:
            emitted: list[Message] = []
            if isinstance(message, events_pb2.TaskCreated):
                emitted += await self._created(conn, message)
            else:
                if not await self._known(conn, task_id):
                    # This event overtook its TaskCreated: handle the creation first, from the log.
                    created = await self.ledger.task_created(conn, task_id)
                    if created is not None:
                        emitted += await self._created(conn, created)
                emitted += await self.ledger.react(conn, message)
                await self._notify(conn, delivery, message)
            await self.ledger.append(conn, emitted)

    async def _created(self, conn: Conn, created: events_pb2.TaskCreated) -> list[Message]:
        hold, emitted = await self.ledger.created(conn, created)
        if created.webhook_url:
            await conn.execute(
                "INSERT INTO gateway_task_hooks (task_id, url, key_id, owner) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (created.task_id, created.webhook_url, hold.key_id or None, created.owner),
            )
        return emitted

    @staticmethod
    async def _known(conn: Conn, task_id: str) -> bool:
        row = await (
            await conn.execute("SELECT 1 FROM gateway_holds WHERE task_id = %s", (task_id,))
        ).fetchone()
        return row is not None

    async def _notify(self, conn: Conn, delivery: Delivery, message: Message) -> None:
        notice = notice_for(message)
        if notice is None:
            return
        hook = await (
            await conn.execute(
                "SELECT url, key_id FROM gateway_task_hooks WHERE task_id = %s", (notice.data["taskId"],)
            )
        ).fetchone()
        if hook is None:
            return
        body = body_of(notice, delivery.envelope.time.ToDatetime(tzinfo=UTC))
        delivery_id = str(delivery.event_id)
        await conn.execute(
            "INSERT INTO gateway_webhook_deliveries (id, task_id, key_id, url, event_type, body, "
            "next_attempt_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, now()) ON CONFLICT DO NOTHING",
            (delivery_id, notice.data["taskId"], hook[1], hook[0], notice.type, body),
        )
        await self.jobs.enqueue(conn, delivery_id)
