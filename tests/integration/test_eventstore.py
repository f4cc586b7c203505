"""The event store's guarantees, against a real PostgreSQL."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from aigen.eventstore import ANY_VERSION, ConcurrencyError, EventStore, NewEvent
from aigen.eventstore.store import ManyConflict, StreamAppend


def events(*names: str) -> list[NewEvent]:
    return [NewEvent(type=f"test.{n}", payload=n.encode()) for n in names]


async def test_append_and_read_stream(db):
    store = EventStore(db)
    result = await store.append("task-1", 0, events("a", "b"))
    assert (result.first_version, result.last_version) == (1, 2)
    read = await store.read_stream("task-1")
    assert [(e.version, e.payload) for e in read] == [(1, b"a"), (2, b"b")]
    assert read[0].global_position < read[1].global_position


async def test_g1_stale_expected_version_rejected_nothing_written(db):
    store = EventStore(db)
    await store.append("task-1", 0, events("a"))
    with pytest.raises(ConcurrencyError) as info:
        await store.append("task-1", 0, events("b"))
    assert info.value.actual == 1
    with pytest.raises(ConcurrencyError):
        await store.append("task-1", 5, events("c"))  # ahead of the stream is just as wrong
    assert [e.payload for e in await store.read_stream("task-1")] == [b"a"]
    assert await store.head_position() == (await store.read_stream("task-1"))[0].global_position


async def test_g2_concurrent_writers_exactly_one_wins_versions_gap_free(db):
    store = EventStore(db)
    await store.append("task-1", 0, events("start"))

    async def writer(i: int) -> bool:
        try:
            await store.append("task-1", 1, events(f"w{i}"))
            return True
        except ConcurrencyError:
            return False

    outcomes = await asyncio.gather(*(writer(i) for i in range(12)))
    assert outcomes.count(True) == 1
    versions = [e.version for e in await store.read_stream("task-1")]
    assert versions == [1, 2]


async def test_g3_multi_event_append_is_atomic(db):
    store = EventStore(db)
    ok1, ok2 = events("ok1", "ok2")
    # The third event repeats the first one's id: the batch fails on its last row.
    bad = [ok1, ok2, NewEvent(type="test.dup", payload=b"dup", event_id=ok1.event_id)]
    with pytest.raises(psycopg.errors.UniqueViolation):
        await store.append("task-1", 0, bad)
    assert await store.read_stream("task-1") == []
    assert await store.head_position() == 0
    ok = await store.append("task-1", 0, events("x", "y", "z"))
    assert ok.last_version - ok.first_version == 2
    positions = [e.global_position for e in await store.read_stream("task-1")]
    assert positions == sorted(positions)


async def test_idempotent_append_by_request_id(db):
    store = EventStore(db)
    first = await store.append("task-1", 0, events("created"), request_id="req-1")
    again = await store.append("task-1", 0, events("created"), request_id="req-1")
    assert again.duplicate and not first.duplicate
    assert (again.first_version, again.last_position) == (first.first_version, first.last_position)
    assert len(await store.read_stream("task-1")) == 1

    async def same_request() -> bool:
        return (await store.append("task-2", 0, events("c"), request_id="req-2")).duplicate

    results = await asyncio.gather(*(same_request() for _ in range(8)))
    assert results.count(False) == 1
    assert len(await store.read_stream("task-2")) == 1


async def test_g5_positions_read_in_order_tailing_reader_never_skips_a_late_commit(db):
    """A transaction that appends and stays open must not be overtaken by a later append."""
    store = EventStore(db)
    await store.append("s-0", 0, events("e0"))
    seen: list[int] = []
    cursor = 0

    async def read_new() -> None:
        nonlocal cursor
        for e in await store.read_all(cursor):
            seen.append(e.global_position)
            cursor = e.global_position

    await read_new()
    async with db.connection() as slow:
        async with slow.transaction():
            await store.append("s-slow", 0, events("slow"), conn=slow)
            # A second writer now: it must wait for the slow one, not slip in ahead of it.
            fast = asyncio.create_task(store.append("s-fast", 0, events("fast")))
            await asyncio.sleep(0.3)
            assert not fast.done(), "a later append committed before an earlier open one"
            await read_new()  # the tail sees neither yet
            assert len(seen) == 1
        await fast
    await read_new()
    stream_order = [(await store.read_stream(s))[0].global_position for s in ("s-0", "s-slow", "s-fast")]
    assert seen == stream_order == sorted(seen)
    assert len(set(seen)) == 3


async def test_read_all_filters_by_type_and_pages(db):
    store = EventStore(db)
    for i in range(5):
        await store.append(f"t-{i}", 0, [NewEvent("test.keep", b"k"), NewEvent("test.skip", b"s")])
    kept = await store.read_all(0, 100, types=["test.keep"])
    assert len(kept) == 5 and {e.type for e in kept} == {"test.keep"}
    first_page = await store.read_all(0, 4)
    second_page = await store.read_all(first_page[-1].global_position, 100)
    assert len(first_page) + len(second_page) == 10


async def test_any_version_appends_without_check(db):
    store = EventStore(db)
    await store.append("s", ANY_VERSION, events("a"))
    await store.append("s", ANY_VERSION, events("b"))
    assert [e.version for e in await store.read_stream("s")] == [1, 2]


async def test_any_version_appends_to_one_stream_queue_up_instead_of_colliding(db):
    """Appends without an expected version, racing on one stream, all land, gap-free: each takes
    the stream's version once it holds the position counter, not from a snapshot taken before it
    waited (that collided on (stream, version) and failed with a ConcurrencyError)."""
    store = EventStore(db)
    await store.append("hot", ANY_VERSION, events("first"))
    async with db.connection() as slow, slow.transaction():
        await store.append("hot", ANY_VERSION, events("slow"), conn=slow)
        racers = [
            asyncio.create_task(store.append("hot", ANY_VERSION, events(f"r{i}")))
            if i % 2
            else asyncio.create_task(store.append("hot", ANY_VERSION, events(f"r{i}a", f"r{i}b")))
            for i in range(4)
        ]
        # Every racer's statement has started (and taken its snapshot) and waits for the counter.
        async with db.connection() as probe:
            while True:
                row = await (
                    await probe.execute(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()"
                    )
                ).fetchone()
                if row and row[0] >= len(racers):
                    break
                await asyncio.sleep(0.01)
    await asyncio.gather(*racers)
    versions = [e.version for e in await store.read_stream("hot")]
    assert versions == list(range(1, 9))


async def test_append_many_writes_every_stream_in_one_statement_with_versions_and_positions(db):
    store = EventStore(db)
    await store.append("s-old", 0, events("a"))
    results = await store.append_many(
        [
            StreamAppend("s-new", 0, events("x", "y")),
            StreamAppend("s-old", 1, events("b")),
            StreamAppend("s-other", 0, events("z")),
        ]
    )
    assert [(r.stream_id, r.first_version, r.last_version) for r in results] == [
        ("s-new", 1, 2),
        ("s-old", 2, 2),
        ("s-other", 1, 1),
    ]
    # One block of positions, in the order given, right after the earlier append.
    assert [(r.first_position, r.last_position) for r in results] == [(2, 3), (4, 4), (5, 5)]
    assert [e.payload for e in await store.read_stream("s-old")] == [b"a", b"b"]
    assert [(e.stream_id, e.version) for e in await store.read_all()] == [
        ("s-old", 1),
        ("s-new", 1),
        ("s-new", 2),
        ("s-old", 2),
        ("s-other", 1),
    ]


async def test_append_many_refuses_all_when_one_stream_moved_and_names_it(db):
    store = EventStore(db)
    await store.append("s-1", 0, events("a"))
    await store.append("s-2", 0, events("a", "b"))
    head = await store.head_position()
    with pytest.raises(ManyConflict) as info:
        await store.append_many(
            [
                StreamAppend("s-1", 1, events("ok")),
                StreamAppend("s-2", 1, events("stale")),
                StreamAppend("s-3", 0, events("new")),
            ]
        )
    assert info.value.versions == {"s-2": 2}
    assert isinstance(info.value, ConcurrencyError)
    assert await store.head_position() == head  # nothing written, the counter did not move
    assert await store.read_stream("s-3") == []


async def test_append_many_runs_the_callers_statements_in_its_transaction(db):
    store = EventStore(db)
    async with db.connection() as conn:
        await conn.execute("CREATE TABLE side (k text PRIMARY KEY)")

    def side(*keys: str):  # type: ignore[no-untyped-def]
        async def insert(conn) -> None:  # type: ignore[no-untyped-def]
            await conn.execute("INSERT INTO side SELECT unnest(%s::text[])", (list(keys),))

        return insert

    await store.append_many([StreamAppend("s-1", 0, events("a"))], alongside=side("one", "two"))
    await store.append("s-2", 0, events("a"))
    with pytest.raises(ManyConflict):
        await store.append_many([StreamAppend("s-2", 0, events("b"))], alongside=side("three"))
    async with db.connection() as conn:
        rows = await (await conn.execute("SELECT k FROM side ORDER BY k")).fetchall()
    assert [r[0] for r in rows] == ["one", "two"]  # the refused append took its statements back


async def test_append_many_refuses_a_stream_named_twice(db):
    store = EventStore(db)
    with pytest.raises(ValueError, match="more than once"):
        await store.append_many([StreamAppend("s", 0, events("a")), StreamAppend("s", 1, events("b"))])


async def test_append_many_records_request_ids_and_refuses_all_on_a_replayed_one(db):
    from aigen.eventstore.store import ManyDuplicate

    store = EventStore(db)
    first = await store.append_many(
        [StreamAppend("s-1", 0, events("a"), "req-1"), StreamAppend("s-2", 0, events("b"))]
    )
    # Recorded as `append` records them: a single append of the same request is a replay.
    replay = await store.append("s-other", 0, events("x"), request_id="req-1")
    assert replay.duplicate and replay.stream_id == "s-1"
    assert (replay.first_position, replay.last_position) == (first[0].first_position, first[0].last_position)
    head = await store.head_position()
    with pytest.raises(ManyDuplicate) as info:
        await store.append_many(
            [StreamAppend("s-3", 0, events("c"), "req-new"), StreamAppend("s-4", 0, events("d"), "req-1")]
        )
    assert info.value.request_ids == ["req-1"]
    assert await store.head_position() == head  # nothing written
    assert await store.read_stream("s-3") == []
    assert not (await store.append("s-5", 0, events("e"), request_id="req-new")).duplicate
    with pytest.raises(ValueError, match="request id more than once"):
        await store.append_many(
            [StreamAppend("s-6", 0, events("f"), "r"), StreamAppend("s-7", 0, events("g"), "r")]
        )


async def test_append_many_racing_an_append_of_the_same_request_id_refuses_cleanly(db):
    from aigen.eventstore.store import ManyDuplicate

    store = EventStore(db)
    outcomes = await asyncio.gather(
        *(store.append_many([StreamAppend(f"m-{i}", 0, events("a"), "same")]) for i in range(4)),
        *(store.append(f"a-{i}", 0, events("a"), request_id="same") for i in range(4)),
        return_exceptions=True,
    )
    written = [o for o in outcomes if isinstance(o, list)] + [
        o for o in outcomes if not isinstance(o, (list, BaseException)) and not o.duplicate
    ]
    assert len(written) == 1  # one append took the request id; the others replayed or were refused
    assert all(isinstance(o, ManyDuplicate) for o in outcomes if isinstance(o, BaseException))
