"""A command that runs a flow, as an admin runs it (its own process, no Prefect server configured): its
terminal shows our output and one line about Prefect, none of Prefect's own chatter."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import write_emulator_config
from presence_sync.tasks.context import open_context
from presence_sync.tasks.onboarding import run_steps


async def _onboard(config: Path) -> None:
    async with open_context(config) as ctx:
        assert (await run_steps(ctx)).succeeded


@pytest.mark.prefect
def test_a_flow_command_prints_one_line_about_prefect_and_none_of_its_chatter(tmp_path: Path) -> None:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    environment |= {"PREFECT_HOME": str(tmp_path / "prefect-home"), "COLUMNS": "120"}
    with EmulatorStack.serve(agents=12) as stack:
        config = asyncio.run(write_emulator_config(stack, tmp_path / "presence-sync.yaml"))
        asyncio.run(_onboard(config))
        done = subprocess.run(
            [sys.executable, "-m", "presence_sync.cli.main", "reconcile", str(config)],
            capture_output=True, text=True, timeout=300, env=environment,
        )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "reconciled 12 agents" in done.stdout
    # One line: a temporary server starts (or, if one runs on this machine, that it is used).
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("Prefect: "), done.stderr
    for chatter in ("Starting temporary server", "telemetry", "Traceback", "Finished in state", "EventsWorker", "INFO"):
        assert chatter not in done.stdout + done.stderr
