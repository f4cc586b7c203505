"""`aigen providers list|set-key|health` and `aigen keys create|list|revoke` (admin token)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from aigen.cli.client_support import (
    USAGE,
    AdminOption,
    JsonOption,
    UrlOption,
    console,
    err,
    execute,
    fail,
    print_json,
    target,
)
from aigen.cli.main import app
from aigen.client.admin import AsyncAdminClient

providers_app = typer.Typer(help="Providers: keys (never shown back), health.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of the external API.", no_args_is_help=True)
app.add_typer(providers_app, name="providers", rich_help_panel="Administer")
app.add_typer(keys_app, name="keys", rich_help_panel="Administer")

_DURATION = re.compile(r"^(\d+)([dhm])$")


def _admin(url: str | None, admin_token: str | None) -> AsyncAdminClient:
    where = target(url, None, admin_token)
    try:
        token = where.require_admin()
    except ValueError as exc:
        raise fail(str(exc), USAGE) from None
    return AsyncAdminClient(where.url, token)


@providers_app.command("list")
def list_providers(
    url: UrlOption = None, admin_token: AdminOption = None, as_json: JsonOption = False
) -> None:
    """Providers, where their key comes from (masked), active or not."""

    async def go() -> list[dict[str, Any]]:
        async with _admin(url, admin_token) as admin:
            return await admin.list_providers()

    found = execute(go())
    if as_json:
        print_json(found)
        return
    table = Table("provider", "name", "endpoint", "key", "models", "active")
    for p in found:
        key = f"{p['apiKeyMasked']} ({p['apiKeySource']})" if p["hasApiKey"] else "none"
        table.add_row(
            p["slug"], p["name"], p["apiEndpoint"], key, str(p["modelCount"]), "yes" if p["active"] else "no"
        )
    console.print(table)


@providers_app.command("set-key")
def set_key(
    slug: Annotated[str, typer.Argument(help="The provider slug.")],
    key: Annotated[
        str | None, typer.Option("--key", help="The key; omitted: asked for (hidden), or read from stdin.")
    ] = None,
    url: UrlOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store a provider's API key (encrypted at rest; shown back only as its last four characters)."""
    if key is None:
        key = typer.prompt("API key", hide_input=True) if sys.stdin.isatty() else sys.stdin.readline().strip()

    async def go() -> dict[str, Any]:
        async with _admin(url, admin_token) as admin:
            return await admin.set_provider_key(slug, key or "")

    found = execute(go())
    if as_json:
        print_json(found)
    else:
        console.print(
            f"{slug}: key {'stored' if found['hasApiKey'] else 'cleared'} ({found['apiKeyMasked'] or 'none'})"
        )


@providers_app.command("health")
def health(
    slug: Annotated[str, typer.Argument(help="The provider slug.")],
    url: UrlOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the provider whether it answers with the configured key; exit 1 when it does not."""

    async def go() -> dict[str, Any]:
        async with _admin(url, admin_token) as admin:
            return await admin.provider_health(slug)

    found = execute(go())
    if as_json:
        print_json(found)
    else:
        verdict = "[green]healthy[/green]" if found["ok"] else "[red]unhealthy[/red]"
        balance = f", balance {found['balance']} {found.get('balanceUnit', '')}" if "balance" in found else ""
        console.print(f"{slug}: {verdict} in {found['latencyMs']} ms{balance} — {found['message']}")
    if not found["ok"]:
        raise typer.Exit(1)


def _expiry(value: str | None) -> str | None:
    """`--expires`: an ISO time, or a duration from now (30d, 12h, 90m)."""
    if value is None:
        return None
    match = _DURATION.match(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}[
            unit
        ]
        return (datetime.now(UTC) + delta).isoformat()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            "an ISO time or a duration like 30d, 12h, 90m", param_hint="--expires"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option("--name", help="What the key is for.")],
    owner: Annotated[
        str | None, typer.Option("--owner", help="Owner of its tasks (default: the key's id).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Allowed model (repeatable; default: all).")
    ] = None,
    rate: Annotated[int | None, typer.Option("--rate", min=1, help="Requests per minute.")] = None,
    burst: Annotated[
        int | None, typer.Option("--burst", min=1, help="Requests at once (default: the rate).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, help="Tasks running at once.")
    ] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="Budget in USD, e.g. 25.00.")] = None,
    period: Annotated[
        str, typer.Option("--period", help="Budget period: total, day, week or month.")
    ] = "total",
    expires: Annotated[
        str | None, typer.Option("--expires", help="ISO time, or 30d / 12h / 90m from now.")
    ] = None,
    url: UrlOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key. The key and its webhook secret are shown now and never again."""
    if period not in ("total", "day", "week", "month"):
        raise typer.BadParameter("use total, day, week or month", param_hint="--period")
    spec = {
        "name": name,
        "owner": owner,
        "allowed_models": model or None,
        "rate_per_minute": rate,
        "burst": burst,
        "max_concurrent": concurrency,
        "budget_usd": budget,
        "budget_period": period,
        "expires_at": _expiry(expires),
    }

    async def go() -> dict[str, Any]:
        async with _admin(url, admin_token) as admin:
            return await admin.create_key(**spec)

    created = execute(go())
    if as_json:
        print_json(created)
        return
    console.print(f"API key [bold]{created['prefix']}[/bold] ({created['name']}, owner {created['owner']}):")
    console.print(created["key"], highlight=False, soft_wrap=True)
    console.print(f"webhook secret: {created['webhookSecret']}", highlight=False, soft_wrap=True)
    err.print("[yellow]Store both now: they are not shown again.[/yellow]")


@keys_app.command("list")
def list_keys(
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's keys.")] = None,
    url: UrlOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """API keys (prefixes only), their limits and state."""

    async def go() -> list[dict[str, Any]]:
        async with _admin(url, admin_token) as admin:
            return await admin.list_keys(owner=owner)

    found = execute(go())
    if as_json:
        print_json(found)
        return
    table = Table("key", "name", "owner", "state", "budget", "rate/min", "tasks at once", "expires")
    for k in found:
        budget = f"${k['budgetUsd']} / {k['budgetPeriod']}" if k["budgetUsd"] is not None else ""
        table.add_row(
            k["prefix"], k["name"], k["owner"], k["state"], budget,
            str(k["ratePerMinute"] or ""), str(k["maxConcurrent"] or ""), k["expiresAt"] or "",
        )  # fmt: skip
    console.print(table)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (the part after aigen_).")],
    url: UrlOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key: it stops working at once."""
    key_id = key_id.removeprefix("aigen_").split("_", 1)[0]

    async def go() -> dict[str, Any]:
        async with _admin(url, admin_token) as admin:
            return await admin.revoke_key(key_id)

    found = execute(go())
    if as_json:
        print_json(found)
    else:
        console.print(f"{found['prefix']}: {found['state']}")
