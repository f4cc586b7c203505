"""Catalog tables: seeding from definitions, admin overrides, sealed provider keys."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aigen.db.pool import Database
from aigen.modeldefs.schema import ModelDef, PlatformDef, ProviderDef
from psycopg.types.json import Jsonb

from services.catalog.domain import stable_id

CHANGED_CHANNEL = "catalog_changed"


@dataclass(frozen=True)
class Rows:
    platforms: list[tuple[uuid.UUID, dict[str, Any]]]
    providers: list[tuple[uuid.UUID, uuid.UUID, dict[str, Any], dict[str, Any], bytes | None, str | None]]
    models: list[tuple[uuid.UUID, uuid.UUID, dict[str, Any], dict[str, Any], int]]


def _dump(definition: PlatformDef | ProviderDef | ModelDef) -> Jsonb:
    return Jsonb(json.loads(definition.model_dump_json()))


class CatalogRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def seed(
        self, platforms: Iterable[PlatformDef], providers: Iterable[ProviderDef], models: Iterable[ModelDef]
    ) -> None:
        """Write every definition; keep overrides and keys. Idempotent; one transaction."""
        platforms, providers, models = list(platforms), list(providers), list(models)
        async with self.db.transaction() as conn:
            # Seeding from several processes at once is harmless, but serialise it anyway.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.catalog_seed'))")
            for p in platforms:
                await conn.execute(
                    "INSERT INTO catalog_platforms (id, slug, definition) VALUES (%s, %s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now() "
                    "WHERE catalog_platforms.definition IS DISTINCT FROM EXCLUDED.definition",
                    (stable_id("platform", p.slug), p.slug, _dump(p)),
                )
            for pr in providers:
                await conn.execute(
                    "INSERT INTO catalog_providers (id, slug, platform_id, definition) "
                    "VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET definition = EXCLUDED.definition, "
                    "platform_id = EXCLUDED.platform_id, seeded = true, updated_at = now() "
                    "WHERE catalog_providers.definition IS DISTINCT FROM EXCLUDED.definition "
                    "OR NOT catalog_providers.seeded",
                    (stable_id("provider", pr.slug), pr.slug, stable_id("platform", pr.platform), _dump(pr)),
                )
            for m in models:
                await conn.execute(
                    "INSERT INTO catalog_models (id, slug, provider_id, definition) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET definition = EXCLUDED.definition, "
                    "provider_id = EXCLUDED.provider_id, seeded = true, updated_at = now() "
                    "WHERE catalog_models.definition IS DISTINCT FROM EXCLUDED.definition "
                    "OR NOT catalog_models.seeded",
                    (stable_id("model", m.slug), m.slug, stable_id("provider", m.provider), _dump(m)),
                )
            # Rows whose definition is gone stay (tasks refer to them) but stop being offered.
            await conn.execute(
                "UPDATE catalog_models SET seeded = false WHERE seeded AND NOT (slug = ANY(%s))",
                ([m.slug for m in models],),
            )
            await conn.execute(
                "UPDATE catalog_providers SET seeded = false WHERE seeded AND NOT (slug = ANY(%s))",
                ([p.slug for p in providers],),
            )
            await conn.execute("SELECT pg_notify(%s, 'seed')", (self.db.channel(CHANGED_CHANNEL),))

    async def rows(self) -> Rows:
        async with self.db.connection() as conn:
            platforms = await (await conn.execute("SELECT id, definition FROM catalog_platforms")).fetchall()
            providers = await (
                await conn.execute(
                    "SELECT id, platform_id, definition, overrides, api_key_sealed, api_key_last4 "
                    "FROM catalog_providers WHERE seeded"
                )
            ).fetchall()
            models = await (
                await conn.execute(
                    "SELECT m.id, m.provider_id, m.definition, m.overrides, coalesce(u.usage_count, 0) "
                    "FROM catalog_models m LEFT JOIN catalog_model_usage u ON u.model_slug = m.slug "
                    "WHERE m.seeded"
                )
            ).fetchall()
        return Rows(
            platforms=[(r[0], r[1]) for r in platforms],
            providers=[
                (r[0], r[1], r[2], r[3], bytes(r[4]) if r[4] is not None else None, r[5]) for r in providers
            ],
            models=[(r[0], r[1], r[2], r[3], int(r[4])) for r in models],
        )

    async def set_provider_key(self, provider_id: uuid.UUID, sealed: bytes | None, last4: str | None) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE catalog_providers SET api_key_sealed = %s, api_key_last4 = %s, updated_at = now() "
                "WHERE id = %s",
                (sealed, last4, provider_id),
            )
            await conn.execute("SELECT pg_notify(%s, 'key')", (self.db.channel(CHANGED_CHANNEL),))

    async def merge_overrides(self, table: str, row_id: uuid.UUID, changes: Mapping[str, Any]) -> None:
        if table not in ("catalog_providers", "catalog_models"):
            raise ValueError(table)
        async with self.db.transaction() as conn:
            await conn.execute(
                f"UPDATE {table} SET overrides = overrides || %s, updated_at = now() WHERE id = %s",
                (Jsonb(dict(changes)), row_id),
            )
            await conn.execute("SELECT pg_notify(%s, 'overrides')", (self.db.channel(CHANGED_CHANNEL),))
