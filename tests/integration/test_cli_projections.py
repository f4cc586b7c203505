"""`aigen projections status|rebuild|resume` against a real database, as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from aigen.eventstore.mapper import to_new_event
from aigen.eventstore.store import EventStore, NewEvent
from aigen.v1 import events_pb2

pytestmark = pytest.mark.slow


def aigen(pg_url: str, schema: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIGEN_DATABASE_URL": pg_url,
        "AIGEN_DB_SCHEMA": schema,
        "AIGEN_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "aigen.cli.main", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_status_rebuild_and_a_stalled_projection(pg_url, db):
    schema = db.schema
    first = aigen(pg_url, schema, "projections", "status", "--json")
    assert first.returncode == 0, first.stderr
    names = {row["name"] for row in json.loads(first.stdout)}
    assert {"tasks", "model-usage"} <= names
    store = EventStore(db)
    created = events_pb2.TaskCreated(task_id="t1", prompt="a kite")
    created.model.model_slug = "kie-nano-banana"
    created.model.provider_slug = "kie"
    await store.append("task-t1", 0, [to_new_event(created)])
    rebuilt = aigen(pg_url, schema, "projections", "rebuild", "tasks")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt tasks: 1 events applied" in rebuilt.stdout
    async with db.connection() as conn:
        row = await (
            await conn.execute("SELECT prompt, status FROM task_views WHERE task_id = 't1'")
        ).fetchone()
    assert row == ("a kite", "PENDING")
    await store.append("task-t2", 0, [NewEvent(type="aigen.v1.TaskTeleported", payload=b"\x01")])
    await store.append("task-t3", 0, [to_new_event(events_pb2.TaskDeleted(task_id="t3"))])
    stalled = aigen(pg_url, schema, "projections", "rebuild", "model-usage")
    # The usage projection reads only the types it needs, so the unknown event does not stop it.
    assert stalled.returncode == 0, stalled.stderr
    status = aigen(pg_url, schema, "projections", "status", "--json")
    rows = {row["name"]: row for row in json.loads(status.stdout)}
    assert rows["model-usage"]["lag"] == 0 and rows["model-usage"]["state"] == "running"
    unknown = aigen(pg_url, schema, "projections", "rebuild", "no-such")
    assert unknown.returncode == 3 and "unknown projection" in unknown.stderr


async def test_wrong_database_is_reported_clearly(tmp_path):
    result = aigen(
        "postgresql://nobody@127.0.0.1:1/none", f"x_{uuid.uuid4().hex[:6]}", "projections", "status"
    )
    assert result.returncode == 2
    assert "cannot reach the database" in result.stderr and "Traceback" not in result.stderr
