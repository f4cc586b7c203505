"""An async connection pool whose connections all work inside one schema.

Every table of every service lives in one PostgreSQL schema (AIGEN_DB_SCHEMA, default `aigen`).
Tests give each test its own schema, so they never depend on a clean database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from aigen.config import redact_url


class StartupError(RuntimeError):
    """A dependency could not be reached at start; the message says which and why."""


@dataclass
class Database:
    url: str
    schema: str
    pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        async with self.pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        """A connection inside a transaction: committed on success, rolled back on any error."""
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    async def close(self) -> None:
        await self.pool.close()

    def channel(self, name: str) -> str:
        """A NOTIFY channel private to this schema."""
        return f"{self.schema}_{name}"


async def connect(
    url: str,
    schema: str = "aigen",
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 5.0,
    create_schema: bool = True,
) -> Database:
    """Open a pool, failing within `timeout` seconds with a message naming the database and why."""
    try:
        async with await asyncio.wait_for(
            psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=max(1, int(timeout))),
            timeout,
        ) as probe:
            if create_schema:
                # Serialised: concurrent CREATE SCHEMA IF NOT EXISTS can still collide.
                async with probe.transaction():
                    await probe.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"aigen-schema:{schema}",)
                    )
                    await probe.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                    )
    except (psycopg.Error, OSError, TimeoutError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StartupError(f"cannot reach the database at {redact_url(url)}: {reason}") from exc

    async def configure(conn: psycopg.AsyncConnection[TupleRow]) -> None:
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        await conn.commit()

    pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] = AsyncConnectionPool(
        url,
        # Autocommit: a lone statement is its own transaction (one round trip, no BEGIN/COMMIT);
        # work that must be atomic says so with `Database.transaction()` / `conn.transaction()`.
        kwargs={"autocommit": True},
        min_size=min_size,
        max_size=max_size,
        configure=configure,
        open=False,
        timeout=30.0,
        name=f"aigen-{schema}",
    )
    await pool.open(wait=True, timeout=timeout)
    return Database(url=url, schema=schema, pool=pool)
