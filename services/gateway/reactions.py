"""The gateway's reaction to task events (JetStream consumer `gateway-webhooks`).

The events of a moment react in one transaction, with the consumer's tracking rows
(`aigen.bus.batches`): the ledger's holds and charges, the ledger events they cause, and the
client webhook deliveries to send. A redelivered event finds its tracking row and changes nothing.

Most events of most tasks change nothing here: progress of a task without a webhook moves no
money and tells no one. The tasks known to be such (their creation handled, no webhook — both
facts never change) are remembered, and their progress events skipped without a transaction.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
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


# Events that may move money (the ledger's); the other relevant ones only concern webhooks.
LEDGER = (
    events_pb2.TaskCreated,
    events_pb2.TaskCompleted,
    events_pb2.TaskFailed,
    events_pb2.TaskCancelled,
    events_pb2.TaskDeleted,
)


class TaskReactions:
    """A `BatchHandler`: the events of a moment react in one transaction, and their ledger events
    are appended together at its end."""

    def __init__(self, ledger: LedgerReactions, webhook_jobs: WorkQueue, *, remember: int = 50_000) -> None:
        self.ledger = ledger
        self.jobs = webhook_jobs
        # Tasks a committed reaction showed to have their hold and no webhook (least recent first).
        self._quiet: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    def wants(self, delivery: Delivery) -> bool:
        message = delivery.message
        task_id = getattr(message, "task_id", "")
        if message is None or not task_id or not isinstance(message, RELEVANT):
            return False  # unknown to this version, not about a task, or nothing to do
        # A quiet task's hold exists and no one is to be told: nothing to do, nothing to track.
        return task_id not in self._quiet or isinstance(message, LEDGER)

    async def handle(self, conn: Conn, deliveries: Sequence[Delivery]) -> Callable[[], None]:
        emitted: list[Message] = []
        quiet: list[str] = []  # learnt here: these tasks' holds exist and they have no webhook
        for delivery in deliveries:
            with delivery.traced():
                if await self._react(conn, delivery, emitted):
                    quiet.append(getattr(delivery.message, "task_id", ""))
        await self.ledger.append(conn, emitted)

        def committed() -> None:  # remembered only once the reactions are in
            for task_id in quiet:
                self._remember_quiet(task_id)

        return committed

    async def __call__(self, delivery: Delivery) -> None:
        """One event in a transaction of its own (`Consumer`'s handler signature)."""
        if not self.wants(delivery):
            return
        async with delivery.transaction() as conn:
            committed = await self.handle(conn, [delivery])
        committed()

    async def _react(self, conn: Conn, delivery: Delivery, emitted: list[Message]) -> bool:
        """React to one event, adding the ledger events it causes to `emitted`; whether it showed
        the task to be quiet."""
        message = delivery.message
        task_id = getattr(message, "task_id", "")
        if isinstance(message, events_pb2.TaskCreated):
            emitted += await self._created(conn, message)
            return not message.webhook_url
        quiet = False
        known = await self._known(conn, task_id)
        if not known:
            # This event overtook its TaskCreated: handle the creation first, from the log.
            created = await self.ledger.task_created(conn, task_id)
            if created is not None:
                emitted += await self._created(conn, created)
                known, quiet = True, not created.webhook_url
        assert message is not None  # wants() let only task events through
        emitted += await self.ledger.react(conn, message)
        hook = await self._notify(conn, delivery, message)
        return quiet or (known and hook is False)

    def _remember_quiet(self, task_id: str) -> None:
        self._quiet[task_id] = None
        self._quiet.move_to_end(task_id)
        if len(self._quiet) > self._remember:
            self._quiet.popitem(last=False)

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

    async def _notify(self, conn: Conn, delivery: Delivery, message: Message) -> bool | None:
        """Queue the webhook this event causes; whether the task has a webhook (None: not asked,
        the event tells clients nothing)."""
        notice = notice_for(message)
        if notice is None:
            return None
        hook = await (
            await conn.execute(
                "SELECT url, key_id FROM gateway_task_hooks WHERE task_id = %s", (notice.data["taskId"],)
            )
        ).fetchone()
        if hook is None:
            return False
        body = body_of(notice, delivery.envelope.time.ToDatetime(tzinfo=UTC))
        delivery_id = str(delivery.event_id)
        await conn.execute(
            "INSERT INTO gateway_webhook_deliveries (id, task_id, key_id, url, event_type, body, "
            "next_attempt_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, now()) ON CONFLICT DO NOTHING",
            (delivery_id, notice.data["taskId"], hook[1], hook[0], notice.type, body),
        )
        await self.jobs.enqueue(conn, delivery_id)
        return True
