"""The services' event loop: uvloop by default, the standard loop on request, a clear error for
anything else."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
import uvloop
from aigen import eventloop
from aigen.config import ConfigError, Settings


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_uvloop_is_the_default_where_installed():
    assert eventloop.resolve(None) == "uvloop"
    assert eventloop.resolve("") == "uvloop"
    assert Settings.from_env({}).event_loop == "uvloop"
    assert Settings().event_loop == "uvloop"


def test_the_setting_selects_the_loop_a_service_runs_on():
    assert eventloop.run(_loop_type(), eventloop.resolve("uvloop")) is uvloop.Loop
    standard = eventloop.run(_loop_type(), eventloop.resolve(" AsyncIO "))
    assert standard is not uvloop.Loop and issubclass(standard, asyncio.BaseEventLoop)
    assert Settings.from_env({"AIGEN_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"


def test_an_unknown_loop_is_refused_naming_the_variable_and_the_choices():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"AIGEN_EVENT_LOOP": "tokio"})
    assert "AIGEN_EVENT_LOOP" in str(info.value) and "'tokio'" in str(info.value)
    assert "uvloop, asyncio" in str(info.value)


def test_a_service_given_an_unknown_loop_exits_2_with_one_clear_line():
    env = {**os.environ, "AIGEN_EVENT_LOOP": "tokio", "AIGEN_LOG_FORMAT": "text"}
    done = subprocess.run(
        [sys.executable, "-m", "services.catalog"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "AIGEN_EVENT_LOOP" in done.stderr and "Traceback" not in done.stderr
