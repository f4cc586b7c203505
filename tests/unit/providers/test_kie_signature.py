"""Kie's webhook signature: base64(HMAC-SHA256(key, taskId + "." + timestamp))."""

from __future__ import annotations

from aigen.providers.kie.signature import signature, verify

# Computed independently: printf 'task_abc.1700000000' | openssl dgst -sha256 -hmac secret -binary | base64
KNOWN = "NmzwCLn2r8H5fyqx1jHv4wYp87a986y5udELFbiN0qg="


def headers(sig: str, ts: str = "1700000000") -> dict[str, str]:
    return {"x-webhook-timestamp": ts, "x-webhook-signature": sig}


def test_known_vector() -> None:
    assert signature("secret", "task_abc", "1700000000") == KNOWN


def test_verify() -> None:
    assert verify("secret", "task_abc", headers(KNOWN)) is None
    assert verify("secret", "task_other", headers(KNOWN)) == "callback signature does not match"
    assert verify("wrong", "task_abc", headers(KNOWN)) is not None
    assert verify("secret", "task_abc", headers(KNOWN, ts="1700000001")) is not None
    assert verify("secret", "task_abc", {}) is not None
    assert verify("secret", "", headers(KNOWN)) is not None


def test_optional_freshness_window() -> None:
    assert verify("secret", "task_abc", headers(KNOWN), max_age_s=60, now=1700000030) is None
    assert (
        verify("secret", "task_abc", headers(KNOWN), max_age_s=60, now=1700000100)
        == "callback timestamp is too old"
    )
