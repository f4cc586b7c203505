"""Reading the ledger: totals grouped by key, model, shot, day (or owner), and per-task rows."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from aigen.db.pool import Database

from services.gateway.budget import money


class GroupBy(enum.StrEnum):
    KEY = "key"
    MODEL = "model"
    SHOT = "shot"
    DAY = "day"
    OWNER = "owner"


_COLUMN = {
    GroupBy.KEY: "key_id",
    GroupBy.MODEL: "model_slug",
    GroupBy.SHOT: "shot_id",
    GroupBy.DAY: "day",
    GroupBy.OWNER: "owner",
}


@dataclass(frozen=True)
class LedgerFilter:
    key_id: str | None = None
    owner: str | None = None
    model: str | None = None
    shot_id: str | None = None
    since: date | None = None  # inclusive, UTC days
    until: date | None = None  # inclusive

    def where(self, day_column: str = "day") -> tuple[str, list[Any]]:
        clauses: list[str] = ["true"]
        params: list[Any] = []
        for column, value in (
            ("key_id", self.key_id),
            ("owner", self.owner),
            ("model_slug", self.model),
            ("shot_id", self.shot_id),
        ):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if self.since is not None:
            clauses.append(f"{day_column} >= %s")
            params.append(self.since)
        if self.until is not None:
            clauses.append(f"{day_column} <= %s")
            params.append(self.until)
        return " AND ".join(clauses), params


class LedgerQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def totals(self, group_by: GroupBy, where: LedgerFilter, limit: int = 500) -> list[dict[str, Any]]:
        column = _COLUMN[group_by]
        clause, params = where.where()
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    f"""
                    SELECT {column}, count(DISTINCT task_id),
                        coalesce(sum(charged_usd), 0),
                        coalesce(sum(held_usd), 0),
                        coalesce(sum(-held_usd) FILTER (WHERE kind = 'release'), 0),
                        coalesce(sum(charged_usd) FILTER (WHERE kind = 'late_charge'), 0),
                        count(*) FILTER (WHERE kind = 'settle' AND basis = 'provider')
                    FROM ledger_entries WHERE {clause}
                    GROUP BY {column} ORDER BY {column} DESC LIMIT %s
                    """,
                    [*params, limit],
                )
            ).fetchall()
        return [
            {
                "group": str(r[0]),
                "tasks": r[1],
                "chargedUsd": money(r[2]),
                "heldUsd": money(r[3]),
                "releasedUsd": money(r[4]),
                "lateChargedUsd": money(r[5]),
                "settledAtProviderCost": r[6],
            }
            for r in rows
        ]

    async def tasks(self, where: LedgerFilter, limit: int = 100) -> list[dict[str, Any]]:
        clause, params = where.where(day_column="(created_at AT TIME ZONE 'UTC')::date")
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    f"""
                    SELECT task_id, key_id, owner, model_slug, provider_slug, shot_id, quoted_usd, held_usd,
                        charged_usd, state, basis, late, created_at, updated_at
                    FROM ledger_tasks WHERE {clause} ORDER BY created_at DESC LIMIT %s
                    """,
                    [*params, limit],
                )
            ).fetchall()
        return [
            {
                "taskId": r[0],
                "keyId": r[1],
                "owner": r[2],
                "model": r[3],
                "provider": r[4],
                "shotId": r[5],
                "quotedUsd": money(r[6]),
                "heldUsd": money(r[7]),
                "chargedUsd": money(r[8]),
                "state": r[9],
                "basis": r[10],
                "late": r[11],
                "createdAt": r[12].isoformat(),
                "updatedAt": r[13].isoformat(),
            }
            for r in rows
        ]

    async def summary(self, where: LedgerFilter) -> dict[str, Any]:
        clause, params = where.where()
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT count(DISTINCT task_id), coalesce(sum(charged_usd), 0), "
                    "coalesce(sum(held_usd), 0) "
                    f"FROM ledger_entries WHERE {clause}",
                    params,
                )
            ).fetchone()
        assert row is not None
        tasks, charged, held = row[0], Decimal(row[1]), Decimal(row[2])
        return {"tasks": tasks, "chargedUsd": money(charged), "heldUsd": money(held)}
