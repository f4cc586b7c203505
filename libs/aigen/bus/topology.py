"""Every JetStream stream and consumer the system uses, declared in one place.

Services create what they need at start (`ensure`), idempotently; `verify` compares the live
configuration with this declaration so drift is caught (a durable pull consumer keeps its old
config when someone binds to it, so drift would otherwise go unnoticed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import NotFoundError

EVENTS_STREAM = "AIGEN_EVENTS"
ALERTS_STREAM = "AIGEN_ALERTS"
DUPLICATE_WINDOW_S = 120.0


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_s: float = 14 * 24 * 3600.0  # PostgreSQL is the record; NATS only delivers
    duplicate_window_s: float = DUPLICATE_WINDOW_S

    def config(self) -> js_api.StreamConfig:
        return js_api.StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=js_api.RetentionPolicy.LIMITS,
            storage=js_api.StorageType.FILE,
            max_age=self.max_age_s,
            duplicate_window=self.duplicate_window_s,
            discard=js_api.DiscardPolicy.OLD,
        )


@dataclass(frozen=True)
class ConsumerSpec:
    stream: str
    durable: str
    filter_subject: str
    ack_wait_s: float = 60.0
    max_deliver: int = 20
    max_ack_pending: int = 1000
    description: str = ""

    def config(self) -> js_api.ConsumerConfig:
        return js_api.ConsumerConfig(
            durable_name=self.durable,
            description=self.description or None,
            deliver_policy=js_api.DeliverPolicy.ALL,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            filter_subject=self.filter_subject,
        )


@dataclass(frozen=True)
class Topology:
    """Names for one deployment; `namespace` lets several share a NATS server (tests do)."""

    namespace: str = ""
    consumers: tuple[ConsumerSpec, ...] = field(default_factory=tuple)

    @property
    def events_stream(self) -> str:
        return f"{self.namespace}_{EVENTS_STREAM}" if self.namespace else EVENTS_STREAM

    @property
    def alerts_stream(self) -> str:
        return f"{self.namespace}_{ALERTS_STREAM}" if self.namespace else ALERTS_STREAM

    @property
    def subject_prefix(self) -> str:
        return f"{self.namespace}.aigen" if self.namespace else "aigen"

    def event_subject(self, aggregate: str, event: str) -> str:
        """`aigen.events.<aggregate>.<event>`, e.g. aigen.events.task.TaskCreated."""
        return f"{self.subject_prefix}.events.{aggregate}.{event}"

    def alert_subject(self, kind: str) -> str:
        return f"{self.subject_prefix}.alerts.{kind}"

    def streams(self) -> tuple[StreamSpec, ...]:
        """The events stream first (the relay publishes into it), then the alerts stream that
        keeps `aigen.alerts.<rule>` for subscribers who were away when an alert went out."""
        return (
            StreamSpec(self.events_stream, (f"{self.subject_prefix}.events.>",)),
            StreamSpec(self.alerts_stream, (f"{self.subject_prefix}.alerts.>",)),
        )

    def consumer(
        self,
        name: str,
        filter_subject: str,
        *,
        ack_wait_s: float = 60.0,
        max_deliver: int = 20,
        max_ack_pending: int = 1000,
        description: str = "",
    ) -> ConsumerSpec:
        durable = f"{self.namespace}_{name}" if self.namespace else name
        return ConsumerSpec(
            self.events_stream, durable, filter_subject, ack_wait_s, max_deliver, max_ack_pending, description
        )


def system_consumers(topology: Topology) -> tuple[ConsumerSpec, ...]:
    """The consumers of the running system: who reacts to which task events."""
    t = topology
    return (
        t.consumer(
            "poller-dispatched",
            t.event_subject("task", "*"),
            description="poller: schedules checks for dispatched tasks, stops them on terminal events",
        ),
        t.consumer(
            "storage-completed",
            t.event_subject("task", "TaskCompleted"),
            ack_wait_s=120.0,
            description="storage: copies provider results into object storage",
        ),
        t.consumer(
            "studio-tasks",
            t.event_subject("task", "*"),
            description="studio: turns stored results into frames, unlinks deleted tasks",
        ),
        t.consumer(
            "gateway-webhooks",
            t.event_subject("task", "*"),
            description="gateway: client webhooks and the billing ledger",
        ),
        t.consumer(
            "ops-alerts",
            t.event_subject("alert", "*"),
            description="ops: publishes alerts on aigen.alerts.<rule> and queues their webhooks",
        ),
    )


async def ensure(
    js: JetStreamContext, streams: tuple[StreamSpec, ...], consumers: tuple[ConsumerSpec, ...]
) -> None:
    """Create or update every declared stream and consumer (idempotent)."""
    for spec in streams:
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(spec.config())
        else:
            await js.update_stream(spec.config())
    for consumer in consumers:
        await js.add_consumer(consumer.stream, consumer.config())


@dataclass(frozen=True)
class Drift:
    kind: str  # "stream" | "consumer"
    name: str
    field: str
    declared: object
    live: object

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.field} is {self.live!r}, declared {self.declared!r}"


async def verify(
    js: JetStreamContext, streams: tuple[StreamSpec, ...], consumers: tuple[ConsumerSpec, ...]
) -> list[Drift]:
    """Differences between the declaration and the server (empty when they agree)."""
    drift: list[Drift] = []
    for spec in streams:
        try:
            live = (await js.stream_info(spec.name)).config
        except NotFoundError:
            drift.append(Drift("stream", spec.name, "existence", True, False))
            continue
        want = spec.config()
        for name in ("subjects", "retention", "storage", "max_age", "duplicate_window", "discard"):
            declared, actual = getattr(want, name), getattr(live, name)
            if name == "subjects":
                declared, actual = sorted(declared or []), sorted(actual or [])
            if declared != actual:
                drift.append(Drift("stream", spec.name, name, declared, actual))
    for consumer in consumers:
        try:
            info = await js.consumer_info(consumer.stream, consumer.durable)
        except NotFoundError:
            drift.append(Drift("consumer", consumer.durable, "existence", True, False))
            continue
        want_c = consumer.config()
        for name in (
            "deliver_policy",
            "ack_policy",
            "ack_wait",
            "max_deliver",
            "max_ack_pending",
            "filter_subject",
        ):
            declared, actual = getattr(want_c, name), getattr(info.config, name)
            if declared != actual:
                drift.append(Drift("consumer", consumer.durable, name, declared, actual))
    return drift
