"""The lease work queue behind dispatch and polling (G10, G11, G12), on real PostgreSQL."""

from __future__ import annotations

import asyncio
import collections

import pytest
from aigen.workqueue import WorkQueue, serve


@pytest.fixture
async def queue_db(db):
    async with db.transaction() as conn:
        await conn.execute(
            """
            CREATE TABLE test_jobs (
                key text PRIMARY KEY, due_at timestamptz NOT NULL, lease_owner text, lease_until timestamptz,
                claims integer NOT NULL DEFAULT 0, attempts integer NOT NULL DEFAULT 0,
                state jsonb NOT NULL DEFAULT '{}'::jsonb, created_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
    return db


async def add(db, queue: WorkQueue, *keys: str, delay_s: float = 0.0) -> None:
    async with db.transaction() as conn:
        for key in keys:
            await queue.enqueue(conn, key, delay_s=delay_s)


async def test_g10_work_of_a_dead_worker_is_redelivered_after_its_lease(queue_db):
    db = queue_db
    dead = WorkQueue(db, "test_jobs", owner="dead", lease_s=0.5)
    alive = WorkQueue(db, "test_jobs", owner="alive", lease_s=0.5)
    await add(db, dead, "job-1")
    assert [j.key for j in await dead.claim(10)] == ["job-1"]
    assert await alive.claim(10) == []  # leased: nobody else gets it
    await asyncio.sleep(0.7)  # the worker died without finishing; its lease runs out
    taken = await alive.claim(10)
    assert [j.key for j in taken] == ["job-1"] and taken[0].claims == 2
    async with db.transaction() as conn:
        assert not await dead.complete(conn, "job-1")  # the dead worker's late word does not count
        assert await alive.complete(conn, "job-1")
    assert await alive.size() == 0


async def test_g10_deferred_retries_honour_their_delay(queue_db):
    db = queue_db
    queue = WorkQueue(db, "test_jobs", lease_s=5)
    await add(db, queue, "job-1")
    [job] = await queue.claim(1)
    async with db.transaction() as conn:
        assert await queue.reschedule(conn, job.key, delay_s=0.6, state={"errors": 1})
    assert await queue.claim(1) == []
    wait = await queue.seconds_until_next()
    assert wait is not None and 0.3 < wait <= 0.6
    await asyncio.sleep(0.7)
    [again] = await queue.claim(1)
    assert again.attempts == 1 and again.state == {"errors": 1} and again.claims == 1


async def test_g11_poison_work_is_dead_lettered_and_the_queue_keeps_flowing(queue_db):
    db = queue_db
    queue = WorkQueue(db, "test_jobs", lease_s=5, max_claims=3)
    await add(db, queue, "poison", "healthy")
    processed = []
    for _ in range(6):
        for job in await queue.claim(10):
            if job.key == "poison":
                await queue.release(job.key, delay_s=0)  # processing blew up again
            else:
                async with db.transaction() as conn:
                    await queue.complete(conn, job.key)
                processed.append(job.key)
    assert processed == ["healthy"]
    assert await queue.size() == 0
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT source, subject, deliveries FROM dead_letters")).fetchone()
    assert row == ("test_jobs", "poison", 3)


async def test_g12_replicas_never_hold_one_job_at_the_same_time(queue_db):
    db = queue_db
    seed = WorkQueue(db, "test_jobs")
    await add(db, seed, *(f"job-{i}" for i in range(200)))
    holding: collections.Counter[str] = collections.Counter()
    worst = 0
    done: collections.Counter[str] = collections.Counter()

    async def replica(name: str) -> None:
        nonlocal worst
        queue = WorkQueue(db, "test_jobs", owner=name, lease_s=30)
        for _ in range(40):
            jobs = await queue.claim(7)
            if not jobs and await queue.size() == 0:
                return
            for job in jobs:
                holding[job.key] += 1
                worst = max(worst, holding[job.key])
                await asyncio.sleep(0)
                holding[job.key] -= 1
                async with db.transaction() as conn:
                    if job.attempts < 2:
                        await queue.reschedule(conn, job.key, delay_s=0)
                    else:
                        await queue.complete(conn, job.key)
                        done[job.key] += 1

    await asyncio.gather(*(replica(f"r{i}") for i in range(4)))
    assert worst == 1
    assert len(done) == 200 and set(done.values()) == {1}


async def test_grouped_reschedules_commit_each_job_and_respect_leases(queue_db):
    db = queue_db
    mine = WorkQueue(db, "test_jobs", owner="mine", lease_s=5)
    other = WorkQueue(db, "test_jobs", owner="other", lease_s=5)
    await add(db, mine, *(f"job-{i}" for i in range(20)))
    jobs = await mine.claim(20)
    assert len(jobs) == 20
    # Concurrent reschedules gather into shared statements; each caller learns its own outcome.
    outcomes = await asyncio.gather(
        *(
            mine.reschedule_soon(job.key, delay_s=30, state={"n": i}, count_attempt=i % 2 == 0)
            for i, job in enumerate(jobs)
        )
    )
    assert outcomes == [True] * 20
    async with db.connection() as conn:
        rows = await (
            await conn.execute("SELECT key, lease_owner, claims, attempts, state FROM test_jobs ORDER BY key")
        ).fetchall()
    by_key = {key: (owner, claims, attempts, state) for key, owner, claims, attempts, state in rows}
    for i, job in enumerate(jobs):
        assert by_key[job.key] == (None, 0, 1 if i % 2 == 0 else 0, {"n": i})
    assert await mine.claim(20) == []  # all due in 30 s
    # A worker that no longer holds a job cannot move it.
    await add(db, mine, "late")
    [late] = await other.claim(1)
    assert not await mine.reschedule_soon(late.key, delay_s=0)
    assert await other.reschedule_soon(late.key, delay_s=0, state=None)


async def test_held_leases_are_renewed_together_while_held(queue_db):
    db = queue_db
    holder = WorkQueue(db, "test_jobs", owner="holder", lease_s=2.0)
    rival = WorkQueue(db, "test_jobs", owner="rival", lease_s=60)
    await add(db, holder, "a", "b", "c")
    jobs = await holder.claim(3)
    assert {j.key for j in jobs} == {"a", "b", "c"}
    async with holder.held("a"), holder.held("b"):
        await asyncio.sleep(4.5)  # over two lease lengths: only renewals keep them
        assert [j.key for j in await rival.claim(3)] == ["c"]  # c was not held: it lapsed
    await asyncio.sleep(2.2)  # no longer held: their leases run out
    assert sorted(j.key for j in await rival.claim(3)) == ["a", "b"]


async def test_prefetching_replicas_never_hold_one_job_at_once_and_hand_back_on_stop(queue_db):
    db = queue_db
    seed = WorkQueue(db, "test_jobs")
    await add(db, seed, *(f"job-{i}" for i in range(150)))
    holding: collections.Counter[str] = collections.Counter()
    worst = 0
    done: collections.Counter[str] = collections.Counter()
    stop = asyncio.Event()

    def replica(name: str):
        queue = WorkQueue(db, "test_jobs", owner=name, lease_s=30)

        async def handle(job) -> None:
            nonlocal worst
            holding[job.key] += 1
            worst = max(worst, holding[job.key])
            await asyncio.sleep(0.001)
            holding[job.key] -= 1
            async with queue.held(job.key):
                if job.attempts < 2:
                    await queue.reschedule_soon(job.key, delay_s=0)
                else:
                    async with db.transaction() as conn:
                        await queue.complete(conn, job.key)
                    done[job.key] += 1

        return serve(queue, handle, stop, concurrency=4, prefetch=8, wake=asyncio.Event(), idle_s=0.05)

    runs = [asyncio.create_task(replica(f"r{i}")) for i in range(3)]
    for _ in range(600):
        if len(done) == 150:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*runs)
    assert worst == 1
    assert len(done) == 150 and set(done.values()) == {1}


async def test_a_stopping_worker_hands_back_the_jobs_it_claimed_ahead(queue_db):
    db = queue_db
    queue = WorkQueue(db, "test_jobs", owner="stopping", lease_s=60)
    await add(db, queue, *(f"job-{i}" for i in range(10)))
    stop = asyncio.Event()
    started: list[str] = []
    gate = asyncio.Event()

    async def handle(job) -> None:
        started.append(job.key)
        await gate.wait()
        async with db.transaction() as conn:
            await queue.complete(conn, job.key)

    run = asyncio.create_task(serve(queue, handle, stop, concurrency=2, prefetch=8, wake=asyncio.Event()))
    while len(started) < 2:
        await asyncio.sleep(0.01)
    stop.set()
    gate.set()
    await run
    # The two in hand finished; the ones waiting in line are claimable at once by anyone, with
    # no failed claim counted against them.
    other = WorkQueue(db, "test_jobs", owner="other", lease_s=60)
    rest = await other.claim(10)
    assert len(rest) == 8 and {j.claims for j in rest} == {1}


async def test_enqueue_many_keeps_existing_jobs_and_complete_many_respects_leases(queue_db):
    db = queue_db
    mine = WorkQueue(db, "test_jobs", owner="mine")
    theirs = WorkQueue(db, "test_jobs", owner="theirs")
    await add(db, mine, "old")
    assert [j.key for j in await mine.claim(10)] == ["old"]
    async with db.transaction() as conn:
        await mine.enqueue_many(conn, ["old", "new-1", "new-2"], delay_s=0.0)
    claimed = {j.key for j in await theirs.claim(10)}
    assert claimed == {"new-1", "new-2"}  # "old" was kept as it was: still leased by mine
    async with db.transaction() as conn:
        await mine.complete_many(conn, ["old", "new-1"])  # new-1 is theirs: not completed
    async with db.connection() as conn:
        rows = await (await conn.execute("SELECT key FROM test_jobs ORDER BY key")).fetchall()
    assert [r[0] for r in rows] == ["new-1", "new-2"]


async def test_a_consumed_event_adds_its_job_exactly_once_grouped_with_others(queue_db):
    import uuid

    db = queue_db
    queue = WorkQueue(db, "test_jobs", owner="w")
    events = [uuid.uuid4() for _ in range(40)]
    # A burst at once: grouped into a few statements, each event's answer its own.
    first = await asyncio.gather(
        *(
            queue.enqueue_for_event("c", event, f"job-{i}", delay_s=0.0, state={"n": i})
            for i, event in enumerate(events)
        )
    )
    assert first == [True] * 40
    assert queue._event_jobs.batches < 40
    # Redelivered (two of them at once, beside a new one): nothing added, the new one is.
    again = await asyncio.gather(
        queue.enqueue_for_event("c", events[0], "job-0", delay_s=0.0, state={"n": 99}),
        queue.enqueue_for_event("c", events[1], "job-1", delay_s=0.0),
        queue.enqueue_for_event("c", uuid.uuid4(), "job-new", delay_s=60.0, state={"n": 41}),
    )
    assert again == [False, False, True]
    # Another consumer's record of the same event is its own.
    assert await queue.enqueue_for_event("other", events[2], "job-2-other", delay_s=0.0) is True
    async with db.connection() as conn:
        rows = await (await conn.execute("SELECT key, state FROM test_jobs ORDER BY key")).fetchall()
        tracked = await (
            await conn.execute("SELECT consumer, count(*) FROM consumer_tracking GROUP BY 1 ORDER BY 1")
        ).fetchall()
    states = dict(rows)
    assert len(states) == 42 and states["job-0"] == {"n": 0}
    assert tracked == [("c", 41), ("other", 1)]
    claimed = {job.key for job in await queue.claim(100)}
    assert "job-new" not in claimed and len(claimed) == 41  # its delay holds it back


async def _vacuums(db, table: str) -> int:
    async with db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = to_regclass(%s)", (table,)
            )
        ).fetchone()
    return int(row[0]) if row else 0


async def test_a_queue_vacuums_its_table_once_dead_rows_outnumber_live_ones(queue_db):
    """Every reschedule leaves a dead row version; a busy queue must not wait for autovacuum
    (once a minute at best, off on some servers) while its claims slow down."""
    db = queue_db
    queue = WorkQueue(db, "test_jobs", owner="w")
    keys = [f"job-{i}" for i in range(100)]
    await add(db, queue, *keys)
    assert not await queue.tidy(min_dead=300)  # nothing dead yet: no vacuum
    from aigen.workqueue import Reschedule

    # 6,000 updates next to 100 live rows; most are HOT and pruned as pages are read, which
    # still leaves hundreds of dead versions to vacuum.
    for _ in range(30):
        await queue.claim(100)
        async with db.connection() as conn:
            await queue.reschedule_many(conn, [Reschedule(key, 0.0) for key in keys])
    before = await _vacuums(db, "test_jobs")
    # The server publishes its row counts within a second or so of each transaction.
    deadline = asyncio.get_running_loop().time() + 10
    while not await queue.tidy(min_dead=300):
        assert asyncio.get_running_loop().time() < deadline, "dead rows never counted"
        await asyncio.sleep(0.2)
    assert await _vacuums(db, "test_jobs") == before + 1
    assert not await queue.tidy(min_dead=300)  # vacuumed: nothing left to do
    assert len(await queue.claim(100)) == 100  # the jobs themselves are untouched


async def test_serving_workers_tidy_their_queue_in_the_background(queue_db):
    db = queue_db
    queue = WorkQueue(db, "test_jobs", owner="w")
    keys = [f"job-{i}" for i in range(50)]
    await add(db, queue, *keys)
    handled: collections.Counter[str] = collections.Counter()

    async def handle(job):
        handled[job.key] += 1
        await queue.reschedule_soon(job.key, delay_s=0.0)

    before = await _vacuums(db, "test_jobs")
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve(queue, handle, stop, concurrency=8, wake=asyncio.Event(), tidy_every_s=0.5, tidy_min_dead=200)
    )
    deadline = asyncio.get_running_loop().time() + 30
    while await _vacuums(db, "test_jobs") == before:
        assert asyncio.get_running_loop().time() < deadline, "the serving loop never vacuumed"
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(server, 10)
    assert sum(handled.values()) > 200
