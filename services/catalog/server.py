"""Catalog wiring: seed definitions at start, serve CatalogService, count usage."""

from __future__ import annotations

from aigen.grpcx.server import Registration
from aigen.projections.runner import ProjectionRunner
from aigen.providers.base import make_http_client
from aigen.runtime import Runtime, ServiceSpec
from aigen.secrets import Sealer
from aigen.v1 import catalog_pb2_grpc

from services.catalog.service import CatalogService, CatalogStore
from services.catalog.usage import ModelUsageProjection


async def build(runtime: Runtime) -> list[Registration]:
    store = CatalogStore(runtime.db)
    await store.seed()
    sealer = Sealer(runtime.settings.secret_key) if runtime.settings.secret_key else None
    runtime.add_worker("catalog-listener", store.listen)
    runtime.add_worker("projection:model-usage", ProjectionRunner(runtime.db, ModelUsageProjection()).run)
    runtime.extra["store"] = store
    http = make_http_client()  # provider health checks
    runtime.on_close(http.aclose)
    service = CatalogService(store, sealer, http=http)
    return [(catalog_pb2_grpc.add_CatalogServiceServicer_to_server, service, "aigen.v1.CatalogService")]


SPEC = ServiceSpec(name="catalog", migration_packages=(("services.catalog", "catalog"),), build=build)
