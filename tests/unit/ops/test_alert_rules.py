"""Alert conditions and the raise / dedup / resolve life cycle, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.ops import domain
from services.ops.domain import (
    ActiveTask,
    AlertPolicy,
    AlertStream,
    BreakerView,
    Measurement,
    ProviderHealth,
    Raise,
    ReaderLag,
    Resolve,
    WindowStats,
    reconcile,
)


def firing(rule="provider_down", subject="kie", value=1.0) -> Measurement:
    return Measurement(rule, subject, value, 1.0, True, f"{subject} is down")


def calm(rule="provider_down", subject="kie", value=0.0) -> Measurement:
    return Measurement(rule, subject, value, 1.0, False, f"{subject} is up")


# --- life cycle -----------------------------------------------------------------------------------


def test_a_new_condition_raises_on_a_new_stream():
    [t] = reconcile({}, [firing()], {"provider_down"})
    assert isinstance(t, Raise) and t.expected_version == 0
    assert t.event().rule == "provider_down" and t.event().subject == "kie"


def test_a_condition_that_lasts_raises_nothing_more():
    streams = {("provider_down", "kie"): AlertStream("provider_down", "kie", 1, open=True)}
    assert reconcile(streams, [firing()], {"provider_down"}) == []


def test_a_condition_that_clears_resolves_at_the_stream_version():
    streams = {("provider_down", "kie"): AlertStream("provider_down", "kie", 1, open=True)}
    [t] = reconcile(streams, [calm()], {"provider_down"})
    assert isinstance(t, Resolve) and t.expected_version == 1
    assert t.event().summary.startswith("cleared") and "kie is up" in t.event().summary


def test_a_condition_that_returns_raises_again_after_the_last_resolve():
    streams = {("provider_down", "kie"): AlertStream("provider_down", "kie", 2, open=False)}
    [t] = reconcile(streams, [firing()], {"provider_down"})
    assert isinstance(t, Raise) and t.expected_version == 2


def test_a_subject_no_longer_measured_is_resolved():
    streams = {("lag", "projection:gone"): AlertStream("lag", "projection:gone", 1, open=True)}
    [t] = reconcile(streams, [], {"lag"})
    assert isinstance(t, Resolve) and "no longer applies" in t.summary


def test_a_rule_that_could_not_be_evaluated_keeps_its_alerts_open():
    streams = {("lag", "relay"): AlertStream("lag", "relay", 1, open=True)}
    assert reconcile(streams, [], evaluated={"provider_down"}) == []


def test_nothing_happens_for_calm_subjects_without_alerts():
    assert reconcile({}, [calm(), calm(subject="openai")], {"provider_down"}) == []


def test_duplicate_measurements_raise_once():
    assert len(reconcile({}, [firing(), firing()], {"provider_down"})) == 1


# --- rules ----------------------------------------------------------------------------------------


def test_failure_rate_fires_at_its_own_threshold_with_enough_attempts():
    policy = AlertPolicy(failure_rate=0.25, failure_min_attempts=4)
    found = domain.failure_rate_measurements(
        {"kie": WindowStats(4, 1), "openai": WindowStats(4, 0), "pollo": WindowStats(3, 3)}, policy, 300
    )
    assert {m.subject: m.firing for m in found} == {"kie": True, "openai": False, "pollo": False}


def test_provider_down_when_breaker_open_or_health_checks_keep_failing():
    policy = AlertPolicy(health_failures=2)
    found = domain.provider_down_measurements(
        {"kie": BreakerView(open=True, since=0.0, version=1), "openai": BreakerView()},
        {
            "openai": ProviderHealth("openai", ok=False, consecutive_failures=1),
            "pollo": ProviderHealth("pollo", ok=False, consecutive_failures=2, message="401"),
        },
        policy,
    )
    by = {m.subject: m for m in found}
    assert by["kie"].firing and by["kie"].severity == domain.CRITICAL
    assert not by["openai"].firing  # one failed check is not "down"
    assert by["pollo"].firing and "401" in by["pollo"].summary


def test_low_balance_uses_the_provider_threshold_else_the_default():
    policy = AlertPolicy(low_balance={"kie": 500.0, "*": 10.0})
    found = domain.low_balance_measurements(
        {
            "kie": ProviderHealth("kie", ok=True, balance=400.0, balance_unit="credits"),
            "pollo": ProviderHealth("pollo", ok=True, balance=400.0),
            "openai": ProviderHealth("openai", ok=True),  # reports no balance: not measured
        },
        policy,
    )
    assert {m.subject: m.firing for m in found} == {"kie": True, "pollo": False}
    assert "400 credits" in found[0].summary


def test_low_balance_without_a_threshold_is_not_measured():
    assert (
        domain.low_balance_measurements(
            {"kie": ProviderHealth("kie", balance=1.0)}, AlertPolicy(low_balance={})
        )
        == []
    )


def test_a_task_is_stuck_after_its_polling_deadline_plus_grace():
    policy = AlertPolicy(stuck_grace_s=60, queue_stuck_s=600)
    task = ActiveTask("t1", "kie", "kie-4o-image", "PROCESSING", since=0.0, max_duration_s=900)
    assert domain.stuck_after_s(task, policy) == 960
    [m] = domain.stuck_measurements([task], 959.0, policy)
    assert not m.firing
    [m] = domain.stuck_measurements([task], 961.0, policy)
    assert m.firing and m.details["task_ids"] == "t1" and "t1" in m.summary


def test_the_deployment_polling_limit_overrides_the_model_profile():
    policy = AlertPolicy(stuck_grace_s=1, duration_override_s=5)
    task = ActiveTask("t1", "kie", "m", "PROCESSING", since=0.0, max_duration_s=900)
    assert domain.stuck_after_s(task, policy) == 6


def test_tasks_waiting_on_our_own_services_use_the_queue_limit():
    policy = AlertPolicy(queue_stuck_s=30)
    for stage in ("PENDING", "STORING"):
        assert domain.stuck_after_s(ActiveTask("t", "kie", "m", stage, 0.0, 900), policy) == 30


def test_stuck_counts_per_provider_oldest_first_and_quiet_providers_measure_zero():
    policy = AlertPolicy(queue_stuck_s=10)
    tasks = [
        ActiveTask("young", "kie", "m", "PENDING", since=95.0),
        ActiveTask("old", "kie", "m", "PENDING", since=0.0),
        ActiveTask("older", "kie", "m", "PENDING", since=-50.0),
    ]
    found = {m.subject: m for m in domain.stuck_measurements(tasks, 100.0, policy, providers=["openai"])}
    assert found["kie"].value == 2 and found["kie"].details["task_ids"] == "older,old"
    assert not found["openai"].firing


def test_lag_fires_past_the_threshold_and_on_a_stalled_projection():
    policy = AlertPolicy(lag_events=100)
    found = {
        m.subject: m
        for m in domain.lag_measurements(
            [
                ReaderLag("relay", 99),
                ReaderLag("projection:tasks", 100),
                ReaderLag("projection:alerts", 0, stalled=True, error="unknown event type"),
            ],
            policy,
        )
    }
    assert not found["relay"].firing
    assert found["projection:tasks"].firing
    assert found["projection:alerts"].firing and found["projection:alerts"].severity == domain.CRITICAL


def test_dead_letters_fire_while_any_is_recent():
    found = domain.dead_letter_measurements({"poll_jobs": 2, "storage-completed": 0}, AlertPolicy())
    assert {m.subject: m.firing for m in found} == {"poll_jobs": True, "storage-completed": False}


@pytest.mark.parametrize(
    ("spent", "fires", "severity"),
    [("79.99", False, "warning"), ("80", True, "warning"), ("100", True, "critical")],
)
def test_budget_fires_at_its_fraction_and_is_critical_when_spent(spent, fires, severity):
    policy = AlertPolicy(budget_usd=Decimal(100), budget_fraction=0.8, budget_period="month")
    [m] = domain.budget_measurements(Decimal(spent), policy)
    assert m.firing is fires and m.severity == severity and "monthly budget" in m.summary


def test_no_budget_no_measurement():
    assert domain.budget_measurements(Decimal(1000), AlertPolicy()) == []


def test_budget_periods_start_where_expected():
    wednesday = datetime(2024, 5, 15, 13, 30, tzinfo=UTC)
    assert domain.period_start("day", wednesday) == datetime(2024, 5, 15, tzinfo=UTC)
    assert domain.period_start("week", wednesday) == datetime(2024, 5, 13, tzinfo=UTC)
    assert domain.period_start("month", wednesday) == datetime(2024, 5, 1, tzinfo=UTC)
