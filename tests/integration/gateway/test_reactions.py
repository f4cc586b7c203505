"""The ledger and webhook reactions to task events, against real PostgreSQL: exactly once, and
the same outcome whatever order a task's events arrive in."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

import pytest
from aigen.bus.batches import commit_batch
from aigen.bus.consumer import AlreadyProcessed, Delivery
from aigen.db import migrations
from aigen.eventstore.mapper import decode, to_new_event
from aigen.eventstore.store import EventStore
from aigen.secrets import Sealer
from aigen.v1 import common_pb2, events_pb2
from aigen.workqueue import WorkQueue
from google.protobuf.message import Message

from services.gateway.budget import Period, request_id_for
from services.gateway.key_store import KeySpec, KeyStore
from services.gateway.keys import KeyHasher
from services.gateway.ledger import LedgerReactions
from services.gateway.reactions import TaskReactions

SECRET = "reactions-test-secret-0123456789"


@pytest.fixture
async def gateway_db(db):
    await migrations.apply(db, migrations.load("services.gateway", "gateway"))
    return db


def created(task_id: str, request_id: str, quote_usd: str, webhook_url: str = "") -> events_pb2.TaskCreated:
    return events_pb2.TaskCreated(
        task_id=task_id,
        model=events_pb2.ModelSnapshot(model_slug="kie-nano-banana", provider_slug="kie"),
        owner="acme",
        request_id=request_id,
        quote=common_pb2.PriceQuote(amount="4", currency="credits", usd=quote_usd, display="4 credits"),
        webhook_url=webhook_url,
    )


async def record(store: EventStore, task_id: str, messages: list[Message]) -> list[Delivery]:
    await store.append(f"task-{task_id}", 0, [to_new_event(m) for m in messages])
    deliveries = []
    for event in await store.read_stream(f"task-{task_id}"):
        envelope = common_pb2.EventEnvelope(
            event_id=str(event.event_id), stream_id=event.stream_id, version=event.version, type=event.type
        )
        envelope.time.FromDatetime(event.recorded_at)
        deliveries.append(Delivery("gateway-webhooks", envelope, decode(event), 1, store.db))
    return deliveries


async def state_of(db, key_id: str, task_id: str) -> tuple:
    async with db.connection() as conn:
        usage = await (
            await conn.execute(
                "SELECT period_charged_usd, open_usd, open_count FROM gateway_key_usage WHERE key_id = %s",
                (key_id,),
            )
        ).fetchone()
        hold = await (
            await conn.execute(
                "SELECT state, amount_usd, charged_usd FROM gateway_holds WHERE task_id = %s", (task_id,)
            )
        ).fetchone()
        hooks = await (
            await conn.execute(
                "SELECT event_type FROM gateway_webhook_deliveries WHERE task_id = %s ORDER BY event_type",
                (task_id,),
            )
        ).fetchall()
    ledger = [type(decode(e)).__name__ for e in await EventStore(db).read_stream(f"ledger-{key_id}")]
    return usage, hold, [h[0] for h in hooks], ledger


@pytest.mark.parametrize("batched", [False, True], ids=["each-alone", "one-batch"])
@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_any_arrival_order_gives_the_same_ledger_and_webhooks(gateway_db, order, batched):
    """Each event in a transaction of its own, or all of them in one batch's transaction (the
    gateway's consumer), in any order: the same outcome."""
    db = gateway_db
    keys = KeyStore(db, KeyHasher(SECRET), Sealer(SECRET))
    key = (
        await keys.create(KeySpec(name="k", owner="acme", budget_usd=Decimal(5), budget_period=Period.DAY))
    ).key
    store = EventStore(db)
    task_id = uuid.uuid4().hex
    charge = events_pb2.ProviderCharge(amount="3", currency="credits", usd="0.015")
    deliveries = await record(
        store,
        task_id,
        [
            created(
                task_id, request_id_for(key.id, "auto-1"), "0.02", webhook_url="https://example.com/hook"
            ),
            events_pb2.TaskCompleted(task_id=task_id, charge=charge, source="poll"),
            events_pb2.ResultsStored(
                task_id=task_id, results=[events_pb2.StoredResult(type="image", url="u")]
            ),
        ],
    )
    reactions = TaskReactions(LedgerReactions(store), WorkQueue(db, "gateway_webhook_jobs"))
    if batched:
        assert await commit_batch(db, "gateway-webhooks", reactions, [deliveries[i] for i in order]) == 3
    else:
        for index in order:
            await reactions(deliveries[index])
    usage, hold, hooks, ledger = await state_of(db, key.id, task_id)
    assert usage == (Decimal("0.015"), Decimal(0), 0)
    assert hold == ("settled", Decimal("0.02"), Decimal("0.015"))
    assert hooks == ["task.succeeded"]
    assert ledger == ["HoldPlaced", "ChargeSettled"]
    # Redelivery of any of them changes nothing.
    for delivery in deliveries:
        fresh = Delivery(delivery.consumer, delivery.envelope, delivery.message, 2, db)
        with pytest.raises(AlreadyProcessed):
            await reactions(fresh)
    assert await commit_batch(db, "gateway-webhooks", reactions, deliveries) == 0
    assert await state_of(db, key.id, task_id) == (usage, hold, hooks, ledger)


