"""Breaker window maths: where the window starts, when the breaker opens, when a probe is due."""

from __future__ import annotations

import pytest

from services.ops.domain import (
    BreakerPolicy,
    BreakerView,
    WindowStats,
    cooled_down,
    probe_due,
    should_open,
    window_start,
)

POLICY = BreakerPolicy(window_s=300, min_attempts=10, failure_rate=0.5, cooldown_s=60, probe_every_s=30)


def test_window_reaches_back_its_length_when_nothing_changed():
    assert window_start(1000.0, 300.0, None) == 700.0


def test_window_never_reaches_back_past_the_last_recovery():
    # Failures that opened the breaker must not count again once it has recovered.
    assert window_start(1000.0, 300.0, 900.0) == 900.0
    assert window_start(1000.0, 300.0, 100.0) == 700.0


def test_rate_of_an_empty_window_is_zero():
    assert WindowStats().rate == 0.0
    assert WindowStats(4, 1).rate == 0.25


@pytest.mark.parametrize(
    ("attempts", "failures", "opens"),
    [
        (10, 5, True),  # exactly at the threshold
        (10, 4, False),  # just under it
        (9, 9, False),  # too few attempts to judge, however bad
        (40, 20, True),
        (40, 19, False),
    ],
)
def test_opens_at_the_threshold_with_enough_attempts(attempts, failures, opens):
    assert should_open(BreakerView(), WindowStats(attempts, failures), POLICY) is opens


def test_an_open_breaker_does_not_open_again():
    assert not should_open(BreakerView(open=True, since=0.0, version=1), WindowStats(50, 50), POLICY)


def test_min_attempts_below_one_still_needs_one_attempt():
    policy = BreakerPolicy(min_attempts=0, failure_rate=0.5)
    assert not should_open(BreakerView(), WindowStats(0, 0), policy)
    assert should_open(BreakerView(), WindowStats(1, 1), policy)


def test_no_probe_for_a_closed_breaker():
    assert not probe_due(BreakerView(open=False, since=0.0, version=2), 10_000.0, None, POLICY)


def test_no_probe_before_the_cooldown_has_passed():
    view = BreakerView(open=True, since=1000.0, version=1)
    assert not probe_due(view, 1059.0, None, POLICY)
    assert probe_due(view, 1060.0, None, POLICY)


def test_a_check_made_before_the_cooldown_ended_does_not_count_as_the_probe():
    view = BreakerView(open=True, since=1000.0, version=1)
    assert probe_due(view, 1061.0, last_check_at=1030.0, policy=POLICY)


def test_probes_repeat_at_their_interval_while_the_breaker_stays_open():
    view = BreakerView(open=True, since=1000.0, version=1)
    assert not probe_due(view, 1080.0, last_check_at=1061.0, policy=POLICY)
    assert probe_due(view, 1091.0, last_check_at=1061.0, policy=POLICY)


def test_cooled_down_event_says_why():
    event = cooled_down("kie", WindowStats(10, 6, "PROVIDER_UNAVAILABLE"), POLICY)
    assert event.provider_slug == "kie" and event.attempts == 10 and event.failures == 6
    assert event.failure_rate == pytest.approx(0.6) and event.threshold == 0.5
    assert "6 of the last 10" in event.reason and "PROVIDER_UNAVAILABLE" in event.reason
