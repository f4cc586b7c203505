"""The billing ledger's read model, a projection of the ledger events (`aigen projections rebuild
ledger` replays it from the log).

`ledger_entries` has one row per ledger event (keyed by its global position, so applying an
event twice is impossible); totals per key, model, shot and day are sums over it.
`ledger_tasks` has one row per task: quoted, still held, charged, and how the charge was known.
"""

from __future__ import annotations

from decimal import Decimal

from aigen.eventstore.store import Conn, RecordedEvent
from aigen.projections.runner import Projection
from aigen.v1 import ledger_pb2
from google.protobuf.message import Message

from services.gateway.budget import usd

LEDGER_EVENT_TYPES = frozenset(
    cls.DESCRIPTOR.full_name
    for cls in (
        ledger_pb2.HoldPlaced,
        ledger_pb2.HoldReleased,
        ledger_pb2.ChargeSettled,
        ledger_pb2.LateChargeRecorded,
    )
)


_ENTRY = """
    INSERT INTO ledger_entries (position, recorded_at, day, kind, task_id, key_id, owner, model_slug,
        provider_slug, shot_id, held_usd, charged_usd, basis)
    VALUES (%s, %s, (%s AT TIME ZONE 'UTC')::date, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (position) DO NOTHING
"""
_HELD_TASK = """
    INSERT INTO ledger_tasks (task_id, key_id, owner, model_slug, provider_slug, shot_id,
        quoted_usd, held_usd, state, created_at, updated_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'held', %s, %s)
    ON CONFLICT (task_id) DO NOTHING
"""
_TASK_MOVED = """
    UPDATE ledger_tasks SET held_usd = held_usd + %s, charged_usd = charged_usd + %s,
        state = coalesce(%s, state), basis = CASE WHEN %s <> '' THEN %s ELSE basis END,
        late = late OR %s, updated_at = %s
    WHERE task_id = %s
"""


class LedgerProjection(Projection):
    """A batch's rows are gathered as its events are applied and written at its end: the entries,
    then the new tasks, then the changes to tasks in log order — each kind one pipelined
    `executemany`. A task's hold always precedes its release or charge in the log, so writing
    every new task before any change keeps each task's history in order."""

    name = "ledger"
    tables = ("ledger_entries", "ledger_tasks")
    types = LEDGER_EVENT_TYPES

    def __init__(self) -> None:
        self._entries: list[tuple[object, ...]] = []
        self._held: list[tuple[object, ...]] = []
        self._moved: list[tuple[object, ...]] = []

    def begin_batch(self) -> None:
        self._entries, self._held, self._moved = [], [], []

    async def apply(self, conn: Conn, event: RecordedEvent, message: Message) -> None:
        subject: ledger_pb2.LedgerSubject = message.subject  # type: ignore[attr-defined]
        held, charged, basis, kind = Decimal(0), Decimal(0), "", ""
        if isinstance(message, ledger_pb2.HoldPlaced):
            kind, held = "hold", usd(message.amount_usd)
        elif isinstance(message, ledger_pb2.HoldReleased):
            kind, held = "release", -usd(message.amount_usd)
        elif isinstance(message, ledger_pb2.ChargeSettled):
            kind, held, charged, basis = (
                "settle",
                -usd(message.held_usd),
                usd(message.charged_usd),
                message.basis,
            )
        elif isinstance(message, ledger_pb2.LateChargeRecorded):
            kind, charged, basis = "late_charge", usd(message.charged_usd), message.basis
        else:
            return
        at = event.recorded_at
        self._entries.append(
            (
                event.global_position, at, at, kind, subject.task_id, subject.key_id, subject.owner,
                subject.model_slug, subject.provider_slug, subject.shot_id, held, charged, basis,
            )
        )  # fmt: skip
        if kind == "hold":
            self._held.append(
                (
                    subject.task_id, subject.key_id, subject.owner, subject.model_slug, subject.provider_slug,
                    subject.shot_id, held, held, at, at,
                )
            )  # fmt: skip
            return
        state = {"release": "released", "settle": "settled"}.get(kind)
        self._moved.append((held, charged, state, basis, basis, kind == "late_charge", at, subject.task_id))

    async def end_batch(self, conn: Conn) -> None:
        entries, held, moved = self._entries, self._held, self._moved
        self.begin_batch()
        cursor = conn.cursor()
        for statement, rows in ((_ENTRY, entries), (_HELD_TASK, held), (_TASK_MOVED, moved)):
            if rows:
                await cursor.executemany(statement, rows)
