"""The Kie fake never gives two tasks one id, as Kie never does."""

from __future__ import annotations

import pytest
from aigen.simulator.kie import KieFake


def test_a_taken_id_is_made_again_and_never_reused():
    fake = KieFake()
    first = fake._start_task("market", {}, ext="png", count=1, credits=0, task_id="task_google_1")
    assert first.id == "task_google_1"
    made = iter(["task_google_1", "task_google_1", "task_google_2"])
    assert fake._unused_id(lambda: next(made)) == "task_google_2"
    with pytest.raises(RuntimeError, match="already taken"):
        fake._start_task("market", {}, ext="png", count=1, credits=0, task_id="task_google_1")
    assert fake.tasks["task_google_1"] is first


def test_market_ids_made_in_one_millisecond_stay_unique(monkeypatch):
    import aigen.simulator.kie as kie

    monkeypatch.setattr(kie.time, "time", lambda: 1_795_966_043.204)
    fake = KieFake()
    for _ in range(300):  # 1,000 possible ids in that millisecond: without the check, they meet
        task_id = fake._unused_id(
            lambda: f"task_google_{int(kie.time.time() * 1000)}{kie.secrets.randbelow(1000):03d}"
        )
        fake._start_task("market", {}, ext="png", count=1, credits=0, task_id=task_id)
    assert len(fake.tasks) == 300
