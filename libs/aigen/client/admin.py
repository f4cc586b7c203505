"""The admin API (admin token), for operators' tools and the `aigen` CLI: keys, providers,
models, every task, the ledger. Answers are the gateway's JSON documents; tasks are typed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from aigen.client import _calls as calls
from aigen.client.errors import ConnectionFailed
from aigen.client.models import Task, TaskPage

Json = dict[str, Any]


class AsyncAdminClient:
    def __init__(
        self, base_url: str | None = None, token: str | None = None, *, timeout: float = 60.0
    ) -> None:
        self.base_url = calls.default_url(base_url)
        self._headers = {"User-Agent": "aigen-client/1"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> AsyncAdminClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._http.request(
                method, self.base_url + path, params=clean or None, json=json, headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"cannot reach the gateway at {self.base_url}: {exc}") from exc
        return calls.parse(response)

    # --- keys -------------------------------------------------------------------------------------

    async def create_key(self, **spec: Any) -> Json:
        """The new key's document, with `key` and `webhookSecret` (shown only now)."""
        body = {k: v for k, v in spec.items() if v is not None}
        result: Json = await self._send("POST", "/admin/keys", json=body)
        return result

    async def list_keys(self, *, owner: str | None = None) -> list[Json]:
        body = await self._send("GET", "/admin/keys", params={"owner": owner})
        return list(body.get("keys", []))

    async def get_key(self, key_id: str) -> Json:
        result: Json = await self._send("GET", f"/admin/keys/{key_id}")
        return result

    async def revoke_key(self, key_id: str) -> Json:
        result: Json = await self._send("DELETE", f"/admin/keys/{key_id}")
        return result

    # --- providers and models -------------------------------------------------------------------

    async def list_providers(self) -> list[Json]:
        return list((await self._send("GET", "/admin/providers")).get("providers", []))

    async def set_provider_key(self, slug: str, api_key: str) -> Json:
        result: Json = await self._send("PUT", f"/admin/providers/{slug}/api-key", json={"api_key": api_key})
        return result

    async def provider_health(self, slug: str) -> Json:
        result: Json = await self._send("POST", f"/admin/providers/{slug}/health")
        return result

    async def list_models(self, *, provider: str | None = None, output_type: str | None = None) -> list[Json]:
        body = await self._send(
            "GET", "/admin/models", params={"provider": provider, "output_type": output_type}
        )
        return list(body.get("models", []))

    async def get_model(self, slug: str) -> Json:
        result: Json = await self._send("GET", f"/admin/models/{slug}")
        return result

    # --- tasks ------------------------------------------------------------------------------------

    async def list_tasks(
        self,
        *,
        status: Sequence[str] | None = None,
        model: str | None = None,
        owner: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> TaskPage:
        params = {
            "status": list(status) if status else None,
            "model": model,
            "owner": owner,
            "page_size": page_size,
            "page_token": page_token,
        }
        return TaskPage.from_json(await self._send("GET", "/admin/tasks", params=params))

    async def get_task(self, task_id: str) -> Task:
        return Task.from_json(await self._send("GET", f"/admin/tasks/{task_id}"))

    async def cancel_task(self, task_id: str, reason: str = "cancelled by an administrator") -> Task:
        return Task.from_json(
            await self._send("POST", f"/admin/tasks/{task_id}/cancel", json={"reason": reason})
        )

    async def delete_task(self, task_id: str) -> Task:
        return Task.from_json(await self._send("DELETE", f"/admin/tasks/{task_id}"))

    # --- ledger -----------------------------------------------------------------------------------

    async def ledger(self, *, group_by: str = "key", **filters: str | None) -> Json:
        result: Json = await self._send("GET", "/admin/ledger", params={"group_by": group_by, **filters})
        return result

    async def ledger_tasks(self, *, limit: int = 100, **filters: str | None) -> list[Json]:
        body = await self._send("GET", "/admin/ledger/tasks", params={"limit": limit, **filters})
        return list(body.get("tasks", []))

    # --- operations -------------------------------------------------------------------------------

    async def providers_health(self) -> list[Json]:
        """Each provider's last health check and breaker state."""
        return list((await self._send("GET", "/admin/provider-health")).get("providers", []))

    async def errors(self, **filters: Any) -> Json:
        """The error log, newest first: `errors` and, when there is more, `nextPageToken`.
        Filters: provider, model, code, task_id, kind ("adapter" | "task_failure"), since, until,
        page_size, page_token."""
        result: Json = await self._send("GET", "/admin/errors", params=filters)
        return result

    async def error_counts(self, **filters: Any) -> list[Json]:
        """Errors per code per provider; filters: provider, model, kind, since, until."""
        return list((await self._send("GET", "/admin/errors/counts", params=filters)).get("counts", []))

    async def alerts(self, **filters: Any) -> Json:
        """Alerts, newest first; filters: status ("open" | "resolved"), rule, subject, page_size,
        page_token."""
        result: Json = await self._send("GET", "/admin/alerts", params=filters)
        return result

    async def alert(self, alert_id: str) -> Json:
        result: Json = await self._send("GET", f"/admin/alerts/{quote(alert_id, safe='')}")
        return result

    async def alert_rules(self) -> list[Json]:
        return list((await self._send("GET", "/admin/alert-rules")).get("rules", []))
