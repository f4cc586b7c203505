"""Outbox relay and event consumers against real PostgreSQL and a real nats-server (G8, G9, G14, G16)."""

from __future__ import annotations

import asyncio
import collections
import contextlib

import pytest
from aigen.bus import topology as topo
from aigen.bus.batches import BatchConsumer
from aigen.bus.connection import connect as connect_nats
from aigen.bus.consumer import Consumer, Delivery
from aigen.bus.relay import Relay, envelope_of
from aigen.eventstore import EventStore
from aigen.eventstore.mapper import to_new_event
from aigen.v1 import common_pb2, events_pb2
from nats.js import api as js_api


@pytest.fixture
async def nc(nats_url):
    conn = await connect_nats(nats_url)
    yield conn
    await conn.close()


def task_events(task: str, n: int) -> list:
    return [to_new_event(events_pb2.TaskProgressed(task_id=task, progress=i / n)) for i in range(n)]


async def fill(store: EventStore, tasks: int, per_task: int) -> int:
    for t in range(tasks):
        await store.append(f"task-{t}", 0, task_events(f"t{t}", per_task))
    return tasks * per_task


async def drain(relay: Relay) -> int:
    total = 0
    while (n := await relay.publish_once()) > 0:
        total += n
    return total


async def republish_late(js, nats_ns, events) -> None:
    """The events again, as if they arrived after JetStream's duplicate window: stored twice."""
    for event in events:
        await js.publish(
            nats_ns.event_subject("task", "TaskProgressed"),
            envelope_of(event).SerializeToString(),
            headers={"Nats-Msg-Id": f"{event.event_id}-late"},
        )


