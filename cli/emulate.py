"""`presence-sync emulate`: serve both emulators on loopback until interrupted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def emulate(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    salesforce_port: Annotated[int, typer.Option(help="Port of the Salesforce emulator.")] = 8401,
    cxone_port: Annotated[int, typer.Option(help="Port of the CXone emulator.")] = 8402,
    agents: Annotated[int, typer.Option(min=1, max=20_000, help="Agents in the seeded contact center.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed for the contact center and for fault injection.")] = 0,
    apply_delay_ms: Annotated[
        int, typer.Option(min=0, help="How long each simulated Salesforce console takes to apply a command.")
    ] = 150,
    write_config: Annotated[
        Path | None, typer.Option(help="Write a ready config for this contact center (hosts, ports, fake credentials).")
    ] = None,
) -> None:
    """Serve the Salesforce and CXone emulators, seeded with the demo contact center."""
    from presence_sync.emulators.stack import EmulatorStack
    from presence_sync.models.config import write_emulator_config

    with EmulatorStack.serve(
        host=host,
        salesforce_port=salesforce_port,
        cxone_port=cxone_port,
        agents=agents,
        seed=seed,
        apply_delay_ms=apply_delay_ms,
    ) as stack:
        console.print(f"[bold]Salesforce emulator[/] {stack.salesforce_url}  (My Domain: {stack.salesforce_my_domain_url})")
        console.print(f"[bold]CXone emulator[/]      {stack.cxone_url}")
        console.print(f"Seeded {agents} agents (seed {seed}).")
        console.print(
            "Control API (people, faults, stats) under /__emulator/: emulators/README.md, "
            f"or {stack.cxone_url}/__emulator/docs",
            soft_wrap=True,
        )
        if write_config is not None:
            asyncio.run(write_emulator_config(stack, write_config))
            console.print(f"Wrote a ready config to {write_config}: `presence-sync onboard {write_config}`", soft_wrap=True)
        console.print("Press Ctrl+C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("Stopping.")


def register(app: typer.Typer) -> None:
    app.command()(emulate)
