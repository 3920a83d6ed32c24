"""The demo's working day: the config fast-forwarded, simulated agents living the day while the
propagation of each change is timed, and the waits around it.

    fast_forward(config_path, day_seconds=60)
    await simulate(stack, summary, rules, day_seconds=60, seed=0, console=console)
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from presence_sync.emulators.simulator import DAY_MINUTES, AgentSimulator, PropagationWatcher, SimulationError
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.tasks.context import Context
from presence_sync.tasks.demo.convergence import AgentRule, check_convergence, rule_expectation
from presence_sync.tasks.demo.summary import DemoSummary, Latency
from presence_sync.tasks.sync.summary import DIRECTIONS

DAY_SECONDS = DAY_MINUTES * 60
SETTLE_SECONDS = 6.0
CONVERGE_TIMEOUT_SECONDS = 30.0


def fast_forward(config_path: Path, day_seconds: float) -> None:
    """Scale the config's flap window to the fast-forwarded day, so a normal day is not reported as flapping.

    Other settings stay real: the sync polls every second as it would in production.
    """
    speedup = DAY_SECONDS / day_seconds
    text = config_path.read_text(encoding="utf-8")
    setting = re.compile(r"^(?P<indent>\s*)flap_window_seconds:\s*(?P<seconds>[0-9.]+)\s*$", re.MULTILINE)
    match = setting.search(text)
    if match is None:
        raise ValueError(f"{config_path} has no sync.flap_window_seconds line to scale for the demo's fast-forward")
    scaled = float(match["seconds"]) / speedup
    line = f"{match['indent']}flap_window_seconds: {scaled:.6g}  # {match['seconds']} s of a day played {speedup:.0f}x faster"
    config_path.write_text(text[: match.start()] + line + text[match.end() :], encoding="utf-8")


async def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def wait_until_converged(ctx: Context, rules: dict[int, AgentRule], stopped: Callable[[], bool]) -> None:
    """Until both sides agree for every agent (read through the APIs), `stopped()`, or the settle time is up."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT_SECONDS
    while not stopped() and time.monotonic() < deadline:
        if (await check_convergence(ctx, rules)).converged:
            return
        await asyncio.sleep(1.0)


def morning_published(stack: EmulatorStack, rules: dict[int, AgentRule]) -> bool:
    """Whether the sync's first tick has put every linked agent's CXone state into Salesforce (read in-process)."""
    return all(stack.salesforce.current_presence(agent.sf_user_id) is not None for agent in rules.values())


async def api_requests(stack: EmulatorStack) -> dict[str, dict[str, int]]:
    """Requests (and writes) each emulator served, by system."""
    requests = {}
    for system, http in (("Salesforce", stack.salesforce_http()), ("CXone", stack.cxone_http())):
        async with http as client:
            stats = (await client.get("/__emulator/stats")).json()
        requests[system] = {"total": stats["total_requests"], "writes": stats["write_requests"]}
    return requests


async def _live_day(simulator: AgentSimulator, watcher: PropagationWatcher, progress: Progress) -> None:
    """Run the simulated day with a progress bar: the simulated clock, changes made, carried and in flight."""
    bar = progress.add_task("09:00", total=1.0, changes="")

    async def refresh() -> None:
        while True:
            measured = sum(len(v) for v in watcher.result.latencies.values())
            progress.update(
                bar,
                completed=simulator.elapsed_fraction(),
                description=f"working day {simulator.clock_label()}",
                changes=f"{len(simulator.report.changes)} human changes · {measured} carried over · "
                f"{watcher.pending} in flight",
            )
            await asyncio.sleep(0.25)

    ticker = asyncio.create_task(refresh())
    try:
        await simulator.run()
        await watcher.drain(SETTLE_SECONDS)
    finally:
        ticker.cancel()
        progress.update(bar, completed=1.0, description="working day 17:00")


async def simulate(
    stack: EmulatorStack,
    summary: DemoSummary,
    rules: dict[int, AgentRule],
    day_seconds: float,
    seed: int,
    console: Console,
    say: Callable[[str], None],
) -> None:
    """Simulated agents live a working day in `day_seconds`; the summary gets what they did and how fast it arrived."""
    simulator = AgentSimulator.for_stack(stack, agents=summary.agents, seed=seed, day_seconds=day_seconds)
    watcher = PropagationWatcher(stack, rule_expectation(rules), poll_seconds=0.05)
    simulator.subscribe(watcher.observe)
    say(f"Simulated agents live a working day in {day_seconds:.0f} s ({simulator.planned_changes} changes planned)")
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TextColumn("{task.fields[changes]}"))
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            async with watcher.watching():
                await _live_day(simulator, watcher, progress)
    except SimulationError as error:
        summary.problem = str(error)
    summary.changes = simulator.report.changes_by_side()
    summary.activities = simulator.report.activities
    summary.propagation = watcher.result
    summary.latency = {d.value: Latency.of(watcher.result.latencies[d.value]) for d in DIRECTIONS}
