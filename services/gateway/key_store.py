"""API keys in PostgreSQL: create, authenticate (cached), list, change, revoke.

Authentication happens on every request, so key rows are cached for a few seconds
(`AIGEN_GATEWAY_KEY_CACHE_S`); a revocation through this process takes effect at once, through
another replica within that time. The presented key is compared with the stored HMAC in
constant time on every request, cached or not.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from aigen.db.pool import Database
from aigen.logs import register_secret
from aigen.secrets import Sealer
from psycopg.rows import TupleRow

from services.gateway import keys
from services.gateway.budget import ZERO, Limits, Period, Usage, period_start
from services.gateway.problems import Problem

_COLUMNS = (
    "id, name, owner, secret_hash, allowed_models, rate_per_minute, burst, max_concurrent, budget_usd, "
    "budget_period, expires_at, revoked_at, created_at, updated_at"
)


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    owner: str
    secret_hash: bytes
    allowed_models: tuple[str, ...] | None
    rate_per_minute: int | None
    burst: int | None
    max_concurrent: int | None
    budget_usd: Decimal | None
    budget_period: Period
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def prefix(self) -> str:
        return keys.display_prefix(self.id)

    @property
    def limits(self) -> Limits:
        return Limits(self.budget_usd, self.budget_period, self.max_concurrent)

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def allows(self, model_slug: str) -> bool:
        return self.allowed_models is None or model_slug in self.allowed_models


def _key(row: TupleRow) -> ApiKey:
    return ApiKey(
        id=row[0],
        name=row[1],
        owner=row[2],
        secret_hash=bytes(row[3]),
        allowed_models=tuple(row[4]) if row[4] is not None else None,
        rate_per_minute=row[5],
        burst=row[6],
        max_concurrent=row[7],
        budget_usd=row[8],
        budget_period=Period(row[9]),
        expires_at=row[10],
        revoked_at=row[11],
        created_at=row[12],
        updated_at=row[13],
    )


@dataclass(frozen=True)
class KeySpec:
    """What an admin chooses for a key."""

    name: str
    owner: str | None = None
    allowed_models: Sequence[str] | None = None
    rate_per_minute: int | None = None
    burst: int | None = None
    max_concurrent: int | None = None
    budget_usd: Decimal | None = None
    budget_period: Period = Period.TOTAL
    expires_at: datetime | None = None


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # the API key itself, shown once
    webhook_secret: str  # shown once


class KeyStore:
    def __init__(self, db: Database, hasher: keys.KeyHasher, sealer: Sealer, *, cache_s: float = 5.0) -> None:
        self.db = db
        self.hasher = hasher
        self.sealer = sealer
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._webhook_secrets: dict[str, str] = {}

    # --- authentication ---------------------------------------------------------------------

    async def authenticate(self, presented: str | None) -> ApiKey:
        if not presented:
            raise Problem(
                401,
                "API_KEY_MISSING",
                "send your API key in the X-API-Key header",
                headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
            )
        key_id = keys.parse(presented)
        found = await self._cached(key_id) if key_id is not None else None
        if found is None or not self.hasher.matches(presented, found.secret_hash):
            raise Problem(401, "API_KEY_INVALID", "the API key is not valid")
        state = found.state(datetime.now(UTC))
        if state == "revoked":
            raise Problem(401, "API_KEY_REVOKED", f"the API key {found.prefix} was revoked")
        if state == "expired":
            assert found.expires_at is not None
            raise Problem(
                401,
                "API_KEY_EXPIRED",
                f"the API key {found.prefix} expired at {found.expires_at.isoformat()}",
            )
        return found

    async def _cached(self, key_id: str) -> ApiKey | None:
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        found = await self.get(key_id)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key_id] = (now, found)
        return found

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)
        self._webhook_secrets.pop(key_id, None)

    # --- administration ----------------------------------------------------------------------

    async def create(self, spec: KeySpec) -> CreatedKey:
        new = keys.generate()
        webhook_secret = keys.new_webhook_secret()
        register_secret(new.key)
        register_secret(webhook_secret)
        now = datetime.now(UTC)
        async with self.db.transaction() as conn:
            row = await (
                await conn.execute(
                    f"""
                    INSERT INTO gateway_api_keys (id, name, owner, secret_hash, webhook_secret_sealed,
                        allowed_models, rate_per_minute, burst, max_concurrent, budget_usd, budget_period,
                        expires_at)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    RETURNING {_COLUMNS}
                    """,
                    (
                        new.id,
                        spec.name,
                        spec.owner or new.id,
                        self.hasher.hash(new.key),
                        self.sealer.seal(webhook_secret),
                        list(spec.allowed_models) if spec.allowed_models is not None else None,
                        spec.rate_per_minute,
                        spec.burst,
                        spec.max_concurrent,
                        spec.budget_usd,
                        spec.budget_period.value,
                        spec.expires_at,
                    ),
                )
            ).fetchone()
            assert row is not None
            await conn.execute(
                "INSERT INTO gateway_key_usage (key_id, period_start) VALUES (%s, %s)",
                (new.id, period_start(spec.budget_period, now)),
            )
        return CreatedKey(_key(row), new.key, webhook_secret)

    async def get(self, key_id: str) -> ApiKey | None:
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(f"SELECT {_COLUMNS} FROM gateway_api_keys WHERE id = %s", (key_id,))
            ).fetchone()
        return _key(row) if row is not None else None

    async def require(self, key_id: str) -> ApiKey:
        found = await self.get(key_id)
        if found is None:
            raise Problem(404, "API_KEY_NOT_FOUND", f"no API key {key_id!r}")
        return found

    async def list(self, *, owner: str | None = None, include_revoked: bool = True) -> list[ApiKey]:
        where, params = ["true"], []
        if owner:
            where.append("owner = %s")
            params.append(owner)
        if not include_revoked:
            where.append("revoked_at IS NULL")
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {_COLUMNS} FROM gateway_api_keys WHERE {' AND '.join(where)} ORDER BY "
                    "created_at DESC",
                    params,
                )
            ).fetchall()
        return [_key(r) for r in rows]

    async def update(self, key_id: str, changes: dict[str, object]) -> ApiKey:
        """Change limits, name, models or expiry; `changes` holds only the columns to set."""
        allowed = {
            "name", "allowed_models", "rate_per_minute", "burst", "max_concurrent", "budget_usd",
            "budget_period", "expires_at",
        }  # fmt: skip
        assert set(changes) <= allowed, set(changes) - allowed
        if not changes:
            return await self.require(key_id)
        sets = ", ".join(f"{name} = %s" for name in changes)
        values = [v.value if isinstance(v, Period) else v for v in changes.values()]
        async with self.db.transaction() as conn:
            row = await (
                await conn.execute(
                    f"UPDATE gateway_api_keys SET {sets}, updated_at = now() WHERE id = %s RETURNING "
                    f"{_COLUMNS}",
                    [*values, key_id],
                )
            ).fetchone()
        if row is None:
            raise Problem(404, "API_KEY_NOT_FOUND", f"no API key {key_id!r}")
        self.forget(key_id)
        return _key(row)

    async def revoke(self, key_id: str) -> ApiKey:
        async with self.db.transaction() as conn:
            row = await (
                await conn.execute(
                    "UPDATE gateway_api_keys SET revoked_at = coalesce(revoked_at, now()), updated_at = "
                    "now() "
                    f"WHERE id = %s RETURNING {_COLUMNS}",
                    (key_id,),
                )
            ).fetchone()
        if row is None:
            raise Problem(404, "API_KEY_NOT_FOUND", f"no API key {key_id!r}")
        self.forget(key_id)
        return _key(row)

    async def usage(self, key: ApiKey) -> Usage:
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT period_start, period_charged_usd, open_usd, open_count FROM gateway_key_usage "
                    "WHERE key_id = %s",
                    (key.id,),
                )
            ).fetchone()
        now = datetime.now(UTC)
        if row is None:
            return Usage(period_start(key.budget_period, now), ZERO, ZERO, 0)
        return Usage(row[0], row[1], row[2], row[3]).rolled(key.budget_period, now)

    async def webhook_secret(self, key_id: str) -> str | None:
        cached = self._webhook_secrets.get(key_id)
        if cached is not None:
            return cached
        async with self.db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT webhook_secret_sealed FROM gateway_api_keys WHERE id = %s", (key_id,)
                )
            ).fetchone()
        if row is None:
            return None
        secret = self.sealer.unseal(bytes(row[0]))
        self._webhook_secrets[key_id] = secret
        return secret
