"""Provider health checks: on demand, on a schedule, and as the probe that closes a breaker.

The check itself is the catalog's `CheckProviderHealth`: it picks one of the provider's models
and asks its adapter's `health()` with the key a task would use (Kie's credit balance, OpenAI's
model list, ElevenLabs' subscription, Replicate's account …), which costs nothing where the
provider allows. Here the answer is recorded (`ProviderHealthChecked` on `provider-<slug>`) and,
when it is good and the provider's breaker is open, the breaker closes (`ProviderRecovered`,
appended at the version just read, so two probes never close it twice).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aigen import errors
from aigen.eventstore.mapper import to_new_event
from aigen.eventstore.store import ANY_VERSION, ConcurrencyError, EventStore
from aigen.grpcx.client import call
from aigen.ops.streams import breaker_stream, provider_stream
from aigen.v1 import catalog_pb2, catalog_pb2_grpc, ops_pb2

from services.ops.repository import OpsRepository

log = logging.getLogger("aigen.ops.health")

ON_DEMAND = "on_demand"
SCHEDULED = "scheduled"
BREAKER_PROBE = "breaker_probe"


@dataclass(frozen=True)
class CheckResult:
    reply: catalog_pb2.ProviderHealth
    breaker_open: bool
    recovered: bool


class Prober:
    def __init__(
        self, store: EventStore, repo: OpsRepository, catalog: catalog_pb2_grpc.CatalogServiceStub
    ) -> None:
        self.store = store
        self.repo = repo
        self.catalog = catalog
        self.checks = 0

    async def check(self, provider: str, trigger: str) -> CheckResult:
        reply: catalog_pb2.ProviderHealth = await call(
            self.catalog.CheckProviderHealth, catalog_pb2.CheckProviderHealthRequest(provider=provider)
        )
        slug = reply.provider or provider
        event = ops_pb2.ProviderHealthChecked(
            provider_slug=slug,
            ok=reply.ok,
            message=reply.message,
            latency_ms=reply.latency_ms,
            balance_unit=reply.balance_unit,
            trigger=trigger,
        )
        if reply.HasField("balance"):
            event.balance = reply.balance
        await self.store.append(provider_stream(slug), ANY_VERSION, [to_new_event(event)])
        self.checks += 1
        view = await self.repo.breaker_view(slug)
        if not (reply.ok and view.open):
            if not reply.ok:
                log.warning("%s health check failed (%s): %s", slug, trigger, reply.message)
            return CheckResult(reply, view.open, False)
        recovered = ops_pb2.ProviderRecovered(
            provider_slug=slug,
            reason=f"health check passed ({trigger}): {reply.message}",
            trigger=trigger,
            latency_ms=reply.latency_ms,
        )
        try:
            await self.store.append(breaker_stream(slug), view.version, [to_new_event(recovered)])
        except ConcurrencyError:
            # Another probe (or the evaluator) changed the breaker meanwhile; its decision stands.
            fresh = await self.repo.breaker_view(slug)
            return CheckResult(reply, fresh.open, False)
        log.warning("%s recovered: breaker closed after a passing health check (%s)", slug, trigger)
        return CheckResult(reply, False, True)

    async def check_quietly(self, provider: str, trigger: str) -> CheckResult | None:
        """A scheduled check: trouble is logged, never raised."""
        try:
            return await self.check(provider, trigger)
        except (errors.DomainError, ConnectionError, TimeoutError) as exc:
            log.warning("health check of %s (%s) could not run: %s", provider, trigger, exc)
        except Exception:
            log.exception("health check of %s (%s) failed unexpectedly", provider, trigger)
        return None

    async def active_providers(self) -> list[str]:
        """Providers in use: active, and with a key (or needing none). A provider nobody set a
        key for is not "down", it is unconfigured, and checking it would only raise noise."""
        found: catalog_pb2.ListProvidersResponse = await call(
            self.catalog.ListProviders, catalog_pb2.ListProvidersRequest(active=True)
        )
        return sorted(
            p.slug for p in found.providers if p.active and (p.has_api_key or p.auth_style == "none")
        )

    async def check_all(self, trigger: str, *, concurrency: int = 8) -> int:
        """Check every active provider (a few at a time); returns how many checks ran."""
        slots = asyncio.Semaphore(concurrency)

        async def one(slug: str) -> CheckResult | None:
            async with slots:
                return await self.check_quietly(slug, trigger)

        results = await asyncio.gather(*(one(slug) for slug in await self.active_providers()))
        return sum(1 for r in results if r is not None)
