"""The billing ledger's reactions to task events: hold, release, settle, charge late.

Called inside the consumer's transaction (with its tracking row), so each task event moves
money exactly once. The rules:
- TaskCreated: the quote is held (attaching the reservation made at submission, if any);
- TaskFailed / TaskCancelled / TaskDeleted while held: the hold is released;
- TaskCompleted: the hold is settled at the provider's reported cost, else at the quote;
- TaskCompleted marked late (after a timeout failure released the hold): charged again.
Events of one task can arrive out of order (the consumer runs handlers concurrently); a
task's hold row is locked for the duration, and an event that arrives before its TaskCreated
handles the creation first from the log, so the result never depends on the arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from aigen.eventstore.mapper import decode, to_new_event
from aigen.eventstore.store import ANY_VERSION, Conn, EventStore, NewEvent
from aigen.tasks.domain import stream_id
from aigen.v1 import events_pb2, ledger_pb2
from google.protobuf.message import Message

from services.gateway.budget import ZERO, Usage, key_of_request, money, usd
from services.gateway.holds import adjust_usage, locked_usage, write_usage


@dataclass(frozen=True)
class Hold:
    id: int
    task_id: str
    key_id: str
    owner: str
    amount: Decimal
    state: str
    charged: Decimal


def account_stream(key_id: str, owner: str) -> str:
    return f"ledger-{key_id}" if key_id else f"ledger-owner.{owner}"


def subject_of(created: events_pb2.TaskCreated, key_id: str) -> ledger_pb2.LedgerSubject:
    return ledger_pb2.LedgerSubject(
        task_id=created.task_id,
        key_id=key_id,
        owner=created.owner,
        model_slug=created.model.model_slug,
        provider_slug=created.model.provider_slug,
        shot_id=created.shot_id,
    )


def charge_amount(charge: events_pb2.ProviderCharge | None, quote_usd: Decimal) -> tuple[Decimal, str]:
    """(what to charge, basis): the provider's reported cost in USD when known, else the quote."""
    if charge is not None and charge.usd:
        return usd(charge.usd), "provider"
    return quote_usd, "quote"


