"""Client channels: default deadlines, retries on UNAVAILABLE, context propagation."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc import aio

from aigen import errors
from aigen.grpcx.interceptors import ClientStreamInterceptor, ClientUnaryInterceptor
from aigen.grpcx.status import from_rpc_error

T = TypeVar("T")

# gRPC's own retry machinery: transparent retries of calls that failed with UNAVAILABLE
# (server restarting, connection reset) before any response was received.
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def channel(address: str, *, default_timeout: float = 30.0, stream_timeout: float = 3600.0) -> aio.Channel:
    return aio.insecure_channel(
        address,
        options=[
            ("grpc.service_config", _SERVICE_CONFIG),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.keepalive_time_ms", 30_000),
        ],
        interceptors=[ClientUnaryInterceptor(default_timeout), ClientStreamInterceptor(stream_timeout)],
    )


async def call(fn: Callable[..., Awaitable[T]], request: Any, **kwargs: Any) -> T:
    """Call a stub method, turning a status with domain details back into the domain error."""
    try:
        return await fn(request, **kwargs)
    except grpc.RpcError as exc:
        domain = from_rpc_error(exc)
        if domain is not None:
            raise domain from None
        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise errors.Unavailable(f"a service did not answer: {exc.details()}") from exc
        raise
