"""`presence-sync limits install` and `presence-sync alerts install`: set up a Prefect server for unattended shards.

    presence-sync limits install acme.yaml --shards 4            # the shared API budget (global rate limits)
    presence-sync alerts install acme.yaml --block slack-webhook/ops

Both are idempotent (run again after changing the config: they update what exists) and need a
running Prefect server, the one the sync's workers report to: `PREFECT_API_URL`, or
`presence-sync server` at http://127.0.0.1:4200. A temporary server would forget them at exit.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from presence_sync.cli.output import TO_FIX, ConfigArgument, print_error, report_table, whole

console = Console(highlight=False)
limits_app = typer.Typer(help="The API budget the sync shards share (Prefect global rate limits).", no_args_is_help=True)
alerts_app = typer.Typer(help="Prefect automations that notify on the sync's alert events.", no_args_is_help=True)


def _running_server() -> str:
    from presence_sync.cli.prefect_api import use_prefect_api

    url = use_prefect_api(say=lambda line: None).url
    if url is None:
        print_error(
            "no Prefect server running: limits and automations live on the server the sync's workers use. "
            "Set PREFECT_API_URL to it, or start one with `presence-sync server` (another terminal), and run again"
        )
        raise typer.Exit(TO_FIX)
    return url


@limits_app.command("install")
def install_limits(
    config: ConfigArgument,
    shards: Annotated[int, typer.Option(min=1, max=1000, help="How many sync shards will share the budget.")] = 1,
    salesforce_daily_requests: Annotated[int | None, typer.Option(
        min=1, help="The org's daily API requests (default: sync.shared_budget.salesforce_daily_requests, "
                    "else read from Salesforce's /limits).",
    )] = None,
) -> None:
    """Create or resize the global rate limits every sync shard takes its API requests from."""
    from presence_sync.models.config import load_config

    loaded = load_config(config)
    url = _running_server()
    from presence_sync.flows.shared_budget import install_limits as install

    sizes = asyncio.run(install(loaded, shards=shards, salesforce_daily=salesforce_daily_requests))
    table = report_table(
        whole("limit"), whole("slots"), whole("per second"), whole("per day"), "sized from",
        title=f"Shared API budget on {url} ({shards} shard{'s' if shards > 1 else ''})",
    )
    for size in sizes:
        table.add_row(size.name, str(size.limit), f"{size.per_second:g}", f"{size.per_day:,}", size.basis)
    console.print(table)
    if not loaded.sync.shared_budget.enabled:
        console.print(
            "The sync does not use them yet: set `sync.shared_budget.enabled: true` in the config "
            "(the next sync window picks it up)."
        )


@alerts_app.command("install")
def install_alerts(
    config: ConfigArgument,
    block: Annotated[str | None, typer.Option(
        help="The notification block to send alerts to, TYPE/NAME (e.g. slack-webhook/ops) or NAME. "
             "Without it, the automations get a placeholder action: rerun with --block to attach one.",
    )] = None,
) -> None:
    """Create or update the Prefect automations that alert on the sync (thresholds from sync.alerts)."""
    from presence_sync.models.config import load_config

    loaded = load_config(config)
    url = _running_server()
    from presence_sync.flows.sync_alerts import AUTOMATION_PREFIX, NotificationBlockNotFound, install_automations

    try:
        installed = asyncio.run(install_automations(loaded.sync.alerts, block))
    except NotificationBlockNotFound as error:
        print_error(error)
        raise typer.Exit(TO_FIX) from None
    table = report_table("automation (presence-sync: ...) and the events it fires on", whole("done"),
                         title=f"Alert automations on {url}")
    for automation, done in installed:
        cell = Text(automation.name.removeprefix(AUTOMATION_PREFIX))
        cell.append("\n" + ", ".join(sorted(automation.trigger.expect)), style="dim")  # type: ignore[attr-defined]
        table.add_row(cell, done)
    console.print(table)
    if block is None:
        console.print(
            "No --block given: each automation has a placeholder action and notifies nobody (its runs show "
            "in the UI's Automations page). Rerun with --block TYPE/NAME to send the alerts to a "
            "notification block (Prefect UI -> Blocks -> e.g. Slack Webhook, Email)."
        )


def register(app: typer.Typer) -> None:
    app.add_typer(limits_app, name="limits")
    app.add_typer(alerts_app, name="alerts")
