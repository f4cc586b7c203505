"""Metric label values stay bounded: our codes pass, free text does not."""

from __future__ import annotations

from aigen import metrics


def test_our_codes_pass_and_anything_else_is_other():
    assert metrics.code_label("RATE_LIMITED") == "RATE_LIMITED"
    assert metrics.code_label("DISPATCH_OUTCOME_UNKNOWN") == "DISPATCH_OUTCOME_UNKNOWN"
    assert metrics.code_label("") == ""
    assert metrics.code_label("Kie.ai said: no credits for key sk-123") == "OTHER"
    assert metrics.code_label("X" * 80) == "OTHER"


def test_status_classes():
    assert [metrics.status_class(s) for s in (200, 404, 503, None)] == ["2xx", "4xx", "5xx", "transport"]
