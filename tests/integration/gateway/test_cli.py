"""The `aigen` client commands against the running gateway: tables, --json, downloads, exit codes.

Each command runs in a worker thread (it starts its own event loop), while the gateway keeps
serving on the test's loop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aigen.cli.main import app
from aigen.simulator.base import Script
from typer.testing import CliRunner

from tests.integration.gateway.conftest import ADMIN_TOKEN

runner = CliRunner()


async def aigen(gw, tmp_path: Path, *args: str, key: str | None = None, admin: bool = False):
    env = {
        "AIGEN_GATEWAY_URL": gw.url,
        "AIGEN_CONFIG": str(tmp_path / "no-config.toml"),
        "AIGEN_HOME": str(tmp_path / "no-home"),
        "AIGEN_API_KEY": key or "",
        "AIGEN_ADMIN_TOKEN": ADMIN_TOKEN if admin else "",
        "COLUMNS": "200",
    }
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


async def test_keys_generate_with_download_tasks_models_and_ledger(gw, tmp_path):
    made = await aigen(gw, tmp_path, "keys", "create", "--name", "cli", "--budget", "5", "--json", admin=True)
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    key = created["key"]

    out = tmp_path / "out"
    generated = await aigen(
        gw, tmp_path, "generate", "--model", "local-image", "--prompt", "a bay at noon",
        "--param", "width=320", "--param", "height=240", "--out", str(out), "--json", key=key,
    )  # fmt: skip
    assert generated.exit_code == 0, generated.output
    task = json.loads(generated.output)
    assert task["status"] == "SUCCESS"
    files = [Path(f) for f in task["files"]]
    assert [f.parent for f in files] == [out]
    assert files[0].read_bytes().startswith(b"\x89PNG")

    listed = await aigen(gw, tmp_path, "tasks", "list", "--json", key=key)
    assert [t["taskId"] for t in json.loads(listed.output)] == [task["taskId"]]
    shown = await aigen(gw, tmp_path, "tasks", "show", task["taskId"], key=key)
    assert shown.exit_code == 0
    assert "SUCCESS" in shown.output
    assert (await aigen(gw, tmp_path, "tasks", "show", "no-such-task", key=key)).exit_code == 3
    assert (await aigen(gw, tmp_path, "tasks", "cancel", task["taskId"], key=key)).exit_code == 4

    models = await aigen(gw, tmp_path, "models", "list", "--type", "image", key=key)
    assert models.exit_code == 0
    assert "local-image" in models.output
    fields = await aigen(gw, tmp_path, "models", "show", "kie-4o-image", key=key)
    assert fields.exit_code == 0
    assert "size" in fields.output
    assert "Credits" in fields.output

    gw.pipeline.fakes["kie"].script = Script(polls_to_finish=1)
    paid = await aigen(
        gw, tmp_path, "generate", "-m", "kie-4o-image", "-p", "a gull", "--wait", "--json", key=key
    )
    assert json.loads(paid.output)["status"] == "SUCCESS"
    await gw.eventually(
        lambda: gw.admin("GET", "/admin/ledger/tasks"),
        lambda r: [t["state"] for t in r.json()["tasks"]] == ["settled", "settled"],
    )
    ledger = await aigen(gw, tmp_path, "ledger", "--by", "model", admin=True)
    assert ledger.exit_code == 0, ledger.output
    assert "kie-4o-image" in ledger.output
    assert "$0.03" in ledger.output
    mine = await aigen(gw, tmp_path, "ledger", "--json", key=key)
    assert json.loads(mine.output)["usage"]["period_charged_usd"] == "0.03"


async def test_exit_codes_for_configuration_rejection_and_failure(gw, tmp_path):
    no_key = await aigen(gw, tmp_path, "generate", "--model", "local-image")
    assert no_key.exit_code == 2
    assert "no API key" in no_key.output
    created = json.loads(
        (await aigen(gw, tmp_path, "keys", "create", "--name", "x", "--json", admin=True)).output
    )
    key = created["key"]
    invalid = await aigen(gw, tmp_path, "generate", "-m", "kie-4o-image", "--param", "size=7:3", key=key)
    assert invalid.exit_code == 4
    assert "parameters.size" in invalid.output
    assert (
        await aigen(gw, tmp_path, "generate", "-m", "kie-4o-image", "--param", "oops", key=key)
    ).exit_code == 2
    gw.pipeline.fakes["kie"].script = Script(polls_to_finish=1, outcome="fail", fail_message="no luck")
    failed = await aigen(gw, tmp_path, "generate", "-m", "kie-nano-banana", "-p", "x", "--wait", key=key)
    assert failed.exit_code == 1
    assert "no luck" in failed.output
    revoked = await aigen(gw, tmp_path, "keys", "revoke", created["prefix"], admin=True)
    assert revoked.exit_code == 0
    assert "revoked" in revoked.output
    assert (await aigen(gw, tmp_path, "tasks", "list", key=key)).exit_code == 2
    listing = await aigen(gw, tmp_path, "keys", "list", admin=True)
    assert created["prefix"] in listing.output
    assert key not in listing.output


async def test_providers_list_set_key_and_health(gw, tmp_path):
    listed = await aigen(gw, tmp_path, "providers", "list", admin=True)
    assert listed.exit_code == 0
    assert "kie" in listed.output
    assert "sim-kie-key-0001" not in listed.output
    stored = await aigen(gw, tmp_path, "providers", "set-key", "kie", "--key", "sim-kie-key-0001", admin=True)
    assert stored.exit_code == 0
    assert "stored" in stored.output
    assert "sim-kie-key-0001" not in stored.output
    healthy = await aigen(gw, tmp_path, "providers", "health", "kie", admin=True)
    assert healthy.exit_code == 0, healthy.output
    assert "healthy" in healthy.output
    assert (await aigen(gw, tmp_path, "providers", "health", "nope", admin=True)).exit_code == 3
    assert (await aigen(gw, tmp_path, "providers", "list")).exit_code == 2
