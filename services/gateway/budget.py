"""Budget and concurrency rules of an API key, and the request ids that tie a task to its key.

No I/O: the holds repository locks the key's usage row, asks `decide`, and writes the outcome.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

USD_PLACES = Decimal("0.000001")
ZERO = Decimal(0)

# Tasks submitted with an API key carry `key:<key id>:<idempotency key>` as their request id, so a
# reaction to the task's events (hours later, in another process) knows which key pays for it.
# A client's Idempotency-Key therefore scopes to its API key.
_REQUEST_PREFIX = "key:"


class Period(enum.StrEnum):
    TOTAL = "total"  # never resets
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_start(period: Period, now: datetime) -> datetime:
    """Start (UTC) of the budget period containing `now`; TOTAL periods start at the epoch."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    return datetime(1970, 1, 1, tzinfo=UTC)


def next_reset(period: Period, now: datetime) -> datetime | None:
    start = period_start(period, now)
    if period is Period.DAY:
        return start + timedelta(days=1)
    if period is Period.WEEK:
        return start + timedelta(days=7)
    if period is Period.MONTH:
        return (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
    return None


def usd(value: str | Decimal | int | None) -> Decimal:
    """A dollar amount from a decimal string ("" and None are zero), rounded to micro-dollars."""
    if value is None or value == "":
        return ZERO
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return ZERO
    if not amount.is_finite():
        return ZERO
    return amount.quantize(USD_PLACES, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> str:
    """A dollar amount for people and JSON: no float, no trailing noise ("0.035", "2")."""
    text = format(value.quantize(USD_PLACES).normalize(), "f")
    return text if text != "-0" else "0"


@dataclass(frozen=True)
class Limits:
    budget_usd: Decimal | None
    period: Period
    max_concurrent: int | None

    @property
    def enforced(self) -> bool:
        return self.budget_usd is not None or self.max_concurrent is not None


@dataclass(frozen=True)
class Usage:
    period_start: datetime
    period_charged_usd: Decimal
    open_usd: Decimal
    open_count: int

    def rolled(self, period: Period, now: datetime) -> Usage:
        """The usage in the period containing `now`: charges of an older period drop off; open
        holds stay (they will be charged, or released, in this one)."""
        start = period_start(period, now)
        if start <= self.period_start:
            return self
        return Usage(start, ZERO, self.open_usd, self.open_count)


class Refusal(enum.StrEnum):
    BUDGET = "BUDGET_EXCEEDED"
    CONCURRENCY = "CONCURRENCY_LIMIT_REACHED"


@dataclass(frozen=True)
class Decision:
    refusal: Refusal | None
    message: str = ""


def decide(limits: Limits, usage: Usage, amount: Decimal, now: datetime) -> Decision:
    """May a task quoted at `amount` start now?"""
    if limits.max_concurrent is not None and usage.open_count >= limits.max_concurrent:
        return Decision(
            Refusal.CONCURRENCY,
            f"this key runs at most {limits.max_concurrent} task(s) at once and {usage.open_count} "
            "are in progress; retry when one finishes",
        )
    if limits.budget_usd is not None:
        committed = usage.period_charged_usd + usage.open_usd
        if committed + amount > limits.budget_usd:
            scope = "in total" if limits.period is Period.TOTAL else f"per {limits.period.value}"
            reset = next_reset(limits.period, now)
            tail = f"; the budget resets at {reset.isoformat()}" if reset else ""
            return Decision(
                Refusal.BUDGET,
                f"this request is quoted at ${money(amount)}, but the key's budget is "
                f"${money(limits.budget_usd)} {scope} and ${money(committed)} is already charged or "
                f"held (${money(max(ZERO, limits.budget_usd - committed))} left){tail}",
            )
    return Decision(None)


def request_id_for(key_id: str, idempotency_key: str) -> str:
    return f"{_REQUEST_PREFIX}{key_id}:{idempotency_key}"


def key_of_request(request_id: str) -> tuple[str, str] | None:
    """(key id, the client's idempotency key) of a request id the gateway made, else None."""
    if not request_id.startswith(_REQUEST_PREFIX):
        return None
    key_id, sep, client = request_id[len(_REQUEST_PREFIX) :].partition(":")
    return (key_id, client) if sep and key_id else None
