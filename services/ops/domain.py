"""Operations rules without I/O: breaker window maths, alert conditions and their life cycle.

Breaker. A provider's recent dispatch outcomes are counted over a sliding window that never
reaches back past the breaker's last recovery (failures from before it do not count twice). The
breaker opens when enough attempts were seen and the share
of provider-side failures reaches the threshold. While open, nothing is dispatched to the
provider; after the cool-down a probe (the adapter's free health check) is due every
`probe_every_s`, and the first successful probe closes it.

Alerts. Each rule measures its subjects (a provider, a projection, a dead-letter source …);
a measurement past its threshold is "firing". `reconcile` turns measurements into transitions
against what is already open: a firing subject without an open alert raises one, a firing
subject with one changes nothing (deduplication while the condition lasts), and an open alert
whose subject no longer fires — or was not measured at all by a rule that was evaluated — is
resolved. Rules that could not be evaluated leave their alerts alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aigen.v1 import ops_pb2

# --- breaker -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BreakerPolicy:
    window_s: float = 300.0
    min_attempts: int = 10
    failure_rate: float = 0.5
    cooldown_s: float = 60.0
    probe_every_s: float = 30.0


@dataclass(frozen=True)
class WindowStats:
    attempts: int = 0
    failures: int = 0
    last_failure_code: str = ""

    @property
    def rate(self) -> float:
        return self.failures / self.attempts if self.attempts else 0.0


def window_start(now: float, window_s: float, since: float | None) -> float:
    """Where the window begins: `window_s` back, but never before `since` (the last recovery)."""
    start = now - window_s
    return start if since is None else max(start, since)


@dataclass(frozen=True)
class BreakerView:
    """A provider's breaker as its stream says: open or not, since when, at which version."""

    open: bool = False
    since: float | None = None  # unix seconds of the last transition; None: never changed
    version: int = 0


def should_open(view: BreakerView, stats: WindowStats, policy: BreakerPolicy) -> bool:
    return (
        not view.open and stats.attempts >= max(1, policy.min_attempts) and stats.rate >= policy.failure_rate
    )


def probe_due(view: BreakerView, now: float, last_check_at: float | None, policy: BreakerPolicy) -> bool:
    """An open breaker whose cool-down has passed is probed, then again every `probe_every_s`."""
    if not view.open or view.since is None:
        return False
    if now < view.since + policy.cooldown_s:
        return False
    if last_check_at is None or last_check_at < view.since + policy.cooldown_s:
        return True
    return now - last_check_at >= policy.probe_every_s


def cooled_down(provider: str, stats: WindowStats, policy: BreakerPolicy) -> ops_pb2.ProviderCooledDown:
    return ops_pb2.ProviderCooledDown(
        provider_slug=provider,
        attempts=stats.attempts,
        failures=stats.failures,
        failure_rate=round(stats.rate, 4),
        threshold=policy.failure_rate,
        window_s=policy.window_s,
        cooldown_s=policy.cooldown_s,
        reason=(
            f"{stats.failures} of the last {stats.attempts} dispatches failed on the provider's side"
            + (f", last with {stats.last_failure_code}" if stats.last_failure_code else "")
        ),
        last_error_code=stats.last_failure_code,
    )


# --- alert rules -------------------------------------------------------------------------------

PROVIDER_FAILURE_RATE = "provider_failure_rate"
PROVIDER_DOWN = "provider_down"
LOW_BALANCE = "low_balance"
TASK_STUCK = "task_stuck"
LAG = "lag"
DEAD_LETTERS = "dead_letters"
BUDGET = "budget"
RULES = (PROVIDER_FAILURE_RATE, PROVIDER_DOWN, LOW_BALANCE, TASK_STUCK, LAG, DEAD_LETTERS, BUDGET)

WARNING = "warning"
CRITICAL = "critical"


@dataclass(frozen=True)
class AlertPolicy:
    failure_rate: float = 0.25
    failure_min_attempts: int = 10
    health_failures: int = 2  # failed health checks in a row that mean "down"
    low_balance: Mapping[str, float] = field(default_factory=lambda: {"*": 10.0})
    stuck_grace_s: float = 300.0
    queue_stuck_s: float = 600.0  # waiting on our own services: dispatch, storage
    duration_override_s: float | None = None  # the deployment's polling limit, when it sets one
    lag_events: int = 1000
    dead_letter_window_s: float = 3600.0
    budget_usd: Decimal | None = None
    budget_period: str = "month"  # "day" | "week" | "month"
    budget_fraction: float = 0.8
    disabled: frozenset[str] = frozenset()

    def balance_threshold(self, provider: str) -> float | None:
        return self.low_balance.get(provider, self.low_balance.get("*"))


