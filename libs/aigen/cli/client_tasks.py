"""`aigen tasks list|show|cancel|delete` and `aigen models list|show`.

With an API key these speak the external API (the key owner's tasks, the key's models); with
only the admin token, the admin API (every task, every model)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from aigen.cli.client_config import Target
from aigen.cli.client_support import (
    AdminOption,
    JsonOption,
    KeyOption,
    UrlOption,
    console,
    execute,
    print_json,
    target,
    task_details,
    tasks_table,
)
from aigen.cli.main import app
from aigen.client import AsyncAigenClient, Model, Task, TaskPage
from aigen.client.admin import AsyncAdminClient

tasks_app = typer.Typer(help="Tasks: list, show, cancel, delete.", no_args_is_help=True)
models_app = typer.Typer(help="Models with their parameter fields and prices.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks", rich_help_panel="Use")
app.add_typer(models_app, name="models", rich_help_panel="Use")

TaskId = Annotated[str, typer.Argument(help="The task id.")]


def _as_admin(where: Target) -> bool:
    if where.api_key:
        return False
    where.require_admin()
    return True


@tasks_app.command("list")
def list_tasks(
    status: Annotated[
        list[str] | None, typer.Option("--status", help="PENDING, PROCESSING, SUCCESS… (repeatable).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200, help="At most this many.")] = 20,
    url: UrlOption = None,
    api_key: KeyOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """Tasks, newest first."""
    where = target(url, api_key, admin_token)
    statuses = [s.upper() for s in status or []]

    async def go() -> TaskPage:
        if _as_admin(where):
            async with AsyncAdminClient(where.url, where.admin_token) as admin:
                return await admin.list_tasks(status=statuses, model=model, page_size=limit)
        async with AsyncAigenClient(where.url, where.api_key) as client:
            return await client.list_tasks(status=statuses, model=model, page_size=limit)

    page = execute(go())
    if as_json:
        print_json([t.raw for t in page.tasks])
    else:
        console.print(tasks_table(page.tasks))


async def _one(where: Target, task_id: str, action: str) -> Task:
    if _as_admin(where):
        async with AsyncAdminClient(where.url, where.admin_token) as admin:
            if action == "cancel":
                return await admin.cancel_task(task_id)
            if action == "delete":
                return await admin.delete_task(task_id)
            return await admin.get_task(task_id)
    async with AsyncAigenClient(where.url, where.api_key) as client:
        if action == "cancel":
            return await client.cancel_task(task_id)
        if action == "delete":
            return await client.cancel_task(task_id, purge=True)
        return await client.get_task(task_id)


def _show(task: Task, as_json: bool) -> None:
    if as_json:
        print_json(task.raw)
    else:
        console.print(task_details(task))


@tasks_app.command("show")
def show_task(
    task_id: TaskId,
    url: UrlOption = None,
    api_key: KeyOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """One task: status, progress, cost, results."""
    _show(execute(_one(target(url, api_key, admin_token), task_id, "show")), as_json)


@tasks_app.command("cancel")
def cancel_task(
    task_id: TaskId,
    url: UrlOption = None,
    api_key: KeyOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a task that is still running (its budget hold is released)."""
    _show(execute(_one(target(url, api_key, admin_token), task_id, "cancel")), as_json)


@tasks_app.command("delete")
def delete_task(
    task_id: TaskId,
    url: UrlOption = None,
    api_key: KeyOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a task (soft: it leaves lists; a running one is cancelled first)."""
    _show(execute(_one(target(url, api_key, admin_token), task_id, "delete")), as_json)


def _model_from_admin(document: dict[str, Any]) -> Model:
    return Model.from_json(document)


@models_app.command("list")
def list_models(
    output_type: Annotated[str | None, typer.Option("--type", help="IMAGE, VIDEO or AUDIO.")] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider's models.")] = None,
    url: UrlOption = None,
    api_key: KeyOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """Models you can use, with their price."""
    where = target(url, api_key, admin_token)
    kind = output_type.upper() if output_type else None

    async def go() -> list[Model]:
        if _as_admin(where):
            async with AsyncAdminClient(where.url, where.admin_token) as admin:
                return [
                    _model_from_admin(m) for m in await admin.list_models(provider=provider, output_type=kind)
                ]
        async with AsyncAigenClient(where.url, where.api_key) as client:
            return await client.list_models(output_type=kind, provider=provider)

    found = execute(go())
    if as_json:
        print_json([m.raw for m in found])
        return
    table = Table("model", "name", "provider", "type", "price", "available")
    for m in found:
        table.add_row(
            m.slug,
            m.name,
            m.provider,
            m.output_type,
            m.price,
            "yes" if m.available else f"no: {m.unavailable_reason}",
        )
    console.print(table)


@models_app.command("show")
def show_model(
    slug: Annotated[str, typer.Argument(help="The model slug.")],
    url: UrlOption = None,
    api_key: KeyOption = None,
    admin_token: AdminOption = None,
    as_json: JsonOption = False,
) -> None:
    """A model's parameter fields (type, default, choices, range) and its price."""
    where = target(url, api_key, admin_token)

    async def go() -> Model:
        if _as_admin(where):
            async with AsyncAdminClient(where.url, where.admin_token) as admin:
                return _model_from_admin(await admin.get_model(slug))
        async with AsyncAigenClient(where.url, where.api_key) as client:
            return await client.get_model(slug)

    model = execute(go())
    if as_json:
        print_json(model.raw)
        return
    console.print(f"[bold]{model.name}[/bold] ({model.slug}, {model.provider}, {model.output_type})")
    if model.description:
        console.print(model.description)
    console.print(f"price: {model.price}")
    table = Table("parameter", "type", "default", "choices / range", "help")
    for field in model.fields:
        if field.options:
            choices = ", ".join(str(o.value) for o in field.options)
        elif field.min is not None or field.max is not None:
            choices = (
                f"{field.min if field.min is not None else ''}…{field.max if field.max is not None else ''}"
            )
        else:
            choices = ""
        default = "" if field.default is None else str(field.default)
        table.add_row(
            field.key + (" *" if field.required else ""),
            field.type,
            default,
            choices,
            field.helper_text or "",
        )
    console.print(table)
