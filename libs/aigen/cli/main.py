"""`aigen`: run the system, operate it, and use it.

Tables for people, `--json` for scripts. Exit codes: 0 ok, 1 the operation failed,
2 bad usage or configuration, 3 not found, 4 rejected (invalid input, budget, rate).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aigen.config import ConfigError, Settings

app = typer.Typer(
    name="aigen",
    help="One request to many AI media providers, tracked until the result is stored.",
    no_args_is_help=True,
    add_completion=False,
)
projections_app = typer.Typer(help="Read models built from the event log.", no_args_is_help=True)
nats_app = typer.Typer(help="NATS JetStream topology.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")
app.add_typer(nats_app, name="nats")

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@app.command()
def run(
    home: Annotated[Path, typer.Option(envvar="AIGEN_HOME", help="Where embedded data lives.")] = Path(
        ".aigen"
    ),
    port: Annotated[int, typer.Option("--port", help="Gateway HTTP port (a free one if taken).")] = 8080,
    simulate: Annotated[
        bool, typer.Option(help="Also start fakes of every provider and point the providers at them.")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Start only these services (repeatable).")
    ] = None,
) -> None:
    """Start the whole system on this machine (embedded PostgreSQL and NATS when none are configured)."""
    from aigen.launcher.run import RunOptions
    from aigen.launcher.run import main as run_main

    code = run_main(RunOptions(home=home, gateway_port=port, simulate=simulate, services=only or None))
    raise typer.Exit(code)


async def _database() -> object:
    """The database with every projection's tables migrated (services own their migrations)."""
    from aigen.projections import registry
    from aigen.runtime import prepare_database

    packages = []
    for name in registry.available():
        service_package = registry.KNOWN[name].partition(":")[0].rsplit(".", 1)[0]  # services.<name>
        packages.append((service_package, service_package.rsplit(".", 1)[-1]))
    return await prepare_database(Settings.from_env(), sorted(set(packages)))


@projections_app.command("status")
def projections_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each projection's position, the log's head, the lag and whether it is stalled."""
    from aigen.projections import ProjectionRunner, registry

    async def go() -> list[dict[str, object]]:
        db = await _database()
        try:
            rows = []
            for name in registry.available():
                status = await ProjectionRunner(db, registry.create(name)).status()  # type: ignore[arg-type]
                rows.append(
                    {
                        "name": status.name,
                        "position": status.position,
                        "head": status.head,
                        "lag": status.lag,
                        "state": status.state,
                        "error": status.error,
                    }
                )
            return rows
        finally:
            await db.close()  # type: ignore[attr-defined]

    try:
        rows = asyncio.run(go())
    except (ConfigError, RuntimeError) as exc:
        raise fail(str(exc), 2) from None
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("projection", "position", "head", "lag", "state", "error")
    for r in rows:
        table.add_row(
            *(
                str(r[k] if r[k] is not None else "")
                for k in ("name", "position", "head", "lag", "state", "error")
            )
        )
    console.print(table)
    if any(r["state"] == "stalled" for r in rows):
        raise typer.Exit(1)


@projections_app.command("rebuild")
def projections_rebuild(name: str) -> None:
    """Empty a read model and replay the whole event log into it."""
    from aigen.projections import ProjectionRunner, registry

    async def go() -> int:
        db = await _database()
        try:
            return await ProjectionRunner(db, registry.create(name)).rebuild()  # type: ignore[arg-type]
        finally:
            await db.close()  # type: ignore[attr-defined]

    try:
        applied = asyncio.run(go())
    except KeyError as exc:
        raise fail(str(exc).strip('"'), 3) from None
    except (ConfigError, RuntimeError) as exc:
        raise fail(str(exc), 2) from None
    console.print(f"rebuilt [bold]{name}[/bold]: {applied} events applied")


@projections_app.command("resume")
def projections_resume(name: str) -> None:
    """Let a stalled projection try again (after the cause was fixed)."""
    from aigen.projections import ProjectionRunner, registry

    async def go() -> None:
        db = await _database()
        try:
            await ProjectionRunner(db, registry.create(name)).resume()  # type: ignore[arg-type]
        finally:
            await db.close()  # type: ignore[attr-defined]

    try:
        asyncio.run(go())
    except KeyError as exc:
        raise fail(str(exc).strip('"'), 3) from None
    console.print(f"{name}: resumed")


@nats_app.command("verify")
def nats_verify() -> None:
    """Compare the live JetStream streams and consumers with the declared ones."""
    from aigen.bus import topology as topo
    from aigen.bus.connection import connect

    async def go() -> list[topo.Drift]:
        settings = Settings.from_env()
        nc = await connect(settings.require_nats_url())
        try:
            t = topo.Topology(settings.nats_namespace)
            return await topo.verify(nc.jetstream(), t.streams(), topo.system_consumers(t))
        finally:
            await nc.close()

    try:
        drift = asyncio.run(go())
    except (ConfigError, RuntimeError) as exc:
        raise fail(str(exc), 2) from None
    if not drift:
        console.print("JetStream matches the declared topology")
        return
    for d in drift:
        err.print(f"drift: {d}")
    raise typer.Exit(1)


def _register_optional() -> None:
    """Commands whose modules may not be installed in a trimmed deployment."""
    for module in ("aigen.cli.simulate", "aigen.cli.client_commands"):
        try:
            __import__(module)
        except ImportError:
            continue


if __name__ == "__main__":
    # `python -m aigen.cli.main`: command modules import `aigen.cli.main`; let them find this
    # module (and its app) instead of importing a second copy.
    sys.modules.setdefault("aigen.cli.main", sys.modules[__name__])

_register_optional()

if __name__ == "__main__":
    app()