@dataclass(frozen=True)
class Measurement:
    rule: str
    subject: str
    value: float
    threshold: float
    firing: bool
    summary: str
    severity: str = WARNING
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderHealth:
    """What the health projection knows about a provider."""

    provider: str
    ok: bool | None = None  # None: never checked
    consecutive_failures: int = 0
    balance: float | None = None
    balance_unit: str = ""
    last_check_at: float | None = None
    message: str = ""


def failure_rate_measurements(
    stats: Mapping[str, WindowStats], policy: AlertPolicy, window_s: float
) -> list[Measurement]:
    found = []
    for provider, s in sorted(stats.items()):
        firing = s.attempts >= max(1, policy.failure_min_attempts) and s.rate >= policy.failure_rate
        found.append(
            Measurement(
                PROVIDER_FAILURE_RATE,
                provider,
                round(s.rate, 4),
                policy.failure_rate,
                firing,
                f"{provider}: {s.failures} of {s.attempts} dispatches failed on the provider's side "
                f"({s.rate:.0%}) in the last {window_s:g}s",
                details={"attempts": str(s.attempts), "failures": str(s.failures)},
            )
        )
    return found


def provider_down_measurements(
    breakers: Mapping[str, BreakerView], health: Mapping[str, ProviderHealth], policy: AlertPolicy
) -> list[Measurement]:
    found = []
    for provider in sorted(set(breakers) | set(health)):
        view = breakers.get(provider, BreakerView())
        h = health.get(provider, ProviderHealth(provider))
        failing_checks = h.ok is False and h.consecutive_failures >= max(1, policy.health_failures)
        if view.open:
            summary = f"{provider} is cooled down: dispatches fail over or are refused"
        elif failing_checks:
            summary = f"{provider} failed {h.consecutive_failures} health checks in a row: {h.message}"
        else:
            summary = f"{provider} is up"
        found.append(
            Measurement(
                PROVIDER_DOWN,
                provider,
                1.0 if view.open or failing_checks else 0.0,
                1.0,
                view.open or failing_checks,
                summary,
                CRITICAL,
                {
                    "breaker": "open" if view.open else "closed",
                    "health_failures": str(h.consecutive_failures),
                },
            )
        )
    return found


def low_balance_measurements(health: Mapping[str, ProviderHealth], policy: AlertPolicy) -> list[Measurement]:
    found = []
    for provider, h in sorted(health.items()):
        threshold = policy.balance_threshold(provider)
        if h.balance is None or threshold is None:
            continue
        unit = f" {h.balance_unit}" if h.balance_unit else ""
        found.append(
            Measurement(
                LOW_BALANCE,
                provider,
                h.balance,
                threshold,
                h.balance < threshold,
                f"{provider} balance is {h.balance:g}{unit} (alert below {threshold:g}{unit})",
                details={"unit": h.balance_unit},
            )
        )
    return found


@dataclass(frozen=True)
class ActiveTask:
    task_id: str
    provider: str
    model: str
    stage: str  # "PENDING" (waiting for dispatch) | "PROCESSING" (at the provider) | "STORING"
    since: float  # unix seconds the task entered the stage
    max_duration_s: float = 0.0


DEFAULT_MAX_DURATION_S = 1800.0  # the poller's default when a model sets no profile


def stuck_after_s(task: ActiveTask, policy: AlertPolicy) -> float:
    """How long a task may stay in its stage before it counts as stuck.

    At the provider the poller settles every task by its polling deadline (an attempts limit can
    only end it sooner), so a task still there after that, plus a grace, has been forgotten."""
    if task.stage == "PROCESSING":
        limit = policy.duration_override_s or task.max_duration_s or DEFAULT_MAX_DURATION_S
        return limit + policy.stuck_grace_s
    return policy.queue_stuck_s


def stuck_measurements(
    tasks: Iterable[ActiveTask], now: float, policy: AlertPolicy, providers: Collection[str] = ()
) -> list[Measurement]:
    """One measurement per provider: how many of its tasks are stuck (firing when any)."""
    stuck: dict[str, list[tuple[float, ActiveTask]]] = {p: [] for p in providers}
    for task in tasks:
        stuck.setdefault(task.provider, [])
        age = now - task.since
        if age > stuck_after_s(task, policy):
            stuck[task.provider].append((age, task))
    found = []
    for provider, items in sorted(stuck.items()):
        items.sort(key=lambda item: -item[0])
        if items:
            age, oldest = items[0]
            summary = (
                f"{len(items)} {provider} task(s) stuck beyond their polling profile; "
                f"oldest {oldest.task_id} {oldest.stage.lower()} for {_duration(age)}"
            )
        else:
            summary = f"no {provider} task is stuck"
        found.append(
            Measurement(
                TASK_STUCK,
                provider,
                float(len(items)),
                1.0,
                bool(items),
                summary,
                details={
                    "task_ids": ",".join(t.task_id for _, t in items[:10]),
                    "stages": ",".join(sorted({t.stage for _, t in items})),
                },
            )
        )
    return found


