"""Wakes whoever waits on one stream when it gets new events.

Appends NOTIFY "<position> <stream id>"; a waiter for `task-123` wakes only for that stream. The
notifications come through the process's shared listener on the log's channel (`listener.py`).
A missed notification costs latency, not correctness: waiters re-read the stream on a timeout,
and every waiter is woken when the listening connection is (re)established.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

from aigen.db.pool import Database
from aigen.eventstore.listener import listener


class StreamNotifier:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.channel = db.channel("events")
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._unsubscribe: Callable[[], Awaitable[None]] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        if self._unsubscribe is None:
            shared = listener(self.db, self.channel)
            self.connected = shared.connected
            self._unsubscribe = shared.subscribe(self._heard)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            await unsubscribe()

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

    def _heard(self, payloads: Sequence[str]) -> None:
        if not payloads:  # (re)connected: anything may have changed
            for waiters in self._waiters.values():
                for event in waiters:
                    event.set()
            return
        if not self._waiters:
            return
        for payload in payloads:
            _, _, stream_id = payload.partition(" ")
            for event in self._waiters.get(stream_id, ()):
                event.set()
