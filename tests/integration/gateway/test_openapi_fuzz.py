"""schemathesis against the gateway's own /openapi.json, every operation: no 5xx, and every answer
(status, content type, headers, body) as the document declares it."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.integration.gateway.conftest import ADMIN_TOKEN, gateway_running

EXAMPLES = int(os.environ.get("AIGEN_FUZZ_EXAMPLES", "12"))
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


def auth_for(path: str, api_key: str) -> dict[str, str]:
    if path.startswith("/admin"):
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if path.startswith("/api/external"):
        return {"X-API-Key": api_key}
    return {}


def run_operation(operation: Any, base_url: str, auth: dict[str, str], checks: list[Any]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(GenerationMode.POSITIVE))
    def check(case: Any) -> None:
        # The real credentials replace whatever the generator made up, so cases get past auth.
        if case.headers:
            for name in ("X-API-Key", "Authorization"):
                case.headers.pop(name, None)
        response = case.call(base_url=base_url, headers=auth, timeout=60)
        case.validate_response(response, checks=checks, headers=auth)

    check()


def fuzz(schema: Any, base_url: str, api_key: str) -> list[str]:
    """Runs in a thread: schemathesis calls are blocking, the gateway serves on the test's loop."""
    load_all_checks()
    checks = CHECKS.get_by_names(list(CHECK_NAMES))
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            run_operation(operation, base_url, auth_for(operation.path, api_key), checks)
        except Exception as exc:
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    assert operations > 30, f"only {operations} operations in the document"
    return failures


@pytest.mark.slow
async def test_every_operation_conforms_and_never_fails_with_5xx(pg_url, nats_url, monkeypatch, tmp_path):
    async with gateway_running(
        pg_url, nats_url, monkeypatch, tmp_path, studio=True, settings={"max_wait_s": 1.0}
    ) as gw:
        key = (await gw.create_key(name="fuzz"))["key"]
        document = (await gw.http.get("/openapi.json")).json()
        assert document["openapi"].startswith("3.1")
        schema = schemathesis.openapi.from_dict(document)
        failures = await asyncio.to_thread(fuzz, schema, gw.url, key)
    assert not failures, "\n\n".join(failures)
