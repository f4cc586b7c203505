"""The gateway's pure rules: budgets and periods, rate limits, key material, webhook signing."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aigen.client import WebhookVerificationError, verify_webhook
from aigen.v1 import events_pb2

from services.gateway import keys, webhooks
from services.gateway.budget import (
    Limits,
    Period,
    Refusal,
    Usage,
    decide,
    key_of_request,
    money,
    next_reset,
    period_start,
    request_id_for,
    usd,
)
from services.gateway.ratelimit import RateLimiter

NOW = datetime(2030, 12, 31, 15, 30, tzinfo=UTC)  # a Tuesday, the last day of a year


def test_periods_start_and_reset_on_utc_boundaries():
    assert period_start(Period.DAY, NOW) == datetime(2030, 12, 31, tzinfo=UTC)
    assert period_start(Period.WEEK, NOW) == datetime(2030, 12, 30, tzinfo=UTC)  # Monday
    assert period_start(Period.MONTH, NOW) == datetime(2030, 12, 1, tzinfo=UTC)
    assert next_reset(Period.MONTH, NOW) == datetime(2031, 1, 1, tzinfo=UTC)
    assert next_reset(Period.DAY, NOW) == datetime(2031, 1, 1, tzinfo=UTC)
    assert next_reset(Period.TOTAL, NOW) is None


def test_a_new_period_forgets_charges_but_keeps_open_holds():
    usage = Usage(datetime(2030, 12, 30, tzinfo=UTC), Decimal("4"), Decimal("1"), 2)
    rolled = usage.rolled(Period.DAY, NOW)
    assert rolled == Usage(datetime(2030, 12, 31, tzinfo=UTC), Decimal(0), Decimal("1"), 2)
    assert usage.rolled(Period.MONTH, NOW) == usage


def test_budget_counts_charged_and_held_money():
    limits = Limits(Decimal("1.00"), Period.DAY, None)
    usage = Usage(period_start(Period.DAY, NOW), Decimal("0.60"), Decimal("0.30"), 1)
    assert decide(limits, usage, Decimal("0.10"), NOW).refusal is None
    refused = decide(limits, usage, Decimal("0.11"), NOW)
    assert refused.refusal is Refusal.BUDGET
    assert "$0.11" in refused.message
    assert "$1 per day" in refused.message
    assert "$0.1 left" in refused.message
    assert "2031-01-01" in refused.message


def test_concurrency_limit_counts_open_tasks():
    limits = Limits(None, Period.TOTAL, 2)
    assert decide(limits, Usage(NOW, Decimal(0), Decimal(0), 1), Decimal(5), NOW).refusal is None
    assert (
        decide(limits, Usage(NOW, Decimal(0), Decimal(0), 2), Decimal(0), NOW).refusal is Refusal.CONCURRENCY
    )
    assert not Limits(None, Period.TOTAL, None).enforced


def test_money_is_decimal_and_printed_without_noise():
    assert usd("0.0350") == Decimal("0.035000")
    assert usd("") == 0
    assert usd("NaN") == 0
    assert usd("garbage") == 0
    assert money(Decimal("0.035000")) == "0.035"
    assert money(Decimal("2.000000")) == "2"
    assert money(Decimal("-0")) == "0"


def test_request_ids_carry_the_key():
    assert key_of_request(request_id_for("abc123def456", "order:7")) == ("abc123def456", "order:7")
    assert key_of_request("order-7") is None
    assert key_of_request("key::x") is None


def test_rate_limit_bucket_allows_a_burst_then_refills():
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.take("k", 60, burst=3).allowed for _ in range(4)] == [True, True, True, False]
    assert limiter.take("k", 60, burst=3).retry_after_s == 1
    now[0] += 1.0
    assert limiter.take("k", 60, burst=3).allowed
    slow = limiter.take("s", 2)
    assert slow.allowed
    assert limiter.take("s", 2).allowed
    refused = limiter.take("s", 2)
    assert not refused.allowed
    assert refused.retry_after_s == 30


def test_idle_buckets_are_forgotten_when_memory_runs_out():
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0], max_buckets=2)
    limiter.take("a", 60)
    limiter.take("b", 60)
    now[0] += 120
    limiter.take("c", 60)
    assert set(limiter._buckets) == {"c"}


def test_key_format_and_hash():
    hasher = keys.KeyHasher("server-secret")
    new = keys.generate()
    assert keys.parse(new.key) == new.id
    assert new.prefix == f"aigen_{new.id}"
    stored = hasher.hash(new.key)
    assert hasher.matches(new.key, stored)
    assert not hasher.matches(new.key[:-1] + ("A" if new.key[-1] != "A" else "B"), stored)
    assert not keys.KeyHasher("other-secret").matches(new.key, stored)
    assert keys.parse("aigen_short_x") is None
    assert keys.parse("sk-something") is None


def test_webhooks_verify_with_the_sdk_and_refuse_tampering():
    secret = keys.new_webhook_secret()
    notice = webhooks.notice_for(events_pb2.TaskProgressed(task_id="t1", progress=0.5))
    assert notice is not None
    body = webhooks.body_of(notice, NOW).encode()
    stamp = int(time.time())
    headers = webhooks.signed_headers(secret, "msg-1", stamp, body)
    event = verify_webhook(secret, headers, body)
    assert (event.id, event.type, event.task_id, event.data["progress"]) == (
        "msg-1",
        "task.progress",
        "t1",
        0.5,
    )
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, body.replace(b"0.5", b"0.9"))
    with pytest.raises(WebhookVerificationError):
        verify_webhook(keys.new_webhook_secret(), headers, body)
    old = webhooks.signed_headers(secret, "msg-1", stamp - 3600, body)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, old, body)
    assert verify_webhook(secret, old, body, tolerance_s=7200).id == "msg-1"


def test_which_task_events_are_told_and_the_retry_schedule():
    assert webhooks.notice_for(events_pb2.TaskDispatching(task_id="t")) is None
    failed = webhooks.notice_for(events_pb2.TaskFailed(task_id="t", code="X", message="m"))
    assert failed is not None
    assert failed.data["error"] == {"code": "X", "message": "m"}
    assert [webhooks.next_delay((5, 30), n) for n in (1, 2, 3)] == [5.0, 30.0, None]
    assert webhooks.parse_schedule("1, 2.5") == (1.0, 2.5)
    with pytest.raises(ValueError):
        webhooks.parse_schedule("-1")
    assert sum(webhooks.DEFAULT_SCHEDULE) > 24 * 3600  # retried for hours