async def test_a_reservation_made_at_submission_is_attached_not_counted_twice(gateway_db):
    db = gateway_db
    keys = KeyStore(db, KeyHasher(SECRET), Sealer(SECRET))
    key = (await keys.create(KeySpec(name="k", owner="acme", max_concurrent=3))).key
    from services.gateway.holds import Holds

    request_id = request_id_for(key.id, "order-1")
    assert (await Holds(db).reserve(key, request_id, Decimal("0.02"))).created
    assert not (await Holds(db).reserve(key, request_id, Decimal("0.02"))).created  # a replay
    store = EventStore(db)
    task_id = uuid.uuid4().hex
    deliveries = await record(
        store,
        task_id,
        [
            created(task_id, request_id, "0.025"),  # the price changed between quote and creation
            events_pb2.TaskFailed(task_id=task_id, code="X", message="no", stage="poll"),
        ],
    )
    reactions = TaskReactions(LedgerReactions(store), WorkQueue(db, "gateway_webhook_jobs"))
    await reactions(deliveries[0])
    usage, hold, _, _ = await state_of(db, key.id, task_id)
    assert usage == (Decimal(0), Decimal("0.025"), 1)
    assert hold == ("held", Decimal("0.025"), Decimal(0))
    await reactions(deliveries[1])
    usage, hold, _, ledger = await state_of(db, key.id, task_id)
    assert usage == (Decimal(0), Decimal(0), 0)
    assert hold[0] == "released"
    assert ledger == ["HoldPlaced", "HoldReleased"]


async def test_a_reservation_whose_task_never_appears_is_swept(gateway_db):
    db = gateway_db
    keys = KeyStore(db, KeyHasher(SECRET), Sealer(SECRET))
    key = (await keys.create(KeySpec(name="k", owner="acme", budget_usd=Decimal(1)))).key
    from services.gateway.holds import Holds

    holds = Holds(db)
    await holds.reserve(key, request_id_for(key.id, "lost"), Decimal("0.5"))
    assert (await keys.usage(key)).open_usd == Decimal("0.5")
    assert await holds.sweep(older_than_s=3600) == 0  # too young
    assert await holds.sweep(older_than_s=0) == 1
    usage = await keys.usage(key)
    assert usage.open_usd == 0
    assert usage.open_count == 0


async def tracked(db, deliveries: list[Delivery]) -> list[bool]:
    async with db.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT event_id FROM consumer_tracking "
                "WHERE consumer = 'gateway-webhooks' AND event_id = ANY(%s)",
                ([d.event_id for d in deliveries],),
            )
        ).fetchall()
    return [d.event_id in {r[0] for r in rows} for d in deliveries]


