"""`presence-sync validate CONFIG --agent ID`: the validate flow, its table on the terminal, exit 1 on failure."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from presence_sync.cli.output import ConfigArgument, flow_result, report_table, whole

if TYPE_CHECKING:
    from presence_sync.tasks.validate import ValidationReport

console = Console()


def validate(
    config: ConfigArgument,
    agent: Annotated[str, typer.Option("--agent", help="The test agent: CXone agent id, or email/username.")],
    timeout: Annotated[float, typer.Option(min=1, help="Seconds each hop may take before it fails.")] = 30.0,
    salesforce_status: Annotated[
        str | None, typer.Option(help="DeveloperName to set in Salesforce (default: a rule row that maps both ways).")
    ] = None,
    cxone_state: Annotated[
        str | None, typer.Option(help="CXone state to set, e.g. 'Unavailable: Lunch' (default: from the rule).")
    ] = None,
    with_sync: Annotated[
        bool, typer.Option("--with-sync", help="Run a sync window beside the validation (no sync running yet).")
    ] = False,
) -> None:
    """Prove that a change in each system arrives in the other for one test agent, and time each hop."""
    from presence_sync.models.config import load_config

    load_config(config)  # a config mistake is reported here, plainly, before any flow run starts
    from presence_sync.cli.prefect_api import use_prefect_api

    use_prefect_api()
    from presence_sync.flows.validate import validate as validate_flow

    state = asyncio.run(
        validate_flow(str(config), agent, timeout, salesforce_status, cxone_state, with_sync, return_state=True)  # type: ignore[call-overload]
    )
    result = flow_result(state)
    print_report(result)
    raise typer.Exit(0 if result.passed else 1)


def print_report(report: ValidationReport) -> None:
    """The validation table, then the verdict and (on failure) the cause and the fix."""
    table = report_table(
        "hop", whole("result"), whole("seconds"), "what was done and seen", title=Text(f"Validation of {report.agent}{report.by_rule}")
    )
    for row in report.rows():
        style = {"passed": "green", "FAILED": "bold red"}.get(row["result"], "dim")
        what = Text(row["action"])
        what.append(f"\nexpected {row['expected']}; saw {row['observed']}", style="dim")
        table.add_row(Text(row["hop"]), Text(row["result"], style=style), Text(row["seconds"]), what)
    console.print(table)
    failure = report.failure
    if report.passed:
        console.print(f"[bold green]✔[/] {escape(report.headline)}", highlight=False)
    elif failure is not None and failure.diagnosis is not None:
        d = failure.diagnosis
        console.print(f"[bold red]✘ {failure.hop.value} failed: {escape(str(d.cause))}[/]", highlight=False)
        console.print(f"  {escape(d.explanation)}", highlight=False)
        console.print(f"  [bold]Fix:[/] {escape(d.fix)}", highlight=False)
    for row in report.rows():
        if row["hop"] == "restore" and row["note"]:
            console.print(f"[yellow]restore:[/] {escape(row['note'])}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(validate)