@dataclass(frozen=True)
class ReaderLag:
    name: str  # "relay" | "projection:<name>"
    lag: int
    stalled: bool = False
    error: str = ""


def lag_measurements(readers: Iterable[ReaderLag], policy: AlertPolicy) -> list[Measurement]:
    found = []
    for reader in sorted(readers, key=lambda r: r.name):
        if reader.stalled:
            summary = f"{reader.name} is stopped: {reader.error}"
        else:
            summary = f"{reader.name} is {reader.lag} events behind the log"
        found.append(
            Measurement(
                LAG,
                reader.name,
                float(reader.lag),
                float(policy.lag_events),
                reader.stalled or reader.lag >= policy.lag_events,
                summary,
                CRITICAL if reader.stalled else WARNING,
            )
        )
    return found


def dead_letter_measurements(recent: Mapping[str, int], policy: AlertPolicy) -> list[Measurement]:
    """`recent`: dead letters per source within the window."""
    return [
        Measurement(
            DEAD_LETTERS,
            source,
            float(count),
            1.0,
            count > 0,
            f"{count} piece(s) of {source} work dead-lettered in the last {policy.dead_letter_window_s:g}s",
        )
        for source, count in sorted(recent.items())
    ]


def period_start(period: str, now: datetime) -> datetime:
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


_ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly"}


def budget_measurements(spent: Decimal, policy: AlertPolicy) -> list[Measurement]:
    if policy.budget_usd is None or policy.budget_usd <= 0:
        return []
    share = float(spent / policy.budget_usd)
    adjective = _ADJECTIVE.get(policy.budget_period, policy.budget_period)
    return [
        Measurement(
            BUDGET,
            policy.budget_period,
            round(share, 4),
            policy.budget_fraction,
            share >= policy.budget_fraction,
            f"${spent:.2f} of the ${policy.budget_usd:.2f} {adjective} budget spent ({share:.0%})",
            CRITICAL if share >= 1 else WARNING,
            {"spent_usd": f"{spent:.6f}", "budget_usd": str(policy.budget_usd)},
        )
    ]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


# --- alert life cycle --------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertStream:
    """An alert stream's head as the alerts projection saw it."""

    rule: str
    subject: str
    version: int
    open: bool


@dataclass(frozen=True)
class Raise:
    measurement: Measurement
    expected_version: int

    def event(self) -> ops_pb2.AlertRaised:
        m = self.measurement
        return ops_pb2.AlertRaised(
            rule=m.rule,
            subject=m.subject,
            severity=m.severity,
            summary=m.summary,
            value=m.value,
            threshold=m.threshold,
            details=dict(m.details),
        )


@dataclass(frozen=True)
class Resolve:
    stream: AlertStream
    summary: str
    value: float

    @property
    def expected_version(self) -> int:
        return self.stream.version

    def event(self) -> ops_pb2.AlertResolved:
        return ops_pb2.AlertResolved(
            rule=self.stream.rule, subject=self.stream.subject, summary=self.summary, value=self.value
        )


def reconcile(
    streams: Mapping[tuple[str, str], AlertStream],
    measurements: Sequence[Measurement],
    evaluated: Collection[str],
) -> list[Raise | Resolve]:
    """Transitions that bring the alert streams in line with what was measured just now."""
    measured: dict[tuple[str, str], Measurement] = {}
    for m in measurements:
        measured.setdefault((m.rule, m.subject), m)
    transitions: list[Raise | Resolve] = []
    for key, m in measured.items():
        stream = streams.get(key)
        if m.firing and (stream is None or not stream.open):
            transitions.append(Raise(m, stream.version if stream is not None else 0))
    for key, stream in sorted(streams.items()):
        if not stream.open or stream.rule not in evaluated:
            continue
        m_or_none = measured.get(key)
        if m_or_none is not None and m_or_none.firing:
            continue
        if m_or_none is None:
            transitions.append(Resolve(stream, f"{stream.subject}: {stream.rule} no longer applies", 0.0))
        else:
            transitions.append(Resolve(stream, f"cleared — {m_or_none.summary}", m_or_none.value))
    return transitions
