"""`aigen simulate`: every fake provider on one port, for demos and load tests."""

from __future__ import annotations

from typing import Annotated

import typer

from aigen.cli.main import app, console


@app.command()
def simulate(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7900,
    seconds: Annotated[float, typer.Option(help="How long a fake task takes to finish.")] = 4.0,
    print_env: Annotated[
        str, typer.Option(help="Print the environment that points aigen here (yes/no).")
    ] = "yes",
) -> None:
    """Serve fakes of Kie.ai, Replicate, OpenAI, ElevenLabs, Pollo and TuZi under /<provider>/."""
    import uvicorn

    from aigen.simulator.catalog import SimulatorApp, make_fakes, simulator_env

    base = f"http://{host}:{port}"
    sim = SimulatorApp(make_fakes(seconds), base)
    if print_env == "yes":
        console.print("[bold]Point aigen at the simulator with:[/bold]")
        for key, value in simulator_env(base).items():
            console.print(f"export {key}='{value}'", highlight=False, soft_wrap=True)
    uvicorn.run(sim, host=host, port=port, log_level="warning", lifespan="on")
