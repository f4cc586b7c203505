"""Settings read from the environment: values, and errors that name the variable."""

from __future__ import annotations

import pytest
from aigen.config import ConfigError, Settings


def test_the_relay_standby_is_seconds_and_a_bad_value_names_the_variable():
    assert Settings.from_env({}).relay_standby_s == 0.0
    assert Settings.from_env({"AIGEN_RELAY_STANDBY_S": "2.5"}).relay_standby_s == 2.5
    for bad in ("soon", "-1", "99999"):
        with pytest.raises(ConfigError, match="AIGEN_RELAY_STANDBY_S"):
            Settings.from_env({"AIGEN_RELAY_STANDBY_S": bad})
