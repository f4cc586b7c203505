"""Polling rules without I/O: the cadence, the limits, and what a check's answer means.

Cadence: quick checks while a job is young (most providers finish images within a minute), the
model's interval after that, slower once a job has run long, and much slower when the provider
will call us back anyway. Jitter spreads replicas and tasks created together. The delay never
overshoots the task's time limit.

Defaults are the seed's: every 5 s, at most 180 checks, at most 30 minutes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from aigen.providers.types import AdapterResult, ErrorCode, Outcome

DEFAULT_INTERVAL_S = 5.0
DEFAULT_MAX_ATTEMPTS = 180
DEFAULT_MAX_DURATION_S = 1800.0
MAX_CONSECUTIVE_ERRORS = 3
FAST_PHASE_S = 30.0
SLOW_PHASE_S = 300.0


@dataclass(frozen=True)
class PollPlan:
    """What a poll job remembers between checks (kept in the job's `state`)."""

    started_at: float  # unix seconds, when the task was dispatched
    interval_s: float = DEFAULT_INTERVAL_S
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    callback: bool = False
    errors: int = 0
    progress: float = -1.0
    kind: str = "poll"  # "poll" | "reconcile"

    def to_state(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "interval_s": self.interval_s,
            "max_attempts": self.max_attempts,
            "max_duration_s": self.max_duration_s,
            "callback": self.callback,
            "errors": self.errors,
            "progress": self.progress,
            "kind": self.kind,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PollPlan:
        return cls(
            started_at=float(state.get("started_at", 0.0)),
            interval_s=float(state.get("interval_s", DEFAULT_INTERVAL_S)),
            max_attempts=int(state.get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
            max_duration_s=float(state.get("max_duration_s", DEFAULT_MAX_DURATION_S)),
            callback=bool(state.get("callback", False)),
            errors=int(state.get("errors", 0)),
            progress=float(state.get("progress", -1.0)),
            kind=str(state.get("kind", "poll")),
        )


def plan_for(
    started_at: float,
    interval_s: float,
    max_attempts: int,
    max_duration_s: float,
    callback: bool,
    *,
    interval_override: float | None = None,
    attempts_override: int | None = None,
    duration_override: float | None = None,
) -> PollPlan:
    """The model's polling profile, with the deployment's overrides and the seed's defaults."""
    return PollPlan(
        started_at=started_at,
        interval_s=interval_override or interval_s or DEFAULT_INTERVAL_S,
        max_attempts=attempts_override or max_attempts or DEFAULT_MAX_ATTEMPTS,
        max_duration_s=duration_override or max_duration_s or DEFAULT_MAX_DURATION_S,
        callback=callback,
    )


def next_delay(
    plan: PollPlan, now: float, *, min_interval_s: float = 0.0, rng: random.Random | None = None
) -> float:
    elapsed = max(0.0, now - plan.started_at)
    base = plan.interval_s
    if elapsed < FAST_PHASE_S:
        delay = base * 0.5
    elif elapsed < SLOW_PHASE_S:
        delay = base
    else:
        delay = base * 2.0
    if plan.callback:
        delay *= 3.0
    delay = max(delay, min_interval_s)
    delay *= (rng or random).uniform(0.85, 1.15)
    remaining = plan.max_duration_s - elapsed
    return max(0.05, min(delay, remaining + 0.05))


def first_delay(plan: PollPlan, rng: random.Random | None = None) -> float:
    return next_delay(plan, plan.started_at, rng=rng)


@dataclass(frozen=True)
class Limit:
    code: str
    message: str


def exhausted(plan: PollPlan, attempts: int, now: float) -> Limit | None:
    """Which limit the task has hit, named, or None."""
    elapsed = now - plan.started_at
    if elapsed >= plan.max_duration_s:
        return Limit(
            "TIMEOUT",
            f"Task timeout after {round(elapsed)}s (limit {round(plan.max_duration_s)}s)",
        )
    if attempts >= plan.max_attempts:
        return Limit(
            "POLL_ATTEMPTS_EXHAUSTED",
            f"Task did not complete after {plan.max_attempts} polling attempts",
        )
    return None


def is_transient(result: AdapterResult) -> bool:
    """A check that failed to learn anything (network, 5xx, garbage) — not the provider's verdict."""
    if result.outcome is not Outcome.ERROR or result.error is None:
        return False
    if result.error.code in (ErrorCode.GENERATION_FAILED, ErrorCode.CONTENT_POLICY, ErrorCode.CANCELLED):
        return False
    return result.error.retryable


def rounded_progress(value: float | None) -> float | None:
    """Progress worth reporting: two decimals, so jitter in a provider's number is not an event."""
    return None if value is None else round(max(0.0, min(1.0, value)), 2)
