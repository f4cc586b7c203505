"""`aigen providers status`, `aigen errors list|counts` and `aigen alerts list|show|rules`
(admin token): what the ops service knows, through the gateway's admin API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from aigen.cli.client_admin import _admin, providers_app
from aigen.cli.client_support import AdminOption, JsonOption, UrlOption, console, execute, print_json
from aigen.cli.main import app

errors_app = typer.Typer(help="The error log: adapter errors and task failures.", no_args_is_help=True)
alerts_app = typer.Typer(help="System alerts and their rules.", no_args_is_help=True)
app.add_typer(errors_app, name="errors", rich_help_panel="Administer")
app.add_typer(alerts_app, name="alerts", rich_help_panel="Administer")

_AGO = re.compile(r"^(\d+)([dhm])$")

SinceOption = Annotated[
    str | None, typer.Option("--since", help="An ISO time, or how long ago: 30m, 12h, 7d.")
]


def since_of(value: str | None) -> str | None:
    """`--since`: an ISO time, or a duration back from now."""
    if value is None:
        return None
    match = _AGO.match(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}
        return (datetime.now(UTC) - delta[unit]).isoformat()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            "an ISO time or a duration like 30m, 12h, 7d", param_hint="--since"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def _when(iso: str | None) -> str:
    return iso.replace("T", " ")[:19] if iso else ""


@providers_app.command("status")
def status(url: UrlOption = None, admin_token: AdminOption = None, as_json: JsonOption = False) -> None:
    """Each provider's last health check (latency, balance) and whether it is cooled down."""

    async def go() -> list[dict[str, Any]]:
        async with _admin(url, admin_token) as admin:
            return await admin.providers_health()

    found = execute(go())
    if as_json:
        print_json(found)
        return
    table = Table("provider", "health", "checked", "latency", "balance", "breaker", "message")
    for p in found:
        health = (
            "never checked"
            if not p["checkedAt"]
            else ("ok" if p["ok"] else f"failing ({p['consecutiveFailures']} in a row)")
        )
        balance = f"{p['balance']:g} {p.get('balanceUnit', '')}" if "balance" in p else ""
        breaker = f"[red]open[/red] since {_when(p['breakerSince'])}" if p["breaker"] == "open" else "closed"
        table.add_row(
            p["provider"],
            health,
            _when(p["checkedAt"]),
            f"{p['latencyMs']} ms",
            balance,
            breaker,
            p["message"],
        )
    console.print(table)


@errors_app.command("list")
def list_errors(
    provider: Annotated[str | None, typer.Option("--provider", help="Provider slug.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model slug.")] = None,
    code: Annotated[str | None, typer.Option("--code", help="Error code, e.g. RATE_LIMITED.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Task id.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="adapter or task_failure.")] = None,
    since: SinceOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="How many, newest first.")] = 50,
    url: UrlOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """Adapter errors and task failures, newest first, with the provider's response excerpt."""
    filters = {
        "provider": provider,
        "model": model,
        "code": code,
        "task_id": task,
        "kind": kind,
        "since": since_of(since),
        "page_size": limit,
    }

    async def go() -> dict[str, Any]:
        async with _admin(url, admin_token) as admin:
            return await admin.errors(**filters)

    found = execute(go())
    if as_json:
        print_json(found)
        return
    table = Table("at", "provider", "model", "task", "stage", "code", "message")
    for e in found["errors"]:
        message = e["message"] + (f"\n{e['responseSnippet']}" if e.get("responseSnippet") else "")
        table.add_row(
            _when(e["at"]), e["provider"], e["model"] or "", e["taskId"] or "", e["stage"], e["code"], message
        )
    console.print(table)


@errors_app.command("counts")
def error_counts(
    provider: Annotated[str | None, typer.Option("--provider", help="Provider slug.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model slug.")] = None,
    since: SinceOption = None,
    url: UrlOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """How many errors of each code each provider had (default: the last 24 hours)."""
    filters = {"provider": provider, "model": model, "since": since_of(since)}

    async def go() -> list[dict[str, Any]]:
        async with _admin(url, admin_token) as admin:
            return await admin.error_counts(**filters)

    found = execute(go())
    if as_json:
        print_json(found)
        return
    table = Table("provider", "code", "count", "last")
    for c in found:
        table.add_row(c["provider"], c["code"], str(c["count"]), _when(c["lastAt"]))
    console.print(table)


@alerts_app.command("list")
def list_alerts(
    open_only: Annotated[bool, typer.Option("--open", help="Only alerts not resolved yet.")] = False,
    rule: Annotated[str | None, typer.Option("--rule", help="One rule, e.g. provider_down.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="How many, newest first.")] = 50,
    url: UrlOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """Alerts, newest first."""

    async def go() -> dict[str, Any]:
        async with _admin(url, admin_token) as admin:
            return await admin.alerts(status="open" if open_only else None, rule=rule, page_size=limit)

    found = execute(go())
    if as_json:
        print_json(found)
        return
    table = Table("raised", "status", "severity", "rule", "subject", "summary", "id")
    for a in found["alerts"]:
        state = "[red]open[/red]" if a["status"] == "open" else f"resolved {_when(a['resolvedAt'])}"
        table.add_row(
            _when(a["raisedAt"]), state, a["severity"], a["rule"], a["subject"], a["summary"], a["id"]
        )
    console.print(table)


@alerts_app.command("show")
def show_alert(
    alert_id: Annotated[str, typer.Argument(help="The alert's id, as `aigen alerts list` shows it.")],
    url: UrlOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """One alert with its details."""

    async def go() -> dict[str, Any]:
        async with _admin(url, admin_token) as admin:
            return await admin.alert(alert_id)

    found = execute(go())
    if as_json:
        print_json(found)
        return
    table = Table(show_header=False)
    for label, value in (
        ("rule", found["rule"]),
        ("subject", found["subject"]),
        ("severity", found["severity"]),
        ("status", found["status"]),
        ("summary", found["summary"]),
        ("value", f"{found['value']:g} (threshold {found['threshold']:g})"),
        ("raised", _when(found["raisedAt"])),
        ("resolved", f"{_when(found['resolvedAt'])} {found['resolution'] or ''}".strip()),
        *((k, v) for k, v in sorted(found["details"].items())),
    ):
        table.add_row(label, str(value))
    console.print(table)


@alerts_app.command("rules")
def alert_rules(url: UrlOption = None, admin_token: AdminOption = None, as_json: JsonOption = False) -> None:
    """The alert rules, whether each is on, and its threshold as configured."""

    async def go() -> list[dict[str, Any]]:
        async with _admin(url, admin_token) as admin:
            return await admin.alert_rules()

    found = execute(go())
    if as_json:
        print_json(found)
        return
    table = Table("rule", "on", "threshold", "what")
    for r in found:
        table.add_row(r["name"], "yes" if r["enabled"] else "no", r["threshold"], r["description"])
    console.print(table)
