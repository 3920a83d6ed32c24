"""`presence-sync onboard CONFIG [--plan]` and `presence-sync refresh-users CONFIG [--plan]`.

Both run the same Prefect flow their deployment runs, print every step's outcome, what changed and
what still needs a human, and exit 1 when a step failed (2 for a config the loader refuses).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from presence_sync.cli.output import print_error

if TYPE_CHECKING:
    from presence_sync.tasks.onboarding import OnboardingReport

console = Console()

ConfigArgument = Annotated[
    Path, typer.Argument(help="The contact center's config file (see examples/demo-contact-center.yaml).")
]
PlanOption = Annotated[bool, typer.Option("--plan", help="Show what each step would change; change nothing.")]
ResetStoreOption = Annotated[
    bool,
    typer.Option(
        "--reset-store",
        help="Delete everything in the config's state store first (e.g. one that belongs to another contact center).",
    ),
]

_OUTCOME_STYLES = {
    "created": "green",
    "updated": "green",
    "unchanged": "dim",
    "planned": "cyan",
    "failed": "bold red",
    "skipped": "yellow",
}


def onboard(config: ConfigArgument, plan: PlanOption = False, reset_store: ResetStoreOption = False) -> None:
    """Set up presence sync as the config describes: every step of the seed procedure, idempotent."""
    from presence_sync.flows.onboard import onboard as onboard_flow

    if reset_store and plan:
        print_error("--reset-store changes the store and --plan changes nothing: use one of them")
        raise typer.Exit(2)
    _run(onboard_flow, config, plan, "Onboarding", reset_store=reset_store)


def refresh_users(config: ConfigArgument, plan: PlanOption = False) -> None:
    """Fetch CXone agents and teams again and re-link them to Salesforce users."""
    from presence_sync.flows.refresh_users import refresh_users as refresh_users_flow

    _run(refresh_users_flow, config, plan, "Refresh users")


def register(app: typer.Typer) -> None:
    app.command()(onboard)
    app.command(name="refresh-users")(refresh_users)


def _run(
    flow: Callable[..., Awaitable[Any]], config: Path, plan: bool, what: str, *, reset_store: bool = False
) -> None:
    from presence_sync.models.config import ConfigError, load_config
    from presence_sync.models.store import StoreError
    from presence_sync.tasks.context import open_store
    from presence_sync.tasks.context import reset_store as reset
    from presence_sync.tasks.onboarding import OnboardingIncomplete

    try:
        # Refuse a bad config or an unusable store before Prefect starts.
        loaded = load_config(config)
        open_store(loaded).close()
        if reset_store:
            reset(loaded)
            console.print("the state store was reset: onboarding starts it over")
        report = asyncio.run(flow(config_path=str(config.resolve()), plan=plan))
    except OnboardingIncomplete as incomplete:
        report = incomplete.report
    except (ConfigError, StoreError) as error:  # e.g. a Prefect Secret block the flow could not load
        print_error(error)
        raise typer.Exit(2) from None
    print_report(report, what)
    raise typer.Exit(0 if report.succeeded else 1)


def print_report(report: OnboardingReport, what: str = "Onboarding") -> None:
    """The report as a table, each step's changes, and what still needs a human."""
    from presence_sync.tasks.onboarding.report import capped, detail_lines, step_rows, title

    # Texts from configs and servers go in as Text, never as markup: a `[...]` in them stays as written.
    table = Table(title=Text(title(report, what)), title_justify="left")
    for column in ("step", "outcome", "summary"):
        table.add_column(column, overflow="fold")
    for row in step_rows(report):
        style = _OUTCOME_STYLES.get(row["outcome"], "")
        table.add_row(Text(row["step"]), Text(row["outcome"], style=style), Text(row["summary"]))
    console.print(table)
    for result in report.results:
        details = detail_lines(result)
        if details:
            console.print(Text(f"\n{result.step}", style="bold"))
            for line in details:
                console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    needs = report.needs_a_human()
    if needs:
        console.print("\n[bold]What still needs a human[/]")
        for line in capped(needs):
            console.print(f"  - {line}", highlight=False, markup=False, soft_wrap=True)
