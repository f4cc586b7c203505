"""One LISTEN connection per process and channel, shared by everyone in the process who waits.

Every append NOTIFYs the log's channel, and every listening connection receives every
notification: each one costs the listening process a wake-up. So a process keeps one listening
connection per channel whatever the number of readers in it (projections, the relay, stream
watchers), and after handing a notification on it lets the ones arriving next gather for a few
milliseconds, to read them from the socket in one go. The first notification after a quiet spell
is handed on at once; under load a reader hears of appends at most every `gather_s`, which is all
a reader that re-reads from its checkpoint needs.

A notification is a hint, never the data: on (re)connection every subscriber is told "anything
may have changed" (an empty payload list), so nothing appended while no one listened is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import psycopg

from aigen.db.pool import Database

log = logging.getLogger("aigen.eventstore")

# Called with the payloads received (empty: anything may have changed).
Subscriber = Callable[[Sequence[str]], None]

GATHER_S = 0.01


class Listener:
    """The process's listening connection on one channel; `subscribe` returns the unsubscriber."""

    def __init__(self, key: tuple[int, str, str], *, gather_s: float = GATHER_S) -> None:
        self._key = key
        _, self.url, self.channel = key
        self.gather_s = gather_s
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], Awaitable[None]]:
        """Start hearing notifications; returns what stops it (the last one out closes the
        connection)."""
        self._subscribers.append(subscriber)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen(), name=f"listen:{self.channel}")
        else:
            subscriber(())  # the connection was up before this subscriber came: it may have missed some

        async def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(subscriber)
            if self._subscribers or self._task is None:
                return
            task, self._task = self._task, None
            self.connected.clear()
            if _LISTENERS.get(self._key) is self:
                del _LISTENERS[self._key]
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        return unsubscribe

    def _tell(self, payloads: Sequence[str]) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(payloads)
            except Exception:  # a subscriber's bug must not silence the others
                log.exception("a subscriber of %s failed", self.channel)

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f'LISTEN "{self.channel}"')
                    self.connected.set()
                    self._tell(())  # catch up on anything appended while no one listened
                    while True:
                        # `stop_after=1` still yields every notification that came in the same
                        # read, so one wake-up takes whatever gathered during the pause below.
                        payloads = [note.payload async for note in conn.notifies(stop_after=1)]
                        if payloads:
                            self._tell(payloads)
                        await asyncio.sleep(self.gather_s)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                self.connected.clear()
                log.warning(
                    "listener on %s lost its connection (%s); retrying", self.channel, type(exc).__name__
                )
                self._tell(())
                await asyncio.sleep(1.0)


_LISTENERS: dict[tuple[int, str, str], Listener] = {}


def listener(db: Database, channel: str) -> Listener:
    """The shared listener of this process (and event loop) on `channel` of `db`'s server."""
    # Per event loop too: a listener's task belongs to the loop it was started on.
    key = (id(asyncio.get_running_loop()), db.url, channel)
    found = _LISTENERS.get(key)
    if found is None:
        found = _LISTENERS[key] = Listener(key)
    return found
