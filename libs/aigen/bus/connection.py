"""Connecting to NATS, failing fast with a message that names NATS and the reason."""

from __future__ import annotations

import asyncio
import logging
import math

import nats
from nats.aio.client import Client as NATS

from aigen.config import redact_url
from aigen.db.pool import StartupError

log = logging.getLogger("aigen.bus")


async def connect(url: str, *, name: str = "aigen", timeout: float = 5.0) -> NATS:
    client = NATS()

    async def on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    async def on_disconnect() -> None:
        if client.is_closed:
            return  # closed on purpose (shutdown): nothing to reconnect
        log.warning("nats: disconnected; reconnecting")

    async def on_reconnect() -> None:
        log.info("nats: reconnected")

    try:
        await asyncio.wait_for(
            client.connect(
                url,
                name=name,
                connect_timeout=math.ceil(timeout),
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                error_cb=on_error,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                # The first connect must fail fast; reconnects later may go on forever.
                max_outstanding_pings=3,
            ),
            timeout + 1,
        )
        return client
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        reason = str(exc) or type(exc).__name__
        raise StartupError(f"cannot reach NATS at {redact_url(url)}: {reason}") from exc
