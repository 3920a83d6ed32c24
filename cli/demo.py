"""`presence-sync demo`: the whole product against built-in emulators, then a summary; exit 1 if anything failed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from presence_sync.cli.output import print_error, report_table, whole

if TYPE_CHECKING:
    from presence_sync.tasks.demo import DemoSummary

console = Console(highlight=False)

def demo(
    agents: Annotated[int, typer.Option(min=2, max=5_000, help="Agents in the seeded contact center.")] = 200,
    minutes: Annotated[
        float, typer.Option(min=0.1, max=60, help="Real minutes the simulated working day (09:00-17:00) lasts.")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the contact center and of the agents' day.")] = 0,
    workdir: Annotated[
        Path | None, typer.Option(help="Folder for the config and state store (default: a new temporary folder).")
    ] = None,
) -> None:
    """Onboard a simulated contact center, sync it through a working day, validate, and summarise."""
    if workdir is not None and workdir.exists() and any(workdir.iterdir()):
        print_error(f"{workdir} is not empty; give an empty or new folder (nothing in it is overwritten)")
        raise typer.Exit(2)
    from presence_sync.cli.prefect_api import use_prefect_api

    use_prefect_api()  # flow logs still reach Prefect's API (the UI shows them); the terminal keeps the demo's story
    from presence_sync.flows.demo import demo as demo_flow

    state = asyncio.run(
        demo_flow(agents=agents, minutes=minutes, seed=seed, workdir=str(workdir) if workdir else None, return_state=True)  # type: ignore[call-overload]
    )
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, BaseException):
        raise summary
    print_summary(summary)
    raise typer.Exit(0 if summary.ok else 1)


def print_summary(summary: DemoSummary) -> None:
    """The demo's figures, the validation verdict, convergence, and where to look next."""
    table = report_table(whole(""), "CXone → Salesforce", "Salesforce → CXone", title="presence-sync demo: summary")
    for figure, to_salesforce, to_cxone in summary.figures():
        table.add_row(figure, to_salesforce, to_cxone)
    console.print(table)
    p = summary.propagation
    console.print(
        f"Not measured: {p.superseded} superseded by the agent's next change before arriving, "
        f"{p.already_there} already shown on the other side, {p.not_carried} not mapped by the rule, "
        f"{len(p.missed)} never arrived."
    )
    for system, counts in summary.api_requests.items():
        console.print(f"{system} API: {counts['total']} requests ({counts['writes']} writes)")
    if summary.validation is not None:
        mark = "[green]✔[/]" if summary.validation.passed else "[red]✘[/]"
        console.print(f"{mark} {summary.validation.headline}")
    convergence = summary.convergence
    agreeing = convergence.checked - len(convergence.disagreements)
    if convergence.converged:
        console.print(f"[green]✔[/] converged: all {convergence.checked} linked agents agree with the rule in both systems")
    elif convergence.checked:
        console.print(f"[red]✘[/] not converged: {agreeing} of {convergence.checked} linked agents agree with the rule")
        for d in convergence.disagreements[:10]:
            console.print(f"    agent {d.agent_id}: CXone {d.cxone}, Salesforce {d.salesforce} (rule: {d.rule_says})")
    if summary.machine is not None:
        console.print(f"{'[yellow]⚠[/] ' if summary.machine.busy else ''}{escape(summary.machine.note())}.")
    if summary.problem:
        console.print(f"[bold red]✘ {escape(summary.problem)}[/]")
    console.print("\n[bold]Where to look[/]")
    runs = ", ".join(f"{flow} '{name}'" for flow, name in summary.flow_runs.items())
    artifacts = ", ".join(f"'{key}'" for key in summary.artifacts)
    console.print(f"  Prefect: flow runs {runs}; artifacts {artifacts}.")
    console.print("  They are kept in Prefect's database: run `presence-sync server` and open http://127.0.0.1:4200.")
    console.print(f"  Decisions per agent: `presence-sync audit {summary.config_path} --agent <CXone agent id>`.")


def register(app: typer.Typer) -> None:
    app.command()(demo)
