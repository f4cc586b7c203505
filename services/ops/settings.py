"""The ops service's settings, from the environment; a wrong value names its variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from aigen.config import ConfigError

from services.ops.domain import RULES, AlertPolicy, BreakerPolicy

DEFAULT_WEBHOOK_SCHEDULE = (2.0, 10.0, 30.0, 120.0, 600.0)


@dataclass(frozen=True)
class OpsSettings:
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    evaluate_every_s: float = 5.0
    health_every_s: float | None = 300.0  # scheduled checks of every active provider; None: off
    webhooks: tuple[str, ...] = ()
    webhook_schedule: tuple[float, ...] = DEFAULT_WEBHOOK_SCHEDULE
    error_retention_days: int = 30

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OpsSettings:
        env = os.environ if env is None else env
        r = _Reader(env)
        breaker = BreakerPolicy(
            window_s=r.positive("AIGEN_BREAKER_WINDOW_S", 300.0),
            min_attempts=int(r.positive("AIGEN_BREAKER_MIN_ATTEMPTS", 10)),
            failure_rate=r.fraction("AIGEN_BREAKER_FAILURE_RATE", 0.5),
            cooldown_s=r.non_negative("AIGEN_BREAKER_COOLDOWN_S", 60.0),
            probe_every_s=r.positive("AIGEN_BREAKER_PROBE_S", 30.0),
        )
        disabled = frozenset(r.names("AIGEN_ALERT_DISABLE"))
        unknown = disabled - set(RULES)
        if unknown:
            listed = ", ".join(sorted(unknown))
            raise ConfigError(f"AIGEN_ALERT_DISABLE: unknown rule(s) {listed}; known: {', '.join(RULES)}")
        period = env.get("AIGEN_ALERT_BUDGET_PERIOD", "month") or "month"
        if period not in ("day", "week", "month"):
            raise ConfigError(f"AIGEN_ALERT_BUDGET_PERIOD={period!r}: use day, week or month")
        alerts = AlertPolicy(
            failure_rate=r.fraction("AIGEN_ALERT_FAILURE_RATE", 0.25),
            failure_min_attempts=breaker.min_attempts,
            health_failures=int(r.positive("AIGEN_ALERT_HEALTH_FAILURES", 2)),
            low_balance=r.thresholds("AIGEN_ALERT_LOW_BALANCE", {"*": 10.0}),
            stuck_grace_s=r.non_negative("AIGEN_ALERT_STUCK_GRACE_S", 300.0),
            queue_stuck_s=r.positive("AIGEN_ALERT_QUEUE_STUCK_S", 600.0),
            duration_override_s=r.optional_positive("AIGEN_POLL_MAX_DURATION_S"),
            lag_events=int(r.positive("AIGEN_ALERT_LAG_EVENTS", 1000)),
            dead_letter_window_s=r.positive("AIGEN_ALERT_DEAD_LETTER_WINDOW_S", 3600.0),
            budget_usd=r.money("AIGEN_ALERT_BUDGET_USD"),
            budget_period=period,
            budget_fraction=r.fraction("AIGEN_ALERT_BUDGET_FRACTION", 0.8),
            disabled=disabled,
        )
        health = r.non_negative("AIGEN_OPS_HEALTH_INTERVAL_S", 300.0)
        return cls(
            breaker=breaker,
            alerts=alerts,
            evaluate_every_s=r.positive("AIGEN_OPS_EVALUATE_S", 5.0),
            health_every_s=health or None,
            webhooks=r.urls("AIGEN_ALERT_WEBHOOKS"),
            webhook_schedule=r.schedule("AIGEN_ALERT_WEBHOOK_SCHEDULE", DEFAULT_WEBHOOK_SCHEDULE),
            error_retention_days=int(r.positive("AIGEN_OPS_ERROR_RETENTION_DAYS", 30)),
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _number(self, name: str, default: float) -> float:
        text = self.env.get(name, "").strip()
        if not text:
            return default
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{name}={text!r}: not a number") from None

    def positive(self, name: str, default: float) -> float:
        value = self._number(name, default)
        if value <= 0:
            raise ConfigError(f"{name}={value:g}: must be more than 0")
        return value

    def non_negative(self, name: str, default: float) -> float:
        value = self._number(name, default)
        if value < 0:
            raise ConfigError(f"{name}={value:g}: must not be negative")
        return value

    def optional_positive(self, name: str) -> float | None:
        if not self.env.get(name, "").strip():
            return None
        return self.positive(name, 0.0)

    def fraction(self, name: str, default: float) -> float:
        value = self._number(name, default)
        if not 0 < value <= 1:
            raise ConfigError(f"{name}={value:g}: must be a share between 0 (excluded) and 1")
        return value

    def money(self, name: str) -> Decimal | None:
        text = self.env.get(name, "").strip()
        if not text:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ConfigError(f"{name}={text!r}: not a decimal amount") from None
        if not value.is_finite() or value <= 0:
            raise ConfigError(f"{name}={text!r}: must be a positive amount")
        return value

    def names(self, name: str) -> list[str]:
        return [part.strip() for part in self.env.get(name, "").split(",") if part.strip()]

    def thresholds(self, name: str, default: dict[str, float]) -> dict[str, float]:
        """`10` (every provider) or `kie=500,elevenlabs=2000,*=10`."""
        text = self.env.get(name, "").strip()
        if not text:
            return dict(default)
        found: dict[str, float] = {}
        for part in self.names(name):
            key, sep, value = part.partition("=")
            key, value = (key.strip(), value.strip()) if sep else ("*", key.strip())
            try:
                found[key or "*"] = float(value)
            except ValueError:
                raise ConfigError(f"{name}: {part!r} is not <provider>=<number> or <number>") from None
        return found

    def urls(self, name: str) -> tuple[str, ...]:
        urls = self.names(name)
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(f"{name}: {_safe(url)!r} is not an http(s) URL")
        return tuple(urls)

    def schedule(self, name: str, default: tuple[float, ...]) -> tuple[float, ...]:
        parts = self.names(name)
        if not parts:
            return default
        try:
            delays = tuple(float(p) for p in parts)
        except ValueError:
            raise ConfigError(f"{name}: use comma-separated seconds, e.g. 2,10,30") from None
        if any(d < 0 for d in delays):
            raise ConfigError(f"{name}: delays must not be negative")
        return delays


def _safe(url: str) -> str:
    """A URL for an error message: webhook URLs often carry their token in the path or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…" if parts.netloc else url[:20]
