"""gRPC plumbing: graceful shutdown (G15), rich error details, correlation ids, reflection."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from aigen import context, errors
from aigen.grpcx.client import call, channel
from aigen.grpcx.server import create_server
from aigen.v1 import catalog_pb2, catalog_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


class FakeCatalog(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.seen_correlation: str | None = None

    async def GetModel(self, request, context_):
        self.seen_correlation = context.correlation_id.get()
        if request.id == "slow":
            self.started.set()
            await asyncio.sleep(1.0)
            return catalog_pb2.Model(id="slow", slug="finished-after-shutdown-began")
        if request.id == "bad":
            raise errors.InvalidArgument(
                "2 parameters are invalid",
                [
                    errors.Violation("parameters.size", "must be one of 1:1, 3:2"),
                    errors.Violation("prompt", "is required"),
                ],
            )
        if request.id == "ok":
            return catalog_pb2.Model(id="ok", slug="ok")
        if request.id == "boom":
            raise RuntimeError("secret internals")
        if request.id == "busy":
            raise errors.ResourceExhausted("slow down", retry_after=2.5)
        raise errors.NotFound("model", request.id)


@pytest.fixture
async def served():
    servicer = FakeCatalog()
    server = create_server(
        [(catalog_pb2_grpc.add_CatalogServiceServicer_to_server, servicer, "aigen.v1.CatalogService")],
        service="test",
    )
    await server.start()
    yield server, servicer
    await server.stop(0)


async def test_g15_graceful_shutdown_not_serving_at_once_in_flight_calls_finish(served):
    server, servicer = served
    address = f"127.0.0.1:{server.port}"
    async with channel(address) as ch:
        stub = catalog_pb2_grpc.CatalogServiceStub(ch)
        health = health_pb2_grpc.HealthStub(ch)
        assert (
            await health.Check(health_pb2.HealthCheckRequest())
        ).status == health_pb2.HealthCheckResponse.SERVING
        in_flight = asyncio.ensure_future(stub.GetModel(catalog_pb2.GetModelRequest(id="slow")))
        await servicer.started.wait()
        stopping = asyncio.create_task(server.stop(grace=5, drain=0.5))
        await asyncio.sleep(0.1)
        # Health flips before the server stops accepting: balancers drain first.
        watched = await health.Check(
            health_pb2.HealthCheckRequest(service="aigen.v1.CatalogService"), timeout=1
        )
        assert watched.status == health_pb2.HealthCheckResponse.NOT_SERVING
        reply = await in_flight
        assert reply.slug == "finished-after-shutdown-began"
        await stopping
    async with grpc.aio.insecure_channel(address) as ch:
        with pytest.raises(grpc.RpcError) as info:
            await catalog_pb2_grpc.CatalogServiceStub(ch).GetModel(
                catalog_pb2.GetModelRequest(id="x"), timeout=1
            )
        assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_domain_errors_travel_with_details(served):
    server, _ = served
    async with channel(f"127.0.0.1:{server.port}") as ch:
        stub = catalog_pb2_grpc.CatalogServiceStub(ch)
        with pytest.raises(errors.InvalidArgument) as bad:
            await call(stub.GetModel, catalog_pb2.GetModelRequest(id="bad"))
        assert [(v.field, v.description) for v in bad.value.violations] == [
            ("parameters.size", "must be one of 1:1, 3:2"),
            ("prompt", "is required"),
        ]
        with pytest.raises(errors.NotFound) as missing:
            await call(stub.GetModel, catalog_pb2.GetModelRequest(id="kie-nothing"))
        assert (missing.value.resource_type, missing.value.name) == ("model", "kie-nothing")
        with pytest.raises(errors.ResourceExhausted) as busy:
            await call(stub.GetModel, catalog_pb2.GetModelRequest(id="busy"))
        assert busy.value.retry_after == pytest.approx(2.5)
        with pytest.raises(grpc.RpcError) as boom:
            await stub.GetModel(catalog_pb2.GetModelRequest(id="boom"))
        assert boom.value.code() == grpc.StatusCode.INTERNAL
        assert "secret internals" not in (boom.value.details() or "")


async def test_correlation_id_propagates_from_the_caller(served):
    server, servicer = served
    async with channel(f"127.0.0.1:{server.port}") as ch:
        stub = catalog_pb2_grpc.CatalogServiceStub(ch)
        with context.bound(correlation="corr-123"), pytest.raises(errors.NotFound):
            await call(stub.GetModel, catalog_pb2.GetModelRequest(id="x"))
    assert servicer.seen_correlation == "corr-123"


async def test_the_correlation_id_comes_back_in_the_trailers_of_answers_and_errors(served):
    server, _ = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = catalog_pb2_grpc.CatalogServiceStub(ch)
        refused = stub.GetModel(
            catalog_pb2.GetModelRequest(id="bad"), metadata=(("x-correlation-id", "c-1"),)
        )
        with pytest.raises(grpc.RpcError) as bad:
            await refused
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        trailers = dict(await refused.trailing_metadata())
        assert trailers["x-correlation-id"] == "c-1"
        assert "grpc-status-details-bin" in trailers  # the rich error details are still there
        answered = stub.GetModel(
            catalog_pb2.GetModelRequest(id="ok"), metadata=(("x-correlation-id", "c-2"),)
        )
        assert (await answered).slug == "ok"
        assert dict(await answered.trailing_metadata())["x-correlation-id"] == "c-2"
        unknown = stub.GetModel(catalog_pb2.GetModelRequest(id="x"))
        with pytest.raises(grpc.RpcError):
            await unknown
        assert dict(await unknown.trailing_metadata())["x-correlation-id"]  # made up when not sent


async def test_reflection_lists_the_services(served):
    server, _ = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)

        async def requests():
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        names = []
        async for reply in stub.ServerReflectionInfo(requests()):
            names = [s.name for s in reply.list_services_response.service]
            break
    assert "aigen.v1.CatalogService" in names and "grpc.health.v1.Health" in names
