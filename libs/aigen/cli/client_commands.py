"""`aigen generate` and `aigen ledger`; imports the other client command groups (tasks, models,
providers, keys, errors, alerts) so that `aigen.cli.main` registers them all by importing this module."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from aigen.cli import client_admin, client_ops, client_tasks
from aigen.cli.client_support import (
    FAILED,
    AdminOption,
    JsonOption,
    KeyOption,
    UrlOption,
    console,
    cost_text,
    err,
    execute,
    image_reference,
    parse_params,
    print_json,
    target,
    task_details,
)
from aigen.cli.main import app
from aigen.client import AsyncAigenClient, ConnectionFailed, Task
from aigen.client.admin import AsyncAdminClient

__all__ = ["client_admin", "client_ops", "client_tasks"]


@dataclasses.dataclass
class Outcome:
    task: Task
    files: list[Path]


async def follow(client: AsyncAigenClient, task: Task, *, show_bar: bool, give_up_after_s: float) -> Task:
    """Until the task ends: server-sent progress with a bar, or long polls when the stream breaks."""
    if task.terminal:
        return task
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not show_bar) as progress:
        bar = progress.add_task(f"{task.model} {task.status}", total=100)
        with contextlib.suppress(ConnectionFailed):
            async for state in client.watch(task):
                progress.update(
                    bar, completed=state.progress * 100, description=f"{state.model} {state.status}"
                )
                task = state
                if state.terminal:
                    return state
    return await client.wait_for(task, timeout=give_up_after_s)


@app.command(rich_help_panel="Use")
def generate(
    model: Annotated[str, typer.Option("--model", "-m", help="Model slug (see `aigen models list`).")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="What to make.")] = "",
    image: Annotated[
        list[str] | None,
        typer.Option("--image", "-i", help="Input image: a URL or a local file (repeatable)."),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="Model parameter name=value (repeatable).")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", min=1, help="Number of outputs.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result, with a progress bar.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Download the results into this folder (implies --wait).")
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="URL to POST progress and the outcome to.")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Submitting again with it returns the same task.")
    ] = None,
    cancel_after: Annotated[
        int | None, typer.Option("--cancel-after", min=1, help="Cancel if not done after this many seconds.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this many seconds.")] = 900.0,
    url: UrlOption = None,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Submit a generation; with --wait or --out, follow it to the end and fetch the results."""
    where = target(url, api_key, None)
    parameters = parse_params(param or [])
    images = [image_reference(i) for i in image or []]

    async def go() -> Outcome:
        async with AsyncAigenClient(where.url, where.require_key()) as client:
            task = await client.generate(
                model,
                prompt,
                input_images=images,
                number_of_outputs=n,
                parameters=parameters,
                webhook_url=webhook,
                idempotency_key=idempotency_key or f"cli-{uuid.uuid4().hex}",
                cancel_after=cancel_after,
            )
            if not (wait or out):
                return Outcome(task, [])
            if not as_json:
                err.print(f"task [bold]{task.id}[/bold] submitted ({model}, quoted {cost_text(task)})")
            task = await follow(
                client, task, show_bar=console.is_terminal and not as_json, give_up_after_s=timeout
            )
            files = await client.download_all(task, out) if out is not None and task.succeeded else []
            return Outcome(task, files)

    outcome = execute(go())
    task = outcome.task
    if as_json:
        print_json({**task.raw, "files": [str(f) for f in outcome.files]})
    else:
        console.print(task_details(task))
        for path in outcome.files:
            console.print(f"saved [bold]{path}[/bold]")
    if task.terminal and not task.succeeded:
        raise typer.Exit(FAILED)


@app.command(rich_help_panel="Use")
def ledger(
    by: Annotated[
        str, typer.Option("--by", help="Group totals by key, model, shot, day or owner.")
    ] = "model",
    key: Annotated[str | None, typer.Option("--key", help="Only this API key (id).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    shot: Annotated[str | None, typer.Option("--shot", help="Only this Studio shot.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="First UTC day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last UTC day, YYYY-MM-DD.")] = None,
    tasks: Annotated[bool, typer.Option("--tasks", help="One row per task instead of totals.")] = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """What tasks cost: held, charged (at the provider's reported cost where known), released.

    With the admin token: every account. With only an API key: that key's own usage and budget."""
    where = target(url, api_key, admin_token)
    if by not in ("key", "model", "shot", "day", "owner"):
        raise typer.BadParameter("use key, model, shot, day or owner", param_hint="--by")
    filters = {"key_id": key, "model": model, "shot_id": shot, "since": since, "until": until}

    async def go() -> dict[str, Any]:
        if where.admin_token:
            async with AsyncAdminClient(where.url, where.admin_token) as admin:
                if tasks:
                    return {"tasks": await admin.ledger_tasks(limit=200, **filters)}
                return await admin.ledger(group_by=by, **filters)
        async with AsyncAigenClient(where.url, where.require_key()) as client:
            usage = await client.usage(group_by=by if by in ("model", "day", "shot") else "model")
            return {"groupBy": by, "usage": dataclasses.asdict(usage), "totals": list(usage.totals)}

    found = execute(go())
    if as_json:
        print_json(found)
        return
    if tasks:
        table = Table("task", "key", "model", "state", "quoted", "charged", "basis")
        for row in found["tasks"]:
            basis = row["basis"] + (" (late)" if row["late"] else "")
            table.add_row(
                row["taskId"], row["keyId"], row["model"], row["state"],
                f"${row['quotedUsd']}", f"${row['chargedUsd']}", basis,
            )  # fmt: skip
        console.print(table)
        return
    table = Table(by, "tasks", "charged", "held now", "released", "late charges")
    for row in found["totals"]:
        table.add_row(
            row["group"] or "(none)", str(row["tasks"]), f"${row['chargedUsd']}", f"${row['heldUsd']}",
            f"${row['releasedUsd']}", f"${row['lateChargedUsd']}",
        )  # fmt: skip
    console.print(table)
    if "summary" in found:
        summary = found["summary"]
        console.print(
            f"total: {summary['tasks']} task(s), charged ${summary['chargedUsd']}, held ${summary['heldUsd']}"
        )
    if "usage" in found:
        usage = found["usage"]
        budget = (
            f" of ${usage['budget_usd']} per {usage['budget_period']}"
            if usage["budget_usd"] is not None
            else ""
        )
        console.print(
            f"this period: charged ${usage['period_charged_usd']}, held ${usage['open_usd']}{budget}"
        )
