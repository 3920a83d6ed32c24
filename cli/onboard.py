"""`presence-sync onboard CONFIG [--plan]` and `presence-sync refresh-users CONFIG [--plan]`.

Both run the same Prefect flow their deployment runs, print every step's outcome, what changed and
what still needs a human. A plan reads both systems and changes nothing, so it runs the same steps
(`run_steps`) in this process without Prefect, and answers in seconds; only a config whose secrets are
Prefect Secret blocks needs the Prefect API for it. Exit codes as cli/output.py says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from presence_sync.cli.output import FAILED, SUCCESS, TO_FIX, ConfigArgument, print_error, report_table, whole

if TYPE_CHECKING:
    from presence_sync.models.config import PresenceSyncConfig
    from presence_sync.tasks.onboarding import OnboardingReport, StepName

console = Console()

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
    from presence_sync.tasks.onboarding import StepName

    if reset_store and plan:
        print_error("--reset-store changes the store and --plan changes nothing: use one of them")
        raise typer.Exit(TO_FIX)
    _run("onboard", tuple(StepName), config, plan, "Onboarding", reset_store=reset_store)


def refresh_users(config: ConfigArgument, plan: PlanOption = False) -> None:
    """Fetch CXone agents and teams again and re-link them to Salesforce users."""
    from presence_sync.tasks.onboarding import REFRESH_USERS_STEPS

    _run("refresh-users", REFRESH_USERS_STEPS, config, plan, "Refresh users")


def register(app: typer.Typer) -> None:
    app.command()(onboard)
    app.command(name="refresh-users")(refresh_users)


def _run(
    flow_name: str, steps: Sequence[StepName], config: Path, plan: bool, what: str, *, reset_store: bool = False
) -> None:
    from presence_sync.models.config import ConfigError, load_config
    from presence_sync.models.store import StoreError
    from presence_sync.tasks.context import open_store
    from presence_sync.tasks.context import reset_store as reset

    try:
        # Refuse a bad config or an unusable store before anything starts.
        loaded = load_config(config)
        open_store(loaded).close()
        if reset_store:
            reset(loaded)
            console.print("the state store was reset: onboarding starts it over")
        report = asyncio.run(_plan(loaded, config, steps)) if plan else _run_flow(flow_name, config)
    except (ConfigError, StoreError) as error:  # e.g. a Prefect Secret block that could not be loaded
        print_error(error)
        raise typer.Exit(TO_FIX) from None
    print_report(report, what)
    raise typer.Exit(exit_code(report))


def exit_code(report: OnboardingReport) -> int:
    """0 all done; 2 a failure to fix in the config, credentials or org settings; 1 any other failure."""
    if report.succeeded:
        return SUCCESS
    return TO_FIX if report.needs_fixing else FAILED


async def _plan(config: PresenceSyncConfig, path: Path, steps: Sequence[StepName]) -> OnboardingReport:
    """The flow's steps in plan mode, run here: `run_steps` plans each step exactly as the flow's tasks do."""
    from presence_sync.models.secrets import PrefectSecretStr, iter_secrets, preload_prefect_secrets
    from presence_sync.tasks.context import open_context, transports_for
    from presence_sync.tasks.onboarding import run_steps

    if any(isinstance(secret, PrefectSecretStr) for _, secret in iter_secrets(config)):
        from presence_sync.cli.prefect_api import use_prefect_api

        use_prefect_api()
        preload_prefect_secrets(config)
    async with open_context(config, transports_for(path)) as ctx:
        return await run_steps(ctx, steps, plan_only=True)


def _run_flow(flow_name: str, config: Path) -> OnboardingReport:
    from presence_sync.cli.prefect_api import use_prefect_api

    use_prefect_api()
    from presence_sync.flows.onboard import onboard as onboard_flow
    from presence_sync.flows.refresh_users import refresh_users as refresh_users_flow
    from presence_sync.tasks.onboarding import OnboardingIncomplete

    flow = onboard_flow if flow_name == "onboard" else refresh_users_flow
    try:
        return asyncio.run(flow(config_path=str(config.resolve())))
    except OnboardingIncomplete as incomplete:
        return incomplete.report


def print_report(report: OnboardingReport, what: str = "Onboarding") -> None:
    """The report as a table, each step's changes, and what still needs a human (each cause once, in full)."""
    from presence_sync.tasks.onboarding.report import detail_lines, needs_lines, step_rows, title

    # Texts from configs and servers go in as Text, never as markup: a `[...]` in them stays as written.
    table = report_table(whole("step"), whole("outcome"), "summary", title=Text(title(report, what)))
    for row in step_rows(report):
        style = _OUTCOME_STYLES.get(row["outcome"], "")
        table.add_row(Text(row["step"]), Text(row["outcome"], style=style), Text(row["summary"]))
    console.print(table)
    for result in report.results:
        details = detail_lines(result, report)
        if details:
            console.print(Text(f"\n{result.step}", style="bold"))
            for line in details:
                console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    needs = needs_lines(report)
    if needs:
        console.print("\n[bold]What still needs a human[/]")
        for line in needs:
            console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