async def test_progress_of_a_task_without_webhook_is_skipped_once_its_hold_is_known(gateway_db):
    """No money moves and no one is told: no transaction, no tracking row. A task with a webhook,
    or one whose creation this process has not seen, still goes the whole way."""
    db = gateway_db
    store = EventStore(db)
    reactions = TaskReactions(LedgerReactions(store), WorkQueue(db, "gateway_webhook_jobs"))
    quiet, hooked, unseen = (uuid.uuid4().hex for _ in range(3))

    def events(task_id: str, webhook_url: str = "") -> list[Message]:
        return [
            created(task_id, f"r-{task_id}", "0.02", webhook_url=webhook_url),
            events_pb2.TaskDispatched(task_id=task_id, provider_task_id="p"),
            events_pb2.TaskProgressed(task_id=task_id, progress=0.5),
            events_pb2.TaskFailed(task_id=task_id, code="X", message="no", stage="poll"),
        ]

    for task_id, url in ((quiet, ""), (hooked, "https://example.com/hook")):
        for delivery in await record(store, task_id, events(task_id, url)):
            await reactions(delivery)
    unseen_deliveries = await record(store, unseen, events(unseen))
    for delivery in unseen_deliveries[1:]:  # its TaskCreated went to another replica
        await reactions(delivery)

    quiet_deliveries = [d async for d in _redelivered(db, store, quiet)]
    assert await tracked(db, quiet_deliveries) == [True, False, False, True]
    hooked_deliveries = [d async for d in _redelivered(db, store, hooked)]
    assert await tracked(db, hooked_deliveries) == [True, True, True, True]
    assert await tracked(db, unseen_deliveries) == [False, True, False, True]
    _, hold, hooks, _ = await state_of(db, "", hooked)
    assert hold[0] == "released" and hooks == ["task.failed", "task.progress", "task.progress"]
    for task_id in (quiet, unseen):
        _, hold, hooks, _ = await state_of(db, "", task_id)
        assert hold[0] == "released" and hooks == []


async def _redelivered(db, store: EventStore, task_id: str):
    for event in await store.read_stream(f"task-{task_id}"):
        envelope = common_pb2.EventEnvelope(event_id=str(event.event_id), type=event.type)
        yield Delivery("gateway-webhooks", envelope, decode(event), 2, db)


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "restarted-between"])
async def test_a_settlement_names_the_task_whether_or_not_the_gateway_saw_its_creation(gateway_db, restart):
    """A completion settles at the quote and names the task (owner, key, model, provider, shot)
    the same whether the process that handles it saw the task's creation or was restarted in
    between; a task without a webhook gets no deliveries either way."""
    db = gateway_db
    keys = KeyStore(db, KeyHasher(SECRET), Sealer(SECRET))
    key = (await keys.create(KeySpec(name="k", owner="acme"))).key
    store = EventStore(db)
    task_id = uuid.uuid4().hex
    creation = created(task_id, request_id_for(key.id, "auto-9"), "0.02")
    creation.shot_id = "shot-7"
    deliveries = await record(
        store,
        task_id,
        [
            creation,
            events_pb2.TaskProgressed(task_id=task_id, progress=0.5),
            events_pb2.TaskCompleted(task_id=task_id, source="poll"),
        ],
    )
    reactions = TaskReactions(LedgerReactions(store), WorkQueue(db, "gateway_webhook_jobs"))
    await reactions(deliveries[0])
    if restart:
        reactions = TaskReactions(LedgerReactions(store), WorkQueue(db, "gateway_webhook_jobs"))
    for delivery in deliveries[1:]:
        await reactions(delivery)
    usage, hold, hooks, ledger = await state_of(db, key.id, task_id)
    assert hold == ("settled", Decimal("0.02"), Decimal("0.02"))  # no provider charge: the quote
    assert usage == (Decimal("0.02"), Decimal(0), 0)
    assert hooks == [] and ledger == ["HoldPlaced", "ChargeSettled"]
    settled = decode((await store.read_stream(f"ledger-{key.id}"))[-1])
    subject = settled.subject
    assert (subject.task_id, subject.owner, subject.key_id) == (task_id, "acme", key.id)
    assert (subject.model_slug, subject.provider_slug) == ("kie-nano-banana", "kie")
    assert subject.shot_id == "shot-7"
    assert settled.basis == "quote" and settled.charged_usd == "0.02"