class Recorder:
    """A handler that records each event it was asked to apply, with the effect in PostgreSQL."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    async def __call__(self, delivery: Delivery) -> None:
        async with delivery.transaction() as conn:
            await conn.execute("INSERT INTO applied (event_id) VALUES (%s)", (delivery.event_id,))
        self.calls[delivery.envelope.event_id] += 1


@pytest.fixture
async def applied_table(db):
    async with db.transaction() as conn:
        await conn.execute("CREATE TABLE applied (event_id uuid NOT NULL)")
    return db


async def applied_counts(db) -> collections.Counter[str]:
    async with db.connection() as conn:
        rows = await (await conn.execute("SELECT event_id FROM applied")).fetchall()
    return collections.Counter(str(r[0]) for r in rows)


async def run_consumer_until(consumer: Consumer, done, timeout: float = 20.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await done():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("consumer did not finish in time")
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_relay_publishes_every_event_in_order_with_its_id(db, nc, nats_ns):
    store = EventStore(db)
    count = await fill(store, tasks=5, per_task=4)
    relay = Relay(db, nc, nats_ns)
    assert await drain(relay) == count
    js = nc.jetstream()
    info = await js.stream_info(nats_ns.events_stream)
    assert info.state.messages == count
    sub = await js.pull_subscribe(f"{nats_ns.subject_prefix}.events.>", stream=nats_ns.events_stream)
    msgs = await sub.fetch(count, timeout=5)
    logged = await store.read_all(0, 1000)
    assert [m.headers["Nats-Msg-Id"] for m in msgs] == [str(e.event_id) for e in logged]
    assert msgs[0].subject == nats_ns.event_subject("task", "TaskProgressed")
    env = common_pb2.EventEnvelope.FromString(msgs[3].data)
    assert env.global_position == logged[3].global_position and env.stream_id == logged[3].stream_id
    assert events_pb2.TaskProgressed.FromString(env.payload).task_id == "t0"


async def test_g8_relay_crash_after_publish_before_checkpoint_consumers_see_each_event_once(
    applied_table, nc, nats_ns
):
    db = applied_table
    store = EventStore(db)
    count = await fill(store, tasks=4, per_task=5)

    class CrashBeforeCheckpoint(Relay):
        crashed = False

        async def _save(self, position: int) -> None:
            if not self.crashed:
                self.crashed = True
                raise ConnectionError("process killed after the PubAcks, before the checkpoint")
            await super()._save(position)

    crashing = CrashBeforeCheckpoint(db, nc, nats_ns)
    with pytest.raises(ConnectionError):
        await crashing.publish_once()
    restarted = Relay(db, nc, nats_ns)
    assert await drain(restarted) == count  # the whole batch went out again…
    info = await nc.jetstream().stream_info(nats_ns.events_stream)
    assert info.state.messages == count  # …and JetStream dropped the copies by Nats-Msg-Id

    spec = nats_ns.consumer("g8", nats_ns.event_subject("task", ">"))
    await topo.ensure(nc.jetstream(), (), (spec,))
    recorder = Recorder()

    async def all_applied() -> bool:
        return sum((await applied_counts(db)).values()) >= count

    await run_consumer_until(Consumer(db, nc, spec, recorder), all_applied)
    counts = await applied_counts(db)
    assert len(counts) == count and set(counts.values()) == {1}


async def test_g9_redelivery_outside_the_dedup_window_is_a_no_op(applied_table, nc, nats_ns):
    db = applied_table
    store = EventStore(db)
    count = await fill(store, tasks=2, per_task=3)
    relay = Relay(db, nc, nats_ns)
    await drain(relay)
    js = nc.jetstream()
    # The same events arrive again after the duplicate window has passed: JetStream no longer
    # remembers their ids, so they are stored twice. Modelled by re-publishing under new msg ids.
    await republish_late(js, nats_ns, await store.read_all(0, 100))
    assert (await js.stream_info(nats_ns.events_stream)).state.messages == 2 * count
    spec = nats_ns.consumer("g9", nats_ns.event_subject("task", ">"))
    await topo.ensure(js, (), (spec,))
    recorder = Recorder()
    consumer = Consumer(db, nc, spec, recorder)

    async def all_seen() -> bool:
        return consumer.processed + consumer.skipped >= 2 * count

    await run_consumer_until(consumer, all_seen)
    counts = await applied_counts(db)
    assert len(counts) == count and set(counts.values()) == {1}
    assert consumer.skipped == count


async def test_g14_declared_streams_and_consumers_equal_live_ones(nc, nats_ns):
    js = nc.jetstream()
    topology = topo.Topology(nats_ns.namespace)
    consumers = topo.system_consumers(topology)
    await topo.ensure(js, topology.streams(), consumers)
    await topo.ensure(js, topology.streams(), consumers)  # idempotent
    assert await topo.verify(js, topology.streams(), consumers) == []
    # Someone changes a consumer by hand: the drift is reported, field by field.
    changed = consumers[1].config()
    changed.max_deliver = 3
    await js.add_consumer(consumers[1].stream, changed)
    drift = await topo.verify(js, topology.streams(), consumers)
    assert [(d.name, d.field, d.declared, d.live) for d in drift] == [
        (consumers[1].durable, "max_deliver", consumers[1].max_deliver, 3)
    ]
    await js.delete_consumer(consumers[0].stream, consumers[0].durable)
    assert any(d.field == "existence" for d in await topo.verify(js, topology.streams(), consumers))


async def test_g16_losing_the_brokers_data_loses_nothing(applied_table, nc, nats_ns):
    db = applied_table
    store = EventStore(db)
    first = await fill(store, tasks=3, per_task=4)
    relay = Relay(db, nc, nats_ns, stream_check_s=0)
    await drain(relay)
    js = nc.jetstream()
    spec = nats_ns.consumer("g16", nats_ns.event_subject("task", ">"))
    await topo.ensure(js, (), (spec,))
    recorder = Recorder()

    async def applied_at_least(n: int):
        async def check() -> bool:
            return sum((await applied_counts(db)).values()) >= n

        return check

    await run_consumer_until(Consumer(db, nc, spec, recorder), await applied_at_least(first))
    # The broker loses everything: stream, messages, consumer state.
    await js.delete_stream(nats_ns.events_stream)
    for t in range(3, 6):  # life goes on meanwhile
        await store.append(f"task-{t}", 0, task_events(f"t{t}", 4))
    total = first + 12
    await drain(relay)  # the relay sees a new stream and re-publishes the whole log
    assert (await js.stream_info(nats_ns.events_stream)).state.messages == total
    await topo.ensure(js, (), (spec,))  # services re-declare their consumers at start
    consumer = Consumer(db, nc, spec, recorder)

    async def everything_seen() -> bool:
        return consumer.processed + consumer.skipped >= total

    await run_consumer_until(consumer, everything_seen)
    counts = await applied_counts(db)
    assert len(counts) == total and set(counts.values()) == {1}
    assert consumer.skipped == first


async def test_handler_failures_are_retried_and_poison_is_dead_lettered(applied_table, nc, nats_ns):
    db = applied_table
    store = EventStore(db)
    await fill(store, tasks=1, per_task=2)
    await drain(Relay(db, nc, nats_ns))
    js = nc.jetstream()
    await js.publish(nats_ns.event_subject("task", "Garbage"), b"\x00not an envelope")
    spec = nats_ns.consumer("retry", nats_ns.event_subject("task", ">"))
    await topo.ensure(js, (), (spec,))
    attempts: collections.Counter[str] = collections.Counter()

    async def flaky(delivery: Delivery) -> None:
        attempts[delivery.envelope.event_id] += 1
        if attempts[delivery.envelope.event_id] == 1:
            raise TimeoutError("downstream timed out")
        async with delivery.transaction() as conn:
            await conn.execute("INSERT INTO applied (event_id) VALUES (%s)", (delivery.event_id,))

    consumer = Consumer(db, nc, spec, flaky, retry_base_s=0.1)

    async def done() -> bool:
        async with db.connection() as conn:
            dead = (await (await conn.execute("SELECT count(*) FROM dead_letters")).fetchone())[0]
        return sum((await applied_counts(db)).values()) == 2 and dead == 1

    await run_consumer_until(consumer, done)
    assert set(attempts.values()) == {2}
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT source, reason, payload FROM dead_letters")).fetchone()
    assert row[0] == spec.durable and "undecodable" in row[1] and bytes(row[2]).startswith(b"\x00not")
    with contextlib.suppress(Exception):
        await js.delete_consumer(spec.stream, spec.durable)
    assert spec.config().ack_policy == js_api.AckPolicy.EXPLICIT


class BatchRecorder:
    """A batch handler that applies the events of one task and ignores the others; it fails every
    batch holding a `poisoned` event the first `fail_first` times it sees that event."""

    def __init__(self, task: str = "", poisoned: frozenset[str] = frozenset(), fail_first: int = 0) -> None:
        self.task = task
        self.poisoned = poisoned
        self.fail_first = fail_first
        self.seen: collections.Counter[str] = collections.Counter()
        self.batch_sizes: list[int] = []
        self.committed: list[str] = []

    def wants(self, delivery: Delivery) -> bool:
        return not self.task or getattr(delivery.message, "task_id", "") == self.task

    async def handle(self, conn, deliveries):
        self.batch_sizes.append(len(deliveries))
        ids = [delivery.envelope.event_id for delivery in deliveries]
        for delivery in deliveries:
            await conn.execute("INSERT INTO applied (event_id) VALUES (%s)", (delivery.event_id,))
            self.seen[delivery.envelope.event_id] += 1
            if (
                delivery.envelope.event_id in self.poisoned
                and self.seen[delivery.envelope.event_id] <= self.fail_first
            ):
                raise TimeoutError("downstream timed out")
        return lambda: self.committed.extend(ids)


async def test_batch_consumer_applies_a_moment_of_events_in_one_transaction_each_once(
    applied_table, nc, nats_ns
):
    db = applied_table
    store = EventStore(db)
    count = await fill(store, tasks=4, per_task=10)
    relay = Relay(db, nc, nats_ns)
    await drain(relay)
    js = nc.jetstream()
    # Ten of the events again, as after the duplicate window: copies that land in the same batch.
    await republish_late(js, nats_ns, (await store.read_all(0, 100))[:10])
    spec = nats_ns.consumer("batch", nats_ns.event_subject("task", ">"))
    await topo.ensure(js, (), (spec,))
    handler = BatchRecorder()
    consumer = BatchConsumer(db, nc, spec, handler, batch=64)

    async def all_seen() -> bool:
        return consumer.processed + consumer.skipped >= count + 10

    await run_consumer_until(consumer, all_seen)
    counts = await applied_counts(db)
    assert len(counts) == count and set(counts.values()) == {1}
    assert consumer.skipped == 10 and consumer.processed == count
    assert consumer.batches < count / 4  # the events went in batches, not one transaction each
    assert sorted(handler.committed) == sorted(counts)  # every commit told, each event once
    # Acknowledged: a consumer started again finds nothing left to do.
    assert (await js.consumer_info(spec.stream, spec.durable)).num_ack_pending == 0


async def test_batch_consumer_acks_unwanted_events_without_a_row_and_isolates_a_failing_one(
    applied_table, nc, nats_ns
):
    db = applied_table
    store = EventStore(db)
    await fill(store, tasks=3, per_task=5)
    await drain(Relay(db, nc, nats_ns))
    js = nc.jetstream()
    await js.publish(nats_ns.event_subject("task", "Garbage"), b"\x00not an envelope")
    wanted = [e for e in await store.read_all(0, 100) if e.stream_id == "task-1"]
    poisoned = str(wanted[2].event_id)
    spec = nats_ns.consumer("batch-fail", nats_ns.event_subject("task", ">"))
    await topo.ensure(js, (), (spec,))
    handler = BatchRecorder(task="t1", poisoned=frozenset({poisoned}), fail_first=2)
    consumer = BatchConsumer(db, nc, spec, handler, batch=64, retry_base_s=0.1)

    async def done() -> bool:
        async with db.connection() as conn:
            dead = (await (await conn.execute("SELECT count(*) FROM dead_letters")).fetchone())[0]
        return sum((await applied_counts(db)).values()) == 5 and dead == 1

    await run_consumer_until(consumer, done)
    counts = await applied_counts(db)
    assert set(counts) == {str(e.event_id) for e in wanted} and set(counts.values()) == {1}
    # The batch failed, then its events went alone: the four good ones committed at once, the
    # failing one failed again and committed only when retried after a delay.
    assert handler.seen[poisoned] == 3 and consumer.failed >= 1
    assert handler.committed[-1] == poisoned
    assert sorted(handler.committed) == sorted(counts)  # a rolled-back batch told nothing
    async with db.connection() as conn:
        tracked = (
            await (
                await conn.execute(
                    "SELECT count(*) FROM consumer_tracking WHERE consumer = %s", (spec.durable,)
                )
            ).fetchone()
        )[0]
    assert tracked == 5  # the ten events of other tasks left no row
    assert consumer.processed == 15  # ten ignored, five applied


async def test_batch_consumer_survives_a_batch_it_cannot_handle_and_gets_it_again(applied_table, nc, nats_ns):
    """Something unexpected outside any transaction (here the handler's filter) loses nothing:
    the consumer goes on, and the unacknowledged events come again after the ack wait."""
    db = applied_table
    store = EventStore(db)
    count = await fill(store, tasks=2, per_task=3)
    await drain(Relay(db, nc, nats_ns))
    spec = nats_ns.consumer("batch-odd", nats_ns.event_subject("task", ">"), ack_wait_s=1.0)
    await topo.ensure(nc.jetstream(), (), (spec,))

    class OddFilter(BatchRecorder):
        broke = False

        def wants(self, delivery: Delivery) -> bool:
            if not self.broke:
                self.broke = True
                raise RuntimeError("a bug in the filter")
            return True

    handler = OddFilter()
    consumer = BatchConsumer(db, nc, spec, handler)

    async def all_applied() -> bool:
        return sum((await applied_counts(db)).values()) >= count

    await run_consumer_until(consumer, all_applied)
    counts = await applied_counts(db)
    assert len(counts) == count and set(counts.values()) == {1}
    assert handler.broke


async def test_triage_sees_every_event_in_order_and_declined_ones_never_reach_the_handler(
    applied_table, nc, nats_ns
):
    db = applied_table
    store = EventStore(db)
    count = await fill(store, tasks=3, per_task=4)
    await drain(Relay(db, nc, nats_ns))
    spec = nats_ns.consumer("triage", nats_ns.event_subject("task", ">"))
    await topo.ensure(nc.jetstream(), (), (spec,))
    seen: list[tuple[str, int]] = []

    def triage(delivery: Delivery) -> bool:
        seen.append((delivery.envelope.stream_id, delivery.envelope.version))
        return delivery.envelope.stream_id == "task-2"

    recorder = Recorder()
    consumer = Consumer(db, nc, spec, recorder, triage=triage)

    async def all_seen() -> bool:
        return consumer.processed + consumer.skipped >= count

    await run_consumer_until(consumer, all_seen)
    logged = await store.read_all(0, 100)
    assert seen == [(e.stream_id, e.version) for e in logged]  # all of them, in the log's order
    assert set(recorder.calls) == {str(e.event_id) for e in logged if e.stream_id == "task-2"}
    assert consumer.processed == count
    async with db.connection() as conn:
        tracked = await (
            await conn.execute("SELECT count(*) FROM consumer_tracking WHERE consumer = %s", (spec.durable,))
        ).fetchone()
    assert tracked[0] == 4  # the handler's four; the declined ones left nothing behind
    assert (await nc.jetstream().consumer_info(spec.stream, spec.durable)).num_ack_pending == 0


async def wait_until(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.02)


async def test_a_relay_on_standby_leaves_the_lead_to_a_lighter_process_and_takes_it_when_vacant(
    db, nc, nats_ns
):
    store = EventStore(db)
    standby = Relay(db, nc, nats_ns, idle_poll_s=0.05, standby_s=0.5)
    eager = Relay(db, nc, nats_ns, idle_poll_s=0.05)
    stop_standby, stop_eager = asyncio.Event(), asyncio.Event()
    standing_by = asyncio.create_task(standby.run(stop_standby))
    await asyncio.sleep(0.1)  # the busy process started first, and still does not lead
    leading = asyncio.create_task(eager.run(stop_eager))
    try:
        await wait_until(lambda: eager.stats.leader)
        await asyncio.sleep(1.0)
        assert not standby.stats.leader
        await store.append("task-a", 0, task_events("a", 2))
        await wait_until(lambda: eager.stats.published == 2)
        stop_eager.set()
        await asyncio.wait_for(leading, 10)
        # The lead is vacant: the process on standby takes it and carries on where it was left.
        await wait_until(lambda: standby.stats.leader, timeout=5.0)
        await store.append("task-b", 0, task_events("b", 3))
        await wait_until(lambda: standby.stats.published == 3)
    finally:
        stop_eager.set()
        stop_standby.set()
        await asyncio.gather(leading, standing_by, return_exceptions=True)
    assert (await nc.jetstream().stream_info(nats_ns.events_stream)).state.messages == 5
