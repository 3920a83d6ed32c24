"""The demo (`presence-sync demo`): the whole product against built-in emulators, on Prefect's ephemeral server.

Both emulators on loopback, seeded with the demo contact center; a ready config; the `onboard` flow;
the `sync` flow running while simulated agents live a working day in fast-forward; a `validate` run for
one agent; then a summary: propagation latency per direction, the sync's figures, and whether both
sides agree with the rule for every linked agent at the end, read back through the APIs. The day, the
checks and the summary are `presence_sync.tasks.demo`; this module composes them with the flows.

    summary = await demo(agents=50, minutes=0.5)      # a Prefect flow; onboard, sync, validate are subflows
    summary.ok
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.states import State
from rich.console import Console

from presence_sync.emulators.demo_center import DEFAULT_AGENT_COUNT
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.flows.onboard import onboard
from presence_sync.flows.run_names import demo_run_name
from presence_sync.flows.sync import sync
from presence_sync.flows.sync_tasks import WINDOW_ARTIFACT_KEY
from presence_sync.flows.validate import artifact_key, validate
from presence_sync.models.config import write_emulator_config
from presence_sync.tasks.context import open_context
from presence_sync.tasks.demo import DemoSummary, agent_rules, check_convergence, summary_markdown
from presence_sync.tasks.demo.busy import LoopLag
from presence_sync.tasks.demo.consoles import console_gateway, use_console_gateway
from presence_sync.tasks.demo.day import (
    api_requests,
    fast_forward,
    morning_published,
    simulate,
    wait_until,
    wait_until_converged,
)
from presence_sync.tasks.sync.status import sync_activity
from presence_sync.tasks.sync.summary import WindowStats
from presence_sync.tasks.sync.window import WindowResult
from presence_sync.tasks.validate import ValidationReport

DEFAULT_MINUTES = 1.0
VALIDATION_TIMEOUT_SECONDS = 15.0
# Windows as the sync deployment runs them, only shorter: the demo ends at most one window after its work.
SYNC_WINDOW_SECONDS = 10.0
WINDOW_OVERLAP_SECONDS = 3.0  # the deployment's windows overlap the same way (prefect.yaml), only longer
SYNC_START_TIMEOUT_SECONDS = 60.0
VALIDATION_AGENT = "agent1@example.com"
ARTIFACTS = ("demo-summary", "onboarding-outcome", WINDOW_ARTIFACT_KEY, artifact_key(VALIDATION_AGENT))

console = Console(highlight=False)


def _step(text: str) -> None:
    console.print(f"[bold cyan]▸[/] {text}")


async def _flow_run_name(state: State[Any]) -> str:
    flow_run_id = state.state_details.flow_run_id
    if flow_run_id is None:
        return "?"
    async with get_client() as client:
        return (await client.read_flow_run(flow_run_id)).name


class SyncWindows:
    """Sync windows as the scheduled sync deployment runs them, until the demo says stop.

    A window starts every `window_seconds` and lasts `WINDOW_OVERLAP_SECONDS` longer, so the next one is
    already waiting for the lease when the last releases it (no gap); each is a `sync` flow run.
    Stopping starts no other window and lets the running ones finish with their summary artifacts.
    """

    def __init__(self, config_path: Path, window_seconds: float) -> None:
        self.config_path = config_path
        self.window_seconds = window_seconds
        self.states: list[State[Any]] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    @property
    def stopped_early(self) -> State[Any] | None:
        """The window that did not complete (no other starts after it), if any."""
        return next((state for state in self.states if not state.is_completed()), None)

    async def stop(self) -> None:
        """Start no other window; let the running ones finish."""
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        running: list[asyncio.Task[None]] = []
        while not self._stop.is_set() and self.stopped_early is None:
            running.append(asyncio.create_task(self._window()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.window_seconds)
        await asyncio.gather(*running)

    async def _window(self) -> None:
        seconds = self.window_seconds + WINDOW_OVERLAP_SECONDS
        self.states.append(await sync(str(self.config_path), seconds=seconds, return_state=True))

    async def stats(self) -> WindowStats:
        """The windows' figures added up."""
        results = [await state.result(raise_on_failure=False) for state in self.states]
        return WindowStats.combined(r.stats for r in results if isinstance(r, WindowResult))


