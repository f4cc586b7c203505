"""Wakes whoever waits on one stream when it gets new events (one LISTEN connection per process).

Appends NOTIFY "<position> <stream id>"; a waiter for `task-123` wakes only for that stream. A
missed notification costs latency, not correctness: waiters re-read the stream on a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

import psycopg

from aigen.db.pool import Database

log = logging.getLogger("aigen.eventstore")


class StreamNotifier:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.channel = db.channel("events")
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="stream-notifier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.contextmanager
    def subscribe(self, stream_id: str):  # type: ignore[no-untyped-def]
        event = asyncio.Event()
        self._waiters[stream_id].add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(stream_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    self._waiters.pop(stream_id, None)

    def _wake(self, stream_id: str) -> None:
        for event in self._waiters.get(stream_id, ()):
            event.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.db.url, autocommit=True) as conn:
                    await conn.execute(f'LISTEN "{self.channel}"')
                    self.connected.set()
                    self._wake_all()  # anything appended while we were not listening
                    async for note in conn.notifies():
                        _, _, stream_id = note.payload.partition(" ")
                        if stream_id:
                            self._wake(stream_id)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                self.connected.clear()
                log.warning("stream notifier lost its connection (%s); retrying", type(exc).__name__)
                self._wake_all()
                await asyncio.sleep(1.0)
