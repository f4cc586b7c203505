"""What the CLI's client commands share: options, credentials, errors → exit codes, output."""

from __future__ import annotations

import asyncio
import base64
import json
import mimetypes
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from aigen.cli.client_config import ConfigProblem, Target, resolve
from aigen.client import (
    AigenError,
    AuthenticationFailed,
    BadRequest,
    BudgetExceeded,
    Conflict,
    ConnectionFailed,
    NotFound,
    PermissionDenied,
    RateLimited,
    Task,
)

T = TypeVar("T")

# Exit codes (see aigen.cli.main): 0 ok, 1 failed, 2 usage or configuration, 3 not found, 4 rejected.
OK, FAILED, USAGE, NOT_FOUND, REJECTED = 0, 1, 2, 3, 4

console = Console()
err = Console(stderr=True)

UrlOption = Annotated[
    str | None, typer.Option("--url", envvar="AIGEN_GATEWAY_URL", help="Gateway URL.", show_default=False)
]
KeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="AIGEN_API_KEY", help="API key (X-API-Key).", show_default=False),
]
AdminOption = Annotated[
    str | None,
    typer.Option("--admin-token", envvar="AIGEN_ADMIN_TOKEN", help="Admin token.", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]


def target(url: str | None, api_key: str | None, admin_token: str | None) -> Target:
    try:
        return resolve(url, api_key, admin_token)
    except ConfigProblem as exc:
        raise fail(str(exc), USAGE) from None


def fail(message: str, code: int = FAILED) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def exit_code_of(exc: AigenError) -> int:
    if isinstance(exc, NotFound):
        return NOT_FOUND
    if isinstance(exc, AuthenticationFailed):
        return USAGE  # the configured credentials are wrong
    if isinstance(exc, BadRequest | BudgetExceeded | RateLimited | PermissionDenied | Conflict):
        return REJECTED
    return FAILED


def execute(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's async work; answers from the gateway become messages and exit codes."""
    try:
        return asyncio.run(work)
    except ConfigProblem as exc:
        raise fail(str(exc), USAGE) from None
    except ConnectionFailed as exc:
        raise fail(
            f"{exc.message} (is the gateway running? set --url or AIGEN_GATEWAY_URL)", FAILED
        ) from None
    except AigenError as exc:
        message = str(exc)
        if exc.retry_after:
            message += f" (retry after {exc.retry_after:g}s)"
        raise fail(message, exit_code_of(exc)) from None


def print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


def parse_params(values: Sequence[str]) -> dict[str, Any]:
    """`--param k=v`: v as JSON when it reads as JSON (numbers, true/false, lists), else text."""
    found: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise fail(f"--param {item!r}: expected name=value", USAGE)
        try:
            found[name.strip()] = json.loads(raw)
        except ValueError:
            found[name.strip()] = raw
    return found


def image_reference(value: str) -> str:
    """`--image`: a URL as it is; a local file as a base64 data URL."""
    if value.startswith(("http://", "https://", "data:")):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise fail(f"--image {value!r}: not a URL and no such file", USAGE)
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def cost_text(task: Task) -> str:
    if task.cost is None:
        return ""
    if task.cost.charged_usd is not None:
        return f"${task.cost.charged_usd}"
    return f"${task.cost.quoted_usd} (quoted)"


STATUS_STYLE = {
    "SUCCESS": "green",
    "FAILED": "red",
    "CANCELLED": "yellow",
    "PROCESSING": "cyan",
    "PENDING": "dim",
}


def status_text(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def tasks_table(tasks: Sequence[Task]) -> Table:
    table = Table("task", "status", "model", "progress", "cost", "created")
    for task in tasks:
        table.add_row(
            task.id,
            status_text(task.status),
            task.model,
            f"{task.progress:.0%}",
            cost_text(task),
            task.created_at.strftime("%Y-%m-%d %H:%M:%S") if task.created_at else "",
        )
    return table


def task_details(task: Task) -> Table:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("task", task.id)
    table.add_row("status", status_text(task.status))
    table.add_row("model", f"{task.model} ({task.provider})")
    table.add_row("progress", f"{task.progress:.0%}")
    table.add_row("cost", cost_text(task))
    if task.prompt:
        table.add_row("prompt", task.prompt)
    if task.error is not None:
        table.add_row("error", f"{task.error.code}: {task.error.message}")
    for index, result in enumerate(task.results):
        table.add_row(f"result {index}", f"{result.type} {result.url}")
    return table