class LedgerReactions:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def created(self, conn: Conn, created: events_pb2.TaskCreated) -> tuple[Hold, list[Message]]:
        """Hold the task's quote; returns the hold and the ledger events to append."""
        amount = usd(created.quote.usd)
        parsed = key_of_request(created.request_id)
        key_id = parsed[0] if parsed else ""
        found = await locked_usage(conn, key_id, datetime.now(UTC)) if key_id else None
        if found is None:
            key_id = ""  # not a key of this gateway (or a forged prefix): an owner account
        if key_id:
            # The task's hold, else the reservation its submission made: one look for both.
            holds = await self._all_locked(
                conn,
                "task_id = %s OR (key_id = %s AND request_id = %s AND task_id IS NULL)",
                (created.task_id, key_id, created.request_id),
            )
            existing = next((h for h in holds if h.task_id == created.task_id), None)
            reserved = next((h for h in holds if not h.task_id), None)
        else:
            existing, reserved = await self._locked(conn, "task_id = %s", (created.task_id,)), None
        if existing is not None:
            return existing, []
        if key_id and reserved is not None:
            await conn.execute(
                "UPDATE gateway_holds SET task_id = %s, amount_usd = %s, updated_at = now() WHERE id = %s",
                (created.task_id, amount, reserved.id),
            )
            if amount != reserved.amount:
                await adjust_usage(conn, key_id, open_usd=amount - reserved.amount)
            hold = Hold(reserved.id, created.task_id, key_id, created.owner, amount, "held", ZERO)
            return hold, [self._placed(created, key_id, amount)]
        row = await (
            await conn.execute(
                "INSERT INTO gateway_holds (task_id, key_id, request_id, owner, amount_usd) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
                (
                    created.task_id,
                    key_id or None,
                    created.request_id if key_id else None,
                    created.owner,
                    amount,
                ),
            )
        ).fetchone()
        if row is None:
            # The request id had a hold of another task (the key's owner changed between two
            # submissions with one Idempotency-Key): keep the money right, without the link.
            row = await (
                await conn.execute(
                    "INSERT INTO gateway_holds (task_id, key_id, owner, amount_usd) VALUES (%s, %s, %s, %s) "
                    "RETURNING id",
                    (created.task_id, key_id or None, created.owner, amount),
                )
            ).fetchone()
            assert row is not None
        if found is not None and key_id:
            # The usage row was locked and read above, in this transaction: no need to again.
            usage = found[0].rolled(found[1], datetime.now(UTC))
            await write_usage(
                conn,
                key_id,
                Usage(
                    usage.period_start,
                    usage.period_charged_usd,
                    usage.open_usd + amount,
                    usage.open_count + 1,
                ),
            )
        hold = Hold(row[0], created.task_id, key_id, created.owner, amount, "held", ZERO)
        return hold, [self._placed(created, key_id, amount)]

    def _placed(self, created: events_pb2.TaskCreated, key_id: str, amount: Decimal) -> ledger_pb2.HoldPlaced:
        return ledger_pb2.HoldPlaced(
            subject=subject_of(created, key_id), amount_usd=money(amount), quote=created.quote
        )

    async def react(self, conn: Conn, message: Message) -> list[Message]:
        """The ledger events one task event causes (hold rows and key usage updated already)."""
        if isinstance(message, events_pb2.TaskCreated):
            return (await self.created(conn, message))[1]
        if not isinstance(
            message,
            events_pb2.TaskCompleted
            | events_pb2.TaskFailed
            | events_pb2.TaskCancelled
            | events_pb2.TaskDeleted,
        ):
            return []
        task_id = message.task_id
        emitted: list[Message] = []
        hold = await self._locked(conn, "task_id = %s", (task_id,))
        created = None
        if hold is None:
            created = await self.task_created(conn, task_id)
            if created is None:
                return []
            hold, emitted = await self.created(conn, created)
        if created is None:
            created = await self.task_created(conn, task_id)
            if created is None:
                return emitted
        subject = subject_of(created, hold.key_id)
        quote = usd(created.quote.usd)
        if isinstance(message, events_pb2.TaskCompleted):
            charge = message.charge if message.HasField("charge") else None
            amount, basis = charge_amount(charge, quote)
            if message.late:
                await self._charge(conn, hold, amount, state=hold.state)
                emitted.append(
                    ledger_pb2.LateChargeRecorded(
                        subject=subject, charged_usd=money(amount), basis=basis, charge=charge
                    )
                )
            elif hold.state != "settled":
                held = hold.amount if hold.state == "held" else ZERO
                await self._charge(conn, hold, amount, state="settled", release=held)
                emitted.append(
                    ledger_pb2.ChargeSettled(
                        subject=subject,
                        held_usd=money(held),
                        charged_usd=money(amount),
                        basis=basis,
                        charge=charge,
                    )
                )
            return emitted
        if hold.state != "held":
            return emitted
        reason = "deleted"
        if isinstance(message, events_pb2.TaskFailed):
            reason = "timeout" if message.stage == "timeout" else "failed"
        elif isinstance(message, events_pb2.TaskCancelled):
            reason = "cancelled"
        await conn.execute(
            "UPDATE gateway_holds SET state = 'released', updated_at = now() WHERE id = %s", (hold.id,)
        )
        if hold.key_id:
            await adjust_usage(conn, hold.key_id, open_usd=-hold.amount, open_count=-1)
        emitted.append(ledger_pb2.HoldReleased(subject=subject, amount_usd=money(hold.amount), reason=reason))
        return emitted

    async def _charge(
        self, conn: Conn, hold: Hold, amount: Decimal, *, state: str, release: Decimal = ZERO
    ) -> None:
        await conn.execute(
            "UPDATE gateway_holds SET state = %s, charged_usd = charged_usd + %s, updated_at = now() "
            "WHERE id = %s",
            (state, amount, hold.id),
        )
        if hold.key_id:
            released_count = -1 if hold.state == "held" and state != "held" else 0
            await adjust_usage(
                conn, hold.key_id, open_usd=-release, open_count=released_count, charged_usd=amount
            )

    async def append(self, conn: Conn, events: list[Message]) -> None:
        """Append ledger events to their accounts' streams (last in the transaction: the append
        takes the event log's lock, which is best held briefly). One append per account, the
        events of each in the order given."""
        by_account: dict[str, list[NewEvent]] = {}
        for event in events:
            subject: ledger_pb2.LedgerSubject = event.subject  # type: ignore[attr-defined]
            stream = account_stream(subject.key_id, subject.owner)
            by_account.setdefault(stream, []).append(to_new_event(event))
        for account, new_events in by_account.items():
            await self.store.append(account, ANY_VERSION, new_events, conn=conn)

    async def _all_locked(self, conn: Conn, where: str, params: tuple[object, ...]) -> list[Hold]:
        rows = await (
            await conn.execute(
                "SELECT id, coalesce(task_id, ''), coalesce(key_id, ''), owner, amount_usd, state, "
                "charged_usd "
                f"FROM gateway_holds WHERE {where} ORDER BY id FOR UPDATE",
                params,
            )
        ).fetchall()
        return [Hold(*row) for row in rows]

    async def _locked(self, conn: Conn, where: str, params: tuple[object, ...]) -> Hold | None:
        """The one hold `where` names (a task's: unique), locked."""
        holds = await self._all_locked(conn, where, params)
        return holds[0] if holds else None

    async def task_created(self, conn: Conn, task_id: str) -> events_pb2.TaskCreated | None:
        events = await self.store.read_stream(stream_id(task_id), 1, to_version=1, conn=conn)
        if not events:
            return None
        message = decode(events[0])
        return message if isinstance(message, events_pb2.TaskCreated) else None
