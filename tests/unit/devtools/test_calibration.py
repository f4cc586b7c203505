"""The machine-speed line the benchmarks print before and after their figures."""

from __future__ import annotations

import pytest
from aigen.devtools import calibration


def test_reference_is_cpu_time_of_real_work() -> None:
    spent = calibration.reference_ms(repeats=1)
    assert 1 < spent < 60_000  # milliseconds of actual work, not a constant or seconds


def test_calibrated_prints_the_speed_before_and_after(capsys: pytest.CaptureFixture[str]) -> None:
    with calibration.calibrated():
        print("figures")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("machine speed: reference workload ")
    assert lines[1] == "figures"
    assert " before, " in lines[2] and " after the run" in lines[2]
    assert " before, " not in lines[0]
