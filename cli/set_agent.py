"""`presence-sync set CONFIG --agent ID (--salesforce STATUS | --cxone STATE)`: a supervisor's change.

Runs the `set` flow (the same as its deployment), prints how it went, and exits 1 when the request was
refused or the other system did not follow (2 for a config the loader refuses).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from presence_sync.cli.output import flow_result

if TYPE_CHECKING:
    from presence_sync.tasks.supervise import SetOutcome

console = Console(highlight=False)


def set_agent(
    config: Annotated[Path, typer.Argument(help="The contact center's config file (YAML).")],
    agent: Annotated[str, typer.Option("--agent", help="The agent: CXone agent id, or email/username.")],
    salesforce: Annotated[
        str | None, typer.Option("--salesforce", help="A presence status DeveloperName to set in Salesforce.")
    ] = None,
    cxone: Annotated[
        str | None, typer.Option("--cxone", help="A CXone state to set: Available, Unavailable, 'Unavailable: Lunch'.")
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds the other system may take to follow.")] = 60.0,
) -> None:
    """Set one agent in Salesforce or in CXone; the running sync carries it to the other; wait until both agree."""
    if (salesforce is None) == (cxone is None):
        raise typer.BadParameter("give exactly one of --salesforce STATUS or --cxone STATE", param_hint="--salesforce/--cxone")
    from presence_sync.models.config import load_config

    load_config(config)  # a config mistake is reported here, plainly, before any flow run starts
    from presence_sync.cli.prefect_api import use_prefect_api

    use_prefect_api()
    from presence_sync.flows.set_agent import set_agent as set_flow

    state = asyncio.run(set_flow(str(config), agent, salesforce, cxone, timeout, return_state=True))  # type: ignore[call-overload]
    outcome = flow_result(state)
    if outcome is None:  # the request itself could not be read
        console.print(f"[bold red]✘[/] {escape(state.message or 'not set')}")
        raise typer.Exit(1)
    print_outcome(outcome)
    raise typer.Exit(0 if outcome.ok else 1)


def print_outcome(outcome: SetOutcome) -> None:
    """The verdict; on a refusal or a failed hop, the cause and the fix."""
    if outcome.ok:
        console.print(f"[bold green]✔[/] {escape(outcome.headline)}")
        return
    problem = outcome.problem
    if outcome.refusal is not None and problem is not None:
        console.print(f"[bold red]✘ not set: {escape(str(problem.cause))}[/]")
    elif outcome.hop is not None:
        console.print(f"[bold red]✘[/] {escape(outcome.agent)}: {escape(outcome.system)} set to {escape(outcome.value)}, "
                      f"but {escape(outcome.expected)} did not follow (shows {escape(outcome.hop.observed)})")
    if problem is not None:
        console.print(f"  {escape(problem.explanation)}")
        console.print(f"  [bold]Fix:[/] {escape(problem.fix)}")
    if outcome.rule_name:
        console.print(f"  rule: {escape(outcome.rule_name)}; before: {escape(outcome.before)}")


def register(app: typer.Typer) -> None:
    app.command(name="set")(set_agent)
