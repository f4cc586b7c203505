"""The ledger's write side: holds per task and each key's committed money, changed together.

A submission with a key that has a budget or a concurrency limit reserves first: under a lock
on the key's usage row it checks the rules and inserts a hold (task id still unknown, found
again by the request id) in one transaction, so two concurrent submissions can never both take
the last dollar. Everything later — attaching the task, releasing, settling — happens in the
reactions to the task's events (ledger.py), also under that lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from aigen.db.pool import Database
from aigen.eventstore.store import Conn

from services.gateway.budget import Period, Usage, decide, period_start
from services.gateway.key_store import ApiKey
from services.gateway.problems import Problem

log = logging.getLogger("aigen.gateway.holds")


@dataclass(frozen=True)
class Reservation:
    created: bool  # False: this request id had reserved before (an idempotent replay)


async def locked_usage(conn: Conn, key_id: str, now: datetime) -> tuple[Usage, Period] | None:
    """The key's usage in the current period, its row locked until the transaction ends."""
    row = await (
        await conn.execute(
            "SELECT u.period_start, u.period_charged_usd, u.open_usd, u.open_count, k.budget_period "
            "FROM gateway_key_usage u JOIN gateway_api_keys k ON k.id = u.key_id "
            "WHERE u.key_id = %s FOR UPDATE OF u",
            (key_id,),
        )
    ).fetchone()
    if row is None:
        return None
    period = Period(row[4])
    return Usage(row[0], row[1], row[2], row[3]).rolled(period, now), period


async def write_usage(conn: Conn, key_id: str, usage: Usage) -> None:
    await conn.execute(
        "UPDATE gateway_key_usage SET period_start = %s, period_charged_usd = %s, open_usd = %s, "
        "open_count = %s, updated_at = now() WHERE key_id = %s",
        (usage.period_start, usage.period_charged_usd, usage.open_usd, usage.open_count, key_id),
    )


async def adjust_usage(
    conn: Conn,
    key_id: str,
    *,
    open_usd: Decimal = Decimal(0),
    open_count: int = 0,
    charged_usd: Decimal = Decimal(0),
) -> None:
    """Move a key's counters (inside the caller's transaction); a key without a row is skipped."""
    now = datetime.now(UTC)
    found = await locked_usage(conn, key_id, now)
    if found is None:
        return
    usage, _ = found
    await write_usage(
        conn,
        key_id,
        Usage(
            usage.period_start,
            usage.period_charged_usd + charged_usd,
            max(Decimal(0), usage.open_usd + open_usd),
            max(0, usage.open_count + open_count),
        ),
    )


class Holds:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def reserve(self, key: ApiKey, request_id: str, amount: Decimal) -> Reservation:
        """Reserve `amount` for a task about to be submitted; raises a 402/429 Problem if the key's
        budget or concurrency limit does not allow it."""
        now = datetime.now(UTC)
        async with self.db.transaction() as conn:
            found = await locked_usage(conn, key.id, now)
            if found is None:
                await conn.execute(
                    "INSERT INTO gateway_key_usage (key_id, period_start) VALUES (%s, %s) ON CONFLICT DO "
                    "NOTHING",
                    (key.id, period_start(key.budget_period, now)),
                )
                found = await locked_usage(conn, key.id, now)
                assert found is not None
            usage, _ = found
            existing = await (
                await conn.execute(
                    "SELECT 1 FROM gateway_holds WHERE key_id = %s AND request_id = %s", (key.id, request_id)
                )
            ).fetchone()
            if existing is not None:
                return Reservation(created=False)
            decision = decide(key.limits, usage, amount, now)
            if decision.refusal is not None:
                if decision.refusal.value == "BUDGET_EXCEEDED":
                    raise Problem(402, decision.refusal.value, decision.message)
                raise Problem(429, decision.refusal.value, decision.message, retry_after_s=5)
            await conn.execute(
                "INSERT INTO gateway_holds (key_id, request_id, owner, amount_usd) VALUES (%s, %s, %s, %s)",
                (key.id, request_id, key.owner, amount),
            )
            await write_usage(
                conn,
                key.id,
                Usage(
                    usage.period_start,
                    usage.period_charged_usd,
                    usage.open_usd + amount,
                    usage.open_count + 1,
                ),
            )
        return Reservation(created=True)

    async def cancel(self, key_id: str, request_id: str) -> None:
        """The submission was refused, so no task will ever use the reservation: drop it."""
        async with self.db.transaction() as conn:
            await self._drop_unattached(conn, "key_id = %s AND request_id = %s", (key_id, request_id))

    async def sweep(self, older_than_s: float) -> int:
        """Drop reservations whose task never appeared (the submission's outcome was lost)."""
        async with self.db.transaction() as conn:
            dropped = await self._drop_unattached(
                conn, "created_at < now() - make_interval(secs => %s)", (older_than_s,)
            )
        if dropped:
            log.warning("released %d reservation(s) whose task never appeared", dropped)
        return dropped

    async def _drop_unattached(self, conn: Conn, where: str, params: tuple[object, ...]) -> int:
        candidates = await (
            await conn.execute(
                f"SELECT id, key_id FROM gateway_holds WHERE task_id IS NULL AND {where}", params
            )
        ).fetchall()
        dropped = 0
        for hold_id, key_id in candidates:
            # Usage row before hold row: the order every writer of both takes them in.
            if key_id:
                await locked_usage(conn, key_id, datetime.now(UTC))
            row = await (
                await conn.execute(
                    "DELETE FROM gateway_holds WHERE id = %s AND task_id IS NULL RETURNING amount_usd",
                    (hold_id,),
                )
            ).fetchone()
            if row is None:
                continue  # its task appeared meanwhile
            dropped += 1
            if key_id:
                await adjust_usage(conn, key_id, open_usd=-row[0], open_count=-1)
        return dropped
