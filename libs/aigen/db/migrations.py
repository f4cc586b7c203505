"""Versioned schema migrations, applied at start, idempotently, each component owning its tables.

Migrations are SQL files named `NNNN_description.sql` in a component's `migrations` package
directory. They run in order, each in its own transaction, under an advisory lock so several
processes starting at once apply each migration exactly once. An applied migration whose file
changed afterwards is an error: the schema would no longer match the code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from aigen.db.pool import Database

_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x41494745  # "AIGE": one lock for all migration runs in a database


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(package: str, component: str) -> list[Migration]:
    """The migrations in `<package>/migrations/`, in version order."""
    folder = resources.files(package).joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME_RE.match(entry.name)
        if match:
            found.append(Migration(component, int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{component}: two migrations share a version number")
    return found


async def apply(db: Database, migrations: list[Migration]) -> list[Migration]:
    """Apply what is not applied yet; returns the migrations applied now."""
    applied_now: list[Migration] = []
    async with db.connection() as conn, conn.transaction():
        # Everything below, even creating the bookkeeping table, runs under one lock: processes
        # starting together would otherwise race on CREATE TABLE IF NOT EXISTS.
        await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (_LOCK_KEY,))
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                component text NOT NULL,
                version integer NOT NULL,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )
            """
        )
        rows = await (
            await conn.execute("SELECT component, version, checksum FROM schema_migrations")
        ).fetchall()
        done = {(c, v): s for c, v, s in rows}
        for migration in migrations:
            key = (migration.component, migration.version)
            if key in done:
                if done[key] != migration.checksum:
                    raise MigrationError(
                        f"{migration.component} migration {migration.version:04d}_{migration.name} "
                        "was changed after it was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum) "
                    "VALUES (%s, %s, %s, %s)",
                    (migration.component, migration.version, migration.name, migration.checksum),
                )
            applied_now.append(migration)
    return applied_now
