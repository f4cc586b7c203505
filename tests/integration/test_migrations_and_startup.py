"""Migrations apply once, in order, and refuse edited history; bad URLs fail fast and clearly."""

from __future__ import annotations

import time

import pytest
from aigen.bus.connection import connect as connect_nats
from aigen.db import migrations
from aigen.db.pool import StartupError
from aigen.db.pool import connect as connect_db


async def test_migrations_are_idempotent_and_concurrent_starters_apply_once(db):
    found = migrations.load("aigen.eventstore", "eventstore")
    assert await migrations.apply(db, found) == []  # the fixture applied them already
    extra = [
        migrations.Migration("demo", 1, "create", "CREATE TABLE demo (id int PRIMARY KEY)"),
        migrations.Migration(
            "demo", 2, "add", "ALTER TABLE demo ADD COLUMN name text; INSERT INTO demo VALUES (1, 'x')"
        ),
    ]
    import asyncio

    results = await asyncio.gather(*(migrations.apply(db, extra) for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 2]
    async with db.connection() as conn:
        assert (await (await conn.execute("SELECT name FROM demo")).fetchone())[0] == "x"


async def test_an_edited_migration_is_refused(db):
    await migrations.apply(db, [migrations.Migration("demo", 1, "create", "CREATE TABLE demo2 (id int)")])
    with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
        await migrations.apply(
            db, [migrations.Migration("demo", 1, "create", "CREATE TABLE demo2 (id bigint)")]
        )


async def test_wrong_database_url_fails_within_seconds_naming_it():
    started = time.monotonic()
    with pytest.raises(StartupError) as info:
        await connect_db("postgresql://nobody:hunter2@127.0.0.1:1/none", timeout=3)
    assert time.monotonic() - started < 6
    message = str(info.value)
    assert "database" in message and "127.0.0.1:1" in message and "hunter2" not in message


async def test_wrong_nats_url_fails_within_seconds_naming_it():
    started = time.monotonic()
    with pytest.raises(StartupError) as info:
        await connect_nats("nats://127.0.0.1:1", timeout=2)
    assert time.monotonic() - started < 6
    assert "NATS" in str(info.value) and "127.0.0.1:1" in str(info.value)