@flow(name="demo", flow_run_name=demo_run_name, description="The whole product against built-in emulators: onboard, sync a simulated day, validate.")
async def demo(
    agents: int = DEFAULT_AGENT_COUNT,
    minutes: float = DEFAULT_MINUTES,
    seed: int = 0,
    workdir: str | None = None,
) -> DemoSummary:
    """Run the demo contact center end to end and return its summary (`summary.ok`: everything passed).

    Args:
        agents: Agents in the seeded contact center.
        minutes: Real minutes the simulated working day (09:00-17:00) lasts.
        seed: Seed of the contact center and of the agents' day.
        workdir: Folder for the config and the state store (default: a new temporary folder).
    """
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="presence-sync-demo-"))
    config_path = folder / "presence-sync.yaml"
    day_seconds = minutes * 60
    summary = DemoSummary(agents, day_seconds, seed, str(config_path), artifacts=ARTIFACTS)
    async with LoopLag() as lag:  # how starved this process was: the summary says if the figures mean little
        await _run(summary, config_path)
    summary.machine = lag.machine_load()
    await acreate_markdown_artifact(key="demo-summary", markdown=summary_markdown(summary), description="presence-sync demo")
    return summary


async def _run(summary: DemoSummary, config_path: Path) -> None:
    """Onboard, sync the simulated day in windows, validate, check convergence: the summary's figures."""
    agents, seed, day_seconds = summary.agents, summary.seed, summary.day_seconds
    with EmulatorStack.serve(agents=agents, seed=seed, apply_delay_ms=150) as stack:
        _step(f"Emulators on loopback: Salesforce {stack.salesforce_url}, CXone {stack.cxone_url} ({agents} agents)")
        await write_emulator_config(stack, config_path)
        fast_forward(config_path, day_seconds)
        use_console_gateway(config_path)
        _step(f"Config for this contact center: {config_path}")

        _step("Onboarding (the seed's steps: statuses, profile access, app, OAuth, mapping, users, rules)")
        onboarded = await onboard(str(config_path), return_state=True)
        summary.flow_runs["onboard"] = await _flow_run_name(onboarded)
        if not onboarded.is_completed():
            summary.problem = f"onboarding failed: {onboarded.message}"
            return

        async with open_context(config_path) as ctx, _consoles(stack, config_path):
            rules = await agent_rules(ctx)
            _step(f"Sync running in {SYNC_WINDOW_SECONDS:.0f} s windows; {len(rules)} linked agents with a rule")
            windows = SyncWindows(config_path, SYNC_WINDOW_SECONDS)
            windows.start()
            if await wait_until(lambda: sync_activity(ctx.store).running or bool(windows.states), SYNC_START_TIMEOUT_SECONDS):
                await wait_until(lambda: morning_published(stack, rules), SYNC_START_TIMEOUT_SECONDS)
                await simulate(stack, summary, rules, day_seconds, seed, console, _step)
                if not summary.problem:
                    summary.validation = await _validate(config_path, summary)
                _step("Letting the sync settle: every linked agent agreeing with the rule in both systems")
                await wait_until_converged(ctx, rules, lambda: windows.stopped_early is not None)
            else:
                summary.problem = "the sync did not take its lease in time"
            _step("Finishing the running sync window")
            await windows.stop()
            summary.flow_runs["sync"] = ", ".join([await _flow_run_name(state) for state in windows.states])
            summary.window = await windows.stats()
            if (broken := windows.stopped_early) is not None and not summary.problem:
                summary.problem = f"a sync window ended {broken.name}: {broken.message}"
            _step("Checking every linked agent in both systems through their APIs")
            summary.convergence = await check_convergence(ctx, rules)
        summary.api_requests = await api_requests(stack)


@contextlib.asynccontextmanager
async def _consoles(stack: EmulatorStack, config_path: Path) -> Any:
    with console_gateway(stack, config_path) as url:
        _step(f"Console gateway on {url}; every agent's Salesforce console connected to it")
        yield


async def _validate(config_path: Path, summary: DemoSummary) -> ValidationReport | None:
    _step(f"Validating {VALIDATION_AGENT} (the seed's last section)")
    validated = await validate(str(config_path), VALIDATION_AGENT, timeout_seconds=VALIDATION_TIMEOUT_SECONDS, return_state=True)
    summary.flow_runs["validate"] = await _flow_run_name(validated)
    result = await validated.result(raise_on_failure=False)
    return result if isinstance(result, ValidationReport) else None


__all__ = ["DemoSummary", "demo"]
