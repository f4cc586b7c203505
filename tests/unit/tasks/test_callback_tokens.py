"""Callback tokens: a task's own token routes to it; anything else is refused, never an error."""

from __future__ import annotations

import pytest
from aigen.tasks.callbacks import callback_url, task_of, token_for

SECRET = "a-secret-for-tokens"


def test_a_token_names_its_task_under_the_same_secret_only():
    token = token_for(SECRET, "01J0TASK")
    assert task_of(SECRET, token) == "01J0TASK"
    assert task_of("another-secret", token) is None
    assert (
        callback_url("https://gw.example/", "kie", SECRET, "01J0TASK")
        == f"https://gw.example/callbacks/kie/{token}"
    )


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dot",
        ".onlysig",
        "01J0TASK.",
        "01J0TASK.0000000000000000000000000000000",
        "01J0TASK.ü✓ünicode",
        "01J0OTHER." + token_for(SECRET, "01J0TASK").rpartition(".")[2],
    ],
)
def test_anything_but_a_genuine_token_is_refused_without_raising(token):
    assert task_of(SECRET, token) is None
