"""Serve an ASGI app on a free loopback port inside the running event loop (tests, simulator)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from aigen.simulator.base import FakeProvider


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run `app` until the block exits; yields its base URL."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # surfaces the start-up error
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def serve_fake(
    fake: FakeProvider, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[FakeProvider]:
    """Serve one fake provider; its `base_url` points at the live server inside the block."""
    async with serve_asgi(fake, host, port) as url:
        fake.base_url = url
        yield fake
