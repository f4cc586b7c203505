"""Ops settings from the environment: defaults, overrides, and errors that name the variable."""

from __future__ import annotations

from decimal import Decimal

import pytest
from aigen.config import ConfigError

from services.ops.settings import DEFAULT_WEBHOOK_SCHEDULE, OpsSettings


def test_defaults_without_any_variable():
    s = OpsSettings.from_env({})
    assert s.breaker.failure_rate == 0.5 and s.breaker.min_attempts == 10
    assert s.alerts.failure_min_attempts == s.breaker.min_attempts
    assert s.alerts.low_balance == {"*": 10.0}
    assert s.alerts.budget_usd is None and s.webhooks == ()
    assert s.webhook_schedule == DEFAULT_WEBHOOK_SCHEDULE
    assert s.health_every_s == 300.0


def test_overrides():
    s = OpsSettings.from_env(
        {
            "AIGEN_BREAKER_FAILURE_RATE": "0.3",
            "AIGEN_BREAKER_MIN_ATTEMPTS": "4",
            "AIGEN_ALERT_LOW_BALANCE": "kie=500, *=5",
            "AIGEN_ALERT_BUDGET_USD": "250.50",
            "AIGEN_ALERT_BUDGET_PERIOD": "week",
            "AIGEN_ALERT_WEBHOOKS": "https://hooks.example.com/a, http://127.0.0.1:9/b",
            "AIGEN_ALERT_WEBHOOK_SCHEDULE": "1,2",
            "AIGEN_OPS_HEALTH_INTERVAL_S": "0",
            "AIGEN_ALERT_DISABLE": "budget,lag",
            "AIGEN_POLL_MAX_DURATION_S": "60",
        }
    )
    assert s.breaker.failure_rate == 0.3 and s.alerts.failure_min_attempts == 4
    assert s.alerts.low_balance == {"kie": 500.0, "*": 5.0}
    assert s.alerts.budget_usd == Decimal("250.50") and s.alerts.budget_period == "week"
    assert s.webhooks == ("https://hooks.example.com/a", "http://127.0.0.1:9/b")
    assert s.webhook_schedule == (1.0, 2.0)
    assert s.health_every_s is None
    assert s.alerts.disabled == {"budget", "lag"}
    assert s.alerts.duration_override_s == 60.0


def test_a_bare_number_is_the_balance_threshold_of_every_provider():
    assert OpsSettings.from_env({"AIGEN_ALERT_LOW_BALANCE": "25"}).alerts.low_balance == {"*": 25.0}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AIGEN_BREAKER_FAILURE_RATE", "1.5"),
        ("AIGEN_BREAKER_FAILURE_RATE", "half"),
        ("AIGEN_BREAKER_WINDOW_S", "0"),
        ("AIGEN_BREAKER_COOLDOWN_S", "-1"),
        ("AIGEN_ALERT_LOW_BALANCE", "kie=lots"),
        ("AIGEN_ALERT_BUDGET_USD", "-3"),
        ("AIGEN_ALERT_BUDGET_PERIOD", "fortnight"),
        ("AIGEN_ALERT_WEBHOOKS", "ftp://example.com/x"),
        ("AIGEN_ALERT_WEBHOOK_SCHEDULE", "1,soon"),
        ("AIGEN_ALERT_DISABLE", "provider_down,nonsense"),
    ],
)
def test_a_wrong_value_names_its_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        OpsSettings.from_env({name: value})


def test_a_bad_webhook_url_is_not_echoed_whole():
    # Slack-style webhook URLs carry their secret in the path.
    with pytest.raises(ConfigError) as caught:
        OpsSettings.from_env({"AIGEN_ALERT_WEBHOOKS": "hooks.example.com/services/T000/B000/SECRETSECRET"})
    assert "SECRETSECRET" not in str(caught.value)
