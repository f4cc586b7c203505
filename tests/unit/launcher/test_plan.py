"""What `aigen run` plans to start, and the environment its processes share."""

from __future__ import annotations

from pathlib import Path

from aigen.launcher.run import RunOptions, plan


def test_a_plain_run_starts_every_service_and_asks_providers_for_no_loopback_callbacks(tmp_path: Path):
    env: dict[str, str] = {}
    names = [child.name for child in plan(RunOptions(home=tmp_path, gateway_port=18080), env)]
    assert {"catalog", "dispatcher", "poller", "storage", "studio", "ops", "gateway", "local"} <= set(names)
    assert env["AIGEN_GATEWAY_URL"] == "http://127.0.0.1:18080"
    assert "AIGEN_CALLBACK_BASE_URL" not in env


def test_a_simulated_run_points_providers_at_their_fakes_and_their_callbacks_at_the_gateway(tmp_path: Path):
    env: dict[str, str] = {}
    names = [child.name for child in plan(RunOptions(home=tmp_path, gateway_port=18080, simulate=True), env)]
    assert "simulator" in names
    assert env["AIGEN_PROVIDER_KIE_ENDPOINT"].startswith(env["AIGEN_SIMULATOR_URL"])
    assert env["AIGEN_CALLBACK_BASE_URL"] == env["AIGEN_GATEWAY_URL"]


def test_a_callback_address_set_by_the_operator_is_kept(tmp_path: Path):
    env = {"AIGEN_CALLBACK_BASE_URL": "https://aigen.example.com"}
    plan(RunOptions(home=tmp_path, simulate=True), env)
    assert env["AIGEN_CALLBACK_BASE_URL"] == "https://aigen.example.com"


def test_the_hot_path_processes_stand_by_for_the_relay_unless_the_operator_says_otherwise(tmp_path: Path):
    standby = {
        child.name: child.env.get("AIGEN_RELAY_STANDBY_S")
        for child in plan(RunOptions(home=tmp_path, gateway_port=18080), {})
    }
    assert {name for name, value in standby.items() if value} == {"dispatcher", "poller", "gateway"}
    assert standby["dispatcher"] == "5" and standby["catalog"] is None
    chosen = plan(RunOptions(home=tmp_path, gateway_port=18080), {"AIGEN_RELAY_STANDBY_S": "0"})
    assert {child.env.get("AIGEN_RELAY_STANDBY_S") for child in chosen} == {None, "0"}
