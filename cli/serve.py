"""`presence-sync serve`: serve every deployment of prefect.yaml from this process."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from presence_sync.cli.output import TO_FIX, print_error, report_table, whole

if TYPE_CHECKING:
    from presence_sync.deployments.serve import DeploymentSpec

console = Console()


def serve(
    prefect_yaml: Annotated[
        Path, typer.Option(help="The prefect.yaml whose deployments to serve (default: the project's).")
    ] = Path("prefect.yaml"),
    only: Annotated[
        list[str] | None, typer.Option(help="Serve only these deployments (repeat the option); default: all.")
    ] = None,
) -> None:
    """Serve onboard, sync, reconcile, refresh-users and validate locally, for the Prefect UI to run.

    Needs a running Prefect server: `presence-sync server` in another terminal (found at
    http://127.0.0.1:4200), or one that PREFECT_API_URL names.
    """
    from presence_sync.cli.prefect_api import use_prefect_api
    from presence_sync.deployments.serve import (
        PREFECT_YAML, ServeError, read_deployments, serve_deployments, starts_at_serve,
    )

    path = prefect_yaml if prefect_yaml.is_absolute() or prefect_yaml.exists() else PREFECT_YAML
    try:
        specs = read_deployments(path)
        if only:
            unknown = sorted(set(only) - {spec.name for spec in specs})
            if unknown:
                known = ", ".join(spec.name for spec in specs)
                raise ServeError(f"no deployment named {', '.join(unknown)} in {path}; deployments: {known}")
            specs = [spec for spec in specs if spec.name in only]
        url = use_prefect_api(say=lambda line: None).url
        if url is None:
            raise ServeError(
                "no Prefect server running: served deployments need one that the UI and this process share. "
                "Start it with `presence-sync server` (another terminal), then run `presence-sync serve` again"
            )
        console.print(deployments_table(specs, f"Serving {path} on {url}"))
        starting = [spec.name for spec in specs if starts_at_serve(spec)]
        if starting:
            console.print(f"starting now, then on schedule: {', '.join(starting)}")
        serve_deployments(specs, path.resolve().parent)
    except ServeError as error:
        print_error(error)
        raise typer.Exit(TO_FIX) from None


def deployments_table(specs: list[DeploymentSpec], title: str) -> Table:
    """What is served: each deployment's flow file, schedules and concurrency, in words."""
    table = report_table(whole("deployment"), whole("flow file"), "schedules", "concurrency", title=title)
    for spec in specs:
        schedules = ", ".join(
            f"cron {s['cron']}" if "cron" in s else f"every {s['interval']} s" if "interval" in s else "rrule"
            for s in spec.schedules
        )
        table.add_row(spec.name, spec.flow_file, schedules or "on demand", concurrency_text(spec.concurrency_limit))
    return table


def concurrency_text(limit: int | dict[str, Any] | None) -> str:
    """prefect.yaml's `concurrency_limit` in words: `2`, or `{limit: 2, collision_strategy: ENQUEUE}`."""
    if limit is None:
        return "-"
    if not isinstance(limit, dict):
        return f"up to {limit}"
    text = f"up to {limit.get('limit', '?')}"
    strategy = str(limit.get("collision_strategy", "")).upper()
    if strategy == "ENQUEUE":
        return f"{text}; more wait"
    if strategy == "CANCEL_NEW":
        return f"{text}; more cancelled"
    return text


def register(app: typer.Typer) -> None:
    app.command()(serve)
