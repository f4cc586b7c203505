"""Everything a request handler needs, built once at start and handed to the app (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from aigen.db.pool import Database
from aigen.netguard import NetGuard
from aigen.objectstore.signing import UrlSigner
from aigen.v1 import catalog_pb2_grpc, generation_pb2_grpc, ops_pb2_grpc, storage_pb2_grpc, studio_pb2_grpc
from fastapi import Request

from services.gateway.holds import Holds
from services.gateway.key_store import KeyStore
from services.gateway.ledger_queries import LedgerQueries
from services.gateway.links import ResultLinks
from services.gateway.ratelimit import RateLimiter
from services.gateway.settings import GatewaySettings


@dataclass
class OpsStubs:
    """The ops service: provider health, error log, alerts."""

    health: ops_pb2_grpc.HealthCheckServiceStub
    errors: ops_pb2_grpc.ErrorLogServiceStub
    alerts: ops_pb2_grpc.SystemAlertServiceStub


@dataclass
class Services:
    """gRPC stubs of the services the gateway fronts."""

    catalog: catalog_pb2_grpc.CatalogServiceStub
    generation: generation_pb2_grpc.GenerationServiceStub
    poller: generation_pb2_grpc.PollerServiceStub
    storage: storage_pb2_grpc.StorageServiceStub | None
    studio: studio_pb2_grpc.StudioServiceStub | None
    ops: OpsStubs | None = None


@dataclass
class Gateway:
    settings: GatewaySettings
    public_url: str
    db: Database
    services: Services
    keys: KeyStore
    limiter: RateLimiter
    holds: Holds
    ledger: LedgerQueries
    links: ResultLinks
    signer: UrlSigner | None
    guard: NetGuard
    callback_secret: str


def gateway_of(request: Request) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found


async def gateway(request: Request) -> Gateway:
    """The dependency. A coroutine, so FastAPI calls it on the event loop: a plain function
    dependency is run in a worker thread, a thread hand-off on every request."""
    return gateway_of(request)
