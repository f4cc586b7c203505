"""Group commit: concurrent callers share a batch; a conflict is retried alone; keys never share one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aigen.groupcommit import GroupCommit


class Conflict(Exception):
    pass


class Log:
    def __init__(self, conflicting: set[str] | None = None, broken: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.alone: list[str] = []
        self.conflicting = conflicting or set()
        self.broken = broken
        self.gate = asyncio.Event()
        self.gate.set()

    async def write_batch(self, items: Sequence[str]) -> list[None]:
        await self.gate.wait()
        self.batches.append(list(items))
        if self.broken:
            raise OSError("connection lost")
        if self.conflicting & set(items):
            raise Conflict("a stream moved")
        return [None] * len(items)

    async def write_one(self, item: str) -> None:
        await self.gate.wait()
        self.alone.append(item)
        if self.broken:
            raise OSError("connection lost")
        if item in self.conflicting:
            raise Conflict(item)


async def behind_a_write(
    log: Log, group: GroupCommit[str, None], head: str, rest: Sequence[str]
) -> tuple[asyncio.Task[None], dict[str, asyncio.Task[None]]]:
    """Submit `head`, then `rest` while head's write is held; release the write. The tasks."""
    log.gate.clear()
    first = asyncio.create_task(group.submit(head))
    await asyncio.sleep(0)  # `head` is being written alone (nobody else waited)
    tasks = {k: asyncio.create_task(group.submit(k)) for k in rest}
    await asyncio.sleep(0)
    log.gate.set()
    return first, tasks


def committer(log: Log) -> GroupCommit[str, None]:
    return GroupCommit(log.write_batch, log.write_one, key=lambda s: s.split("#")[0], retry_alone=(Conflict,))


async def test_callers_arriving_while_a_batch_is_written_share_the_next_one():
    log = Log()
    group = committer(log)
    first, rest = await behind_a_write(log, group, "a", ("b", "c", "d"))
    await asyncio.gather(first, *rest.values())
    assert log.alone == ["a"]
    assert log.batches == [["b", "c", "d"]]
    assert (group.batches, group.items) == (2, 4)


async def test_a_conflict_refuses_the_batch_and_each_piece_is_retried_alone():
    log = Log(conflicting={"c"})
    group = committer(log)
    head, tasks = await behind_a_write(log, group, "a", ("b", "c", "d"))
    await head
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    assert tasks["b"].exception() is None and tasks["d"].exception() is None
    assert isinstance(tasks["c"].exception(), Conflict)
    assert log.alone == ["a", "b", "c", "d"]


async def test_another_error_reaches_every_caller_of_the_batch():
    log = Log(broken=True)
    group = committer(log)
    results = await asyncio.gather(*(group.submit(k) for k in ("a", "b", "c")), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)


async def test_two_pieces_with_one_key_never_share_a_batch():
    log = Log()
    group = committer(log)
    head, rest = await behind_a_write(log, group, "x", ("s#1", "t", "s#2"))
    await asyncio.gather(head, *rest.values())
    assert log.batches == [["s#1", "t"]]
    assert log.alone == ["x", "s#2"]


async def test_batches_are_capped():
    log = Log()
    group = GroupCommit(log.write_batch, log.write_one, key=str, max_batch=2)
    head, rest = await behind_a_write(log, group, "0", [str(i) for i in range(1, 6)])
    await asyncio.gather(head, *rest.values())
    assert log.batches == [["1", "2"], ["3", "4"]]
    assert log.alone == ["0", "5"]


async def test_a_cancelled_writer_leaves_no_caller_waiting():
    log = Log()
    group = committer(log)
    log.gate.clear()
    waiting = asyncio.create_task(group.submit("a"))
    await asyncio.sleep(0)
    assert group._writer is not None
    group._writer.cancel()
    with pytest.raises(RuntimeError, match="interrupted"):
        await waiting


async def test_a_writer_cancelled_mid_write_leaves_no_caller_waiting():
    log = Log()
    group = committer(log)
    log.gate.clear()
    waiting = [asyncio.create_task(group.submit(k)) for k in ("a", "b")]
    await asyncio.sleep(0.01)  # "a" alone is being written, "b" waits for the next batch
    assert group._writer is not None
    group._writer.cancel()
    for task in waiting:
        with pytest.raises(RuntimeError, match="interrupted"):
            await task
