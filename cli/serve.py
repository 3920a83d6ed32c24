"""`presence-sync serve`: serve every deployment of prefect.yaml from this process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from presence_sync.cli.output import print_error

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

    Needs a Prefect server: `prefect server start` in another terminal, then
    `export PREFECT_API_URL=http://127.0.0.1:4200/api`.
    """
    from presence_sync.deployments.serve import PREFECT_YAML, ServeError, api_url, read_deployments, serve_deployments

    path = prefect_yaml if prefect_yaml.is_absolute() or prefect_yaml.exists() else PREFECT_YAML
    try:
        specs = read_deployments(path)
        if only:
            unknown = sorted(set(only) - {spec.name for spec in specs})
            if unknown:
                known = ", ".join(spec.name for spec in specs)
                raise ServeError(f"no deployment named {', '.join(unknown)} in {path}; deployments: {known}")
            specs = [spec for spec in specs if spec.name in only]
        url = api_url()
        if url is None:
            raise ServeError(
                "no Prefect server configured: served deployments need one that the UI and this process share. "
                "Start it with `prefect server start` (another terminal), then "
                "`export PREFECT_API_URL=http://127.0.0.1:4200/api` and run `presence-sync serve` again"
            )
        table = Table("deployment", "entrypoint", "schedules", "concurrency", title=f"Serving {path} on {url}")
        for spec in specs:
            schedules = ", ".join(
                f"cron {s['cron']}" if "cron" in s else f"every {s['interval']} s" if "interval" in s else "rrule"
                for s in spec.schedules
            )
            table.add_row(spec.name, spec.entrypoint, schedules or "on demand", str(spec.concurrency_limit or "-"))
        console.print(table)
        serve_deployments(specs, path.resolve().parent)
    except ServeError as error:
        print_error(error)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    app.command()(serve)
