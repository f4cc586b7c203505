"""Group commit: concurrent callers share one transaction.

A caller submits its piece of work and waits. If no batch is being written, its piece starts one
at once; pieces submitted while a batch is being written gather and go together in the next one.
An idle system waits for nobody, a busy one pays one transaction (one BEGIN, one COMMIT, one turn
of the event log's position counter) for many callers instead of one each.

A batch is all or nothing. When it fails with one of the `retry_alone` errors (a version conflict
of one stream refuses the whole batch), every piece is written again on its own, so only the
pieces that really conflict see the error. Any other error reaches every caller of the batch.

Pieces with the same key never share a batch (two appends to one stream must be ordered); the
later one waits for the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Waiting(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Result]


class GroupCommit(Generic[Item, Result]):
    """`write_batch` answers one result per item, in order; `write_one` the result of one."""

    def __init__(
        self,
        write_batch: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        write_one: Callable[[Item], Awaitable[Result]],
        *,
        key: Callable[[Item], str],
        retry_alone: tuple[type[BaseException], ...] = (),
        max_batch: int = 256,
    ) -> None:
        self.write_batch = write_batch
        self.write_one = write_one
        self.key = key
        self.retry_alone = retry_alone
        self.max_batch = max_batch
        self._waiting: list[_Waiting[Item, Result]] = []
        self._in_flight: list[_Waiting[Item, Result]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0
        self.items = 0

    async def submit(self, item: Item) -> Result:
        """Write `item` with whatever else is waiting; its result once it is committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
            self._writer.add_done_callback(self._ended)
        return await future

    def _ended(self, writer: asyncio.Task[None]) -> None:
        """The writer stopped: if it was cancelled (shutdown) — even before it began — nobody may
        wait forever for an answer."""
        if writer.cancelled():
            _settle_all(self._in_flight, RuntimeError("group commit interrupted"))
            _settle_all(self._waiting, RuntimeError("group commit interrupted"))
            self._in_flight, self._waiting = [], []

    def _next_batch(self) -> list[_Waiting[Item, Result]]:
        batch: list[_Waiting[Item, Result]] = []
        later: list[_Waiting[Item, Result]] = []
        keys: set[str] = set()
        for waiting in self._waiting:
            key = self.key(waiting.item)
            if len(batch) >= self.max_batch or key in keys:
                later.append(waiting)
            else:
                keys.add(key)
                batch.append(waiting)
        self._waiting = later
        return batch

    async def _write(self) -> None:
        while self._waiting:
            self._in_flight = self._next_batch()
            await self._write_batch(self._in_flight)
            self._in_flight = []

    async def _write_batch(self, batch: list[_Waiting[Item, Result]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            if len(batch) == 1:
                results: Sequence[Result] = [await self.write_one(batch[0].item)]
            else:
                results = await self.write_batch([w.item for w in batch])
        except self.retry_alone as exc:
            if len(batch) == 1:
                _settle_all(batch, exc)
                return
            for waiting in batch:
                try:
                    result = await self.write_one(waiting.item)
                except Exception as alone:
                    _settle(waiting, alone)
                else:
                    _answer(waiting, result)
        except Exception as exc:
            _settle_all(batch, exc)
        else:
            for waiting, result in zip(batch, results, strict=True):
                _answer(waiting, result)


def _answer(waiting: _Waiting[Item, Result], result: Result) -> None:
    if not waiting.future.done():  # its caller was cancelled meanwhile
        waiting.future.set_result(result)


def _settle_all(batch: Sequence[_Waiting[Item, Result]], exc: BaseException) -> None:
    for waiting in batch:
        _settle(waiting, exc)


def _settle(waiting: _Waiting[Item, Result], exc: BaseException) -> None:
    if not waiting.future.done():  # its caller was cancelled meanwhile
        waiting.future.set_exception(exc)
