"""Task events → frames, history and cost: real events appended to the log, published by the real
outbox relay to real NATS, handled by Studio's `studio-tasks` consumer."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aigen.bus import topology as topo
from aigen.bus.connection import connect as connect_nats
from aigen.bus.consumer import Consumer
from aigen.bus.relay import Relay, envelope_of
from aigen.eventstore import EventStore
from aigen.eventstore.mapper import to_new_event
from aigen.v1 import common_pb2, events_pb2, generation_pb2, studio_pb2
from google.protobuf.message import Message

from services.studio.reactions import TaskReactions


class Flow:
    """The relay and the studio consumer running in the background."""

    def __init__(self, db, nc, topology: topo.Topology, consumer: Consumer, relay: Relay) -> None:
        self.db = db
        self.nc = nc
        self.topology = topology
        self.consumer = consumer
        self.relay = relay
        self.store = EventStore(db)

    async def append(self, task_id: str, *messages: Message) -> None:
        version = await self.store.stream_version(f"task-{task_id}")
        await self.store.append(f"task-{task_id}", version, [to_new_event(m) for m in messages])

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("studio never got there")
            await asyncio.sleep(0.05)

    async def handled(self, count: int) -> None:
        async def check() -> bool:
            return self.consumer.processed + self.consumer.skipped >= count

        await self.until(check)


@contextlib.asynccontextmanager
async def running(db, nats_url: str, namespace: str, start_consumer: bool = True) -> AsyncIterator[Flow]:
    nc = await connect_nats(nats_url)
    base = topo.Topology(namespace)
    topology = topo.Topology(namespace, topo.system_consumers(base))
    await topo.ensure(nc.jetstream(), topology.streams(), topology.consumers)
    spec = next(c for c in topology.consumers if c.durable.endswith("studio-tasks"))
    from services.studio.repository import StudioRepository

    consumer = Consumer(db, nc, spec, TaskReactions(StudioRepository(db), EventStore(db)))
    relay = Relay(db, nc, topology, idle_poll_s=0.1)
    stop = asyncio.Event()
    workers = [asyncio.create_task(relay.run(stop))]
    flow = Flow(db, nc, topology, consumer, relay)
    flow.start = lambda: workers.append(asyncio.create_task(consumer.run(stop)))  # type: ignore[attr-defined]
    if start_consumer:
        flow.start()  # type: ignore[attr-defined]
    try:
        yield flow
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        await nc.close()


def created(
    task_id: str, shot_id: str, *, quote: str = "0.05", output=common_pb2.IMAGE
) -> events_pb2.TaskCreated:
    return events_pb2.TaskCreated(
        task_id=task_id,
        model=events_pb2.ModelSnapshot(model_slug="still-model", provider_slug="local", output_type=output),
        prompt="a lamp",
        number_of_outputs=2,
        quote=common_pb2.PriceQuote(amount=quote, currency="usd", usd=quote),
        shot_id=shot_id,
        owner="studio",
    )


def completed(task_id: str, charge: str | None = "0.03") -> events_pb2.TaskCompleted:
    message = events_pb2.TaskCompleted(
        task_id=task_id,
        results=[
            events_pb2.ProviderResult(type="image", url=f"http://provider.invalid/{task_id}/{i}.png")
            for i in (0, 1)
        ],
        source="dispatch",
    )
    if charge is not None:
        message.charge.CopyFrom(events_pb2.ProviderCharge(amount=charge, currency="usd", usd=charge))
    return message


def stored(task_id: str, kind: str = "image", count: int = 2) -> events_pb2.ResultsStored:
    return events_pb2.ResultsStored(
        task_id=task_id,
        results=[
            events_pb2.StoredResult(
                type=kind,
                url=f"http://objects.invalid/ai-generation/{task_id}-{i}.png",
                original_url=f"http://provider.invalid/{task_id}/{i}.png",
                storage_key=f"ai-generation/{task_id}-{i}.png",
                stored=True,
            )
            for i in range(count)
        ],
    )


async def make_shot(stub, **fields) -> tuple[studio_pb2.Project, studio_pb2.Episode, studio_pb2.Shot]:
    project = await stub.CreateProject(
        studio_pb2.CreateProjectRequest(slug=f"p-{uuid.uuid4().hex[:8]}", name="P")
    )
    episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    shot = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=episode.id, **fields))
    return project, episode, shot


async def frames_of(stub, shot_id: str) -> list[studio_pb2.Frame]:
    return list((await stub.ListFrames(studio_pb2.ListFramesRequest(shot_id=shot_id))).frames)


@pytest.fixture
async def flow(studio, db, nats_url, nats_ns) -> AsyncIterator[Flow]:
    async with running(db, nats_url, nats_ns.namespace) as f:
        yield f


async def test_stored_results_become_frames_numbered_after_the_shots_own_and_the_first_take_is_chosen(
    studio, flow
):
    stub = studio.stub
    _, _, fresh = await make_shot(stub)
    _, _, busy = await make_shot(stub)
    manual = await stub.CreateFrame(
        studio_pb2.CreateFrameRequest(
            shot_id=busy.id, media_type=common_pb2.IMAGE, url="http://media.invalid/m.png"
        )
    )
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    await flow.append(first, created(first, fresh.id), completed(first), stored(first))
    await flow.append(second, created(second, busy.id), completed(second), stored(second))

    async def both_have_frames() -> bool:
        return len(await frames_of(stub, fresh.id)) == 2 and len(await frames_of(stub, busy.id)) == 3

    await flow.until(both_have_frames)
    fresh_frames = await frames_of(stub, fresh.id)
    assert [(f.frame_number, f.selected, f.task_id) for f in fresh_frames] == [
        (1, True, first),
        (2, False, first),
    ]
    assert fresh_frames[0].url == f"http://objects.invalid/ai-generation/{first}-0.png"
    assert fresh_frames[0].storage_key == f"ai-generation/{first}-0.png"
    assert fresh_frames[0].media_type == common_pb2.IMAGE
    busy_frames = await frames_of(stub, busy.id)
    assert [(f.frame_number, f.selected) for f in busy_frames] == [(1, True), (2, False), (3, False)]
    assert busy_frames[0].id == manual.id

    async def settled() -> bool:
        cost = await stub.GetCost(studio_pb2.GetCostRequest(shot_id=fresh.id))
        return cost.settled_usd == "0.03"

    await flow.until(settled)  # the provider's charge, not the quote
    history = await stub.ShotTaskHistory(studio_pb2.ShotTaskHistoryRequest(shot_id=fresh.id))
    assert [(t.id, t.status) for t in history.tasks] == [(first, generation_pb2.SUCCESS)]
    assert len(history.tasks[0].results) == 2


async def test_a_deleted_task_leaves_its_frames_with_an_empty_task_link(studio, flow):
    stub = studio.stub
    _, _, shot = await make_shot(stub)
    task = uuid.uuid4().hex
    await flow.append(task, created(task, shot.id), completed(task), stored(task))

    async def framed() -> bool:
        return len(await frames_of(stub, shot.id)) == 2

    await flow.until(framed)
    await flow.append(task, events_pb2.TaskDeleted(task_id=task, requested_by="admin"))

    async def unlinked() -> bool:
        return all(f.task_id == "" for f in await frames_of(stub, shot.id))

    await flow.until(unlinked)
    frames = await frames_of(stub, shot.id)
    assert [f.url for f in frames] == [f"http://objects.invalid/ai-generation/{task}-{i}.png" for i in (0, 1)]
    assert frames[0].selected
    assert (await stub.ShotTaskHistory(studio_pb2.ShotTaskHistoryRequest(shot_id=shot.id))).tasks == []
    # What it cost stays spent.
    assert (await stub.GetCost(studio_pb2.GetCostRequest(shot_id=shot.id))).total_usd == "0.03"


async def test_events_handled_out_of_order_still_leave_frames_unlinked_from_a_deleted_task(
    studio, db, nats_url, nats_ns
):
    stub = studio.stub
    _, _, shot = await make_shot(stub)
    task, unrelated = uuid.uuid4().hex, uuid.uuid4().hex
    async with running(db, nats_url, nats_ns.namespace, start_consumer=False) as flow:
        # Everything is in the log before the consumer starts: it takes the whole batch at once
        # and handles its events concurrently, in no particular order.
        await flow.append(task, created(task, shot.id), completed(task), stored(task))
        await flow.append(task, events_pb2.TaskDeleted(task_id=task, requested_by="admin"))
        await flow.append(unrelated, created(unrelated, ""), completed(unrelated), stored(unrelated))
        flow.start()  # type: ignore[attr-defined]
        await flow.handled(7)
    frames = await frames_of(stub, shot.id)
    assert len(frames) == 2
    assert all(f.task_id == "" for f in frames)
    async with db.connection() as conn:
        rows = await (await conn.execute("SELECT task_id, deleted FROM studio_tasks")).fetchall()
    assert rows == [(task, True)]  # the task without a shot is none of Studio's business


async def test_a_failed_task_shows_in_the_history_with_its_error_and_costs_nothing(studio, flow):
    stub = studio.stub
    project, episode, shot = await make_shot(stub)
    failed, running_task = uuid.uuid4().hex, uuid.uuid4().hex
    await flow.append(
        failed,
        created(failed, shot.id, quote="0.10"),
        events_pb2.TaskFailed(
            task_id=failed, code="CONTENT_POLICY", message="the prompt was refused", stage="dispatch"
        ),
    )
    await flow.append(running_task, created(running_task, shot.id, quote="0.07"))

    async def both_known() -> bool:
        history = await stub.ShotTaskHistory(studio_pb2.ShotTaskHistoryRequest(shot_id=shot.id))
        return {t.id: t.status for t in history.tasks}.get(failed) == generation_pb2.FAILED and len(
            history.tasks
        ) == 2

    await flow.until(both_known)
    history = await stub.ShotTaskHistory(studio_pb2.ShotTaskHistoryRequest(shot_id=shot.id))
    failure = next(t for t in history.tasks if t.id == failed)
    assert (failure.error.code, failure.error.message) == ("CONTENT_POLICY", "the prompt was refused")
    assert await frames_of(stub, shot.id) == []

    for scope in (
        studio_pb2.GetCostRequest(shot_id=shot.id),
        studio_pb2.GetCostRequest(episode_id=episode.id),
        studio_pb2.GetCostRequest(project_id=project.slug),
    ):
        cost = await stub.GetCost(scope)
        assert (cost.quoted_usd, cost.settled_usd, cost.total_usd, cost.task_count) == (
            "0.07",
            "0",
            "0.07",
            2,
        )
    overview = await stub.EpisodeOverview(studio_pb2.EpisodeOverviewRequest(episode_id=episode.id))
    assert [t.id for t in overview.shots[0].running_tasks] == [running_task]
    assert overview.cost_usd == "0.07"
    assert overview.shots[0].cost_usd == "0.07"


async def test_a_redelivered_event_creates_no_second_set_of_frames(studio, flow):
    stub = studio.stub
    _, _, shot = await make_shot(stub)
    task = uuid.uuid4().hex
    await flow.append(task, created(task, shot.id), completed(task), stored(task))

    async def framed() -> bool:
        return len(await frames_of(stub, shot.id)) == 2

    await flow.until(framed)
    handled = flow.consumer.processed + flow.consumer.skipped
    # The same event arrives again after JetStream's duplicate window: a new message id.
    event = (await flow.store.read_stream(f"task-{task}"))[-1]
    await flow.nc.jetstream().publish(
        flow.topology.event_subject("task", "ResultsStored"),
        envelope_of(event).SerializeToString(),
        headers={"Nats-Msg-Id": f"{event.event_id}-again"},
    )
    await flow.handled(handled + 1)
    assert flow.consumer.skipped >= 1
    assert len(await frames_of(stub, shot.id)) == 2


async def test_results_for_a_shot_deleted_meanwhile_are_dropped_and_the_spend_still_counts(studio, flow):
    stub = studio.stub
    _, episode, shot = await make_shot(stub)
    task = uuid.uuid4().hex
    await flow.append(task, created(task, shot.id))

    async def known() -> bool:
        return (await stub.GetCost(studio_pb2.GetCostRequest(episode_id=episode.id))).task_count == 1

    await flow.until(known)
    await stub.DeleteShot(studio_pb2.DeleteShotRequest(id=shot.id))
    handled = flow.consumer.processed + flow.consumer.skipped
    await flow.append(task, completed(task), stored(task))
    await flow.handled(handled + 2)
    async with studio.repo.db.connection() as conn:
        row = await (await conn.execute("SELECT count(*) FROM studio_frames")).fetchone()
    assert row[0] == 0
    assert (await stub.GetCost(studio_pb2.GetCostRequest(episode_id=episode.id))).settled_usd == "0.03"


async def test_results_handled_after_the_tasks_deletion_arrive_unlinked(studio, db):
    """Handled directly, in the worst order: TaskDeleted first, then ResultsStored."""
    from aigen.bus.consumer import Delivery
    from aigen.eventstore.mapper import decode

    from services.studio.repository import StudioRepository

    stub = studio.stub
    _, _, shot = await make_shot(stub)
    task = uuid.uuid4().hex
    store = EventStore(db)
    await store.append(
        f"task-{task}",
        0,
        [
            to_new_event(m)
            for m in (
                created(task, shot.id),
                completed(task),
                stored(task),
                events_pb2.TaskDeleted(task_id=task, requested_by="admin"),
            )
        ],
    )
    events = await store.read_stream(f"task-{task}")
    reactions = TaskReactions(StudioRepository(db), store)
    for event in (events[3], events[2], events[0], events[1]):
        await reactions(Delivery("studio-tasks-test", envelope_of(event), decode(event), 1, db))
    frames = await frames_of(stub, shot.id)
    assert len(frames) == 2
    assert all(f.task_id == "" for f in frames)


async def test_a_tasks_shot_or_none_is_looked_up_at_most_once(studio, db):
    """Most tasks are submitted outside the studio: once their creation shows no shot, their other
    events are passed over without asking the database again; a task on a shot is followed without
    asking which shot again."""
    from aigen.bus.consumer import Delivery
    from aigen.eventstore.mapper import decode

    from services.studio.repository import StudioRepository

    _, _, shot = await make_shot(studio.stub)
    store = EventStore(db)
    seen, unseen, on_shot = (uuid.uuid4().hex for _ in range(3))
    for task, shot_id in ((seen, ""), (unseen, ""), (on_shot, shot.id)):
        await store.append(
            f"task-{task}",
            0,
            [to_new_event(m) for m in (created(task, shot_id), completed(task), stored(task))],
        )
    reactions = TaskReactions(StudioRepository(db), store)

    async def handle(task: str, first: int = 0) -> tuple[int, list[bool]]:
        """Look-ups made, and what the triage said of each event (all are handled regardless)."""
        before, triaged = reactions.lookups, []
        for event in (await store.read_stream(f"task-{task}"))[first:]:
            delivery = Delivery("studio-tasks-test", envelope_of(event), decode(event), 1, db)
            triaged.append(reactions.triage(delivery))
            await reactions(delivery)
        return reactions.lookups - before, triaged

    # Its creation said: no shot. The triage declines its events at once, and so would the handler.
    assert await handle(seen) == (0, [False, False, False])
    # Its creation went elsewhere: looked up once, then known.
    assert await handle(unseen, first=1) == (1, [True, False])
    # Its creation named the shot: followed without asking.
    assert await handle(on_shot) == (0, [True, True, True])
    assert len(await frames_of(studio.stub, shot.id)) == 2
    async with db.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT task_id FROM studio_tasks WHERE task_id = ANY(%s)", ([seen, unseen, on_shot],)
            )
        ).fetchall()
    assert [r[0] for r in rows] == [on_shot]
