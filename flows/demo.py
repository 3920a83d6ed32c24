"""The demo (`presence-sync demo`): the whole product against built-in emulators, on Prefect's ephemeral server.

Both emulators on loopback, seeded with the demo contact center; a ready config; the `onboard` flow;
the `sync` flow running while simulated agents live a working day in fast-forward
(`emulators.simulator`); a `validate` run for one agent; then a summary: propagation latency per
direction (p50/p95/max, measured by watching the other side of every human change), writes, echoes
suppressed, conflicts, unmapped, failures, and whether both sides agree with the rule for every linked
agent at the end, read back through the APIs.

    summary = await demo(agents=50, minutes=0.5)      # a Prefect flow; onboard, sync, validate are subflows
    summary.ok
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.states import State
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from presence_sync.emulators.demo_center import DEFAULT_AGENT_COUNT
from presence_sync.emulators.simulator import (
    DAY_MINUTES,
    AgentSimulator,
    Expect,
    Expectation,
    HumanChange,
    Propagation,
    PropagationWatcher,
    SimulationError,
)
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.engine import CxoneState, Rule
from presence_sync.flows.onboard import onboard
from presence_sync.flows.run_names import demo_run_name
from presence_sync.flows.sync import sync
from presence_sync.flows.validate import ValidationReport, artifact_key, sync_activity, validate
from presence_sync.tasks.context import Context, open_context
from presence_sync.tasks.sync.prefect_tasks import WINDOW_ARTIFACT_KEY
from presence_sync.tasks.sync.runner import load_setup
from presence_sync.tasks.sync.summary import DIRECTIONS, WindowStats, percentile
from presence_sync.tasks.sync.window import WindowResult

DEFAULT_MINUTES = 1.0
SETTLE_SECONDS = 6.0
VALIDATION_TIMEOUT_SECONDS = 15.0
# Windows as the sync deployment runs them, only shorter: the demo ends at most one window after its work.
SYNC_WINDOW_SECONDS = 10.0
WINDOW_OVERLAP_SECONDS = 3.0  # the deployment's windows overlap the same way (prefect.yaml), only longer
SYNC_START_TIMEOUT_SECONDS = 60.0
CONVERGE_TIMEOUT_SECONDS = 30.0
VALIDATION_AGENT = "agent1@example.com"
DAY_SECONDS = DAY_MINUTES * 60

console = Console(highlight=False)


# --- what the summary holds --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latency:
    """Propagation latency of one direction, in seconds."""

    count: int
    p50: float | None
    p95: float | None
    max: float | None

    @classmethod
    def of(cls, samples: list[float]) -> Latency:
        ordered = sorted(samples)
        return cls(len(ordered), percentile(ordered, 50), percentile(ordered, 95), ordered[-1] if ordered else None)


@dataclass(frozen=True, slots=True)
class Disagreement:
    agent_id: int
    cxone: str
    salesforce: str
    rule_says: str


@dataclass
class Convergence:
    """Whether every linked agent's two sides agree with the rule, as read through both APIs."""

    checked: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    logged_out: int = 0

    @property
    def converged(self) -> bool:
        return self.checked > 0 and not self.disagreements


@dataclass
class DemoSummary:
    agents: int
    day_seconds: float
    seed: int
    config_path: str
    problem: str = ""
    changes: Counter[str] = field(default_factory=Counter)
    activities: Counter[str] = field(default_factory=Counter)
    latency: dict[str, Latency] = field(default_factory=dict)
    propagation: Propagation = field(default_factory=Propagation)
    window: WindowStats | None = None
    api_requests: dict[str, dict[str, int]] = field(default_factory=dict)
    validation: ValidationReport | None = None
    convergence: Convergence = field(default_factory=Convergence)
    flow_runs: dict[str, str] = field(default_factory=dict)
    artifacts: tuple[str, ...] = ("demo-summary", "onboarding-outcome", WINDOW_ARTIFACT_KEY, artifact_key(VALIDATION_AGENT))

    @property
    def ok(self) -> bool:
        validated = self.validation is not None and self.validation.passed
        return not self.problem and validated and self.convergence.converged

    def figures(self) -> list[tuple[str, str, str]]:
        """(figure, CXone → Salesforce, Salesforce → CXone): what the people did and how fast it arrived
        (measured on the other side), then the sync window's own figures."""
        rows: list[tuple[str, str, str]] = [
            ("human changes", *(str(self.changes[side]) for side in ("cxone", "salesforce"))),
            ("propagation p50 / p95 / max", *(_latency_text(self.latency.get(d.value)) for d in DIRECTIONS)),
            ("changes timed", *(str(self.latency[d.value].count if d.value in self.latency else 0) for d in DIRECTIONS)),
        ]
        return rows + (self.window.figures() if self.window is not None else [])


def _latency_text(latency: Latency | None) -> str:
    if latency is None or latency.count == 0:
        return "-"
    return f"{latency.p50:.2f} / {latency.p95:.2f} / {latency.max:.2f} s"


# --- the rule, per agent ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentRule:
    """A linked agent's rule and the unavailable codes of their team."""

    rule: Rule
    team_codes: frozenset[str]
    sf_user_id: str


async def agent_rules(ctx: Context) -> dict[int, AgentRule]:
    """Every linked agent with a rule, by CXone agent id, read exactly as the sync reads them."""
    setup = await load_setup(ctx)
    rules: dict[int, AgentRule] = {}
    for agent_id, link in setup.links.items():
        rule = setup.rulebook.rule_for(link)
        if rule is not None:
            rules[agent_id] = AgentRule(rule, link.team_codes, link.sf_user_id)
    return rules


def rule_expectation(rules: dict[int, AgentRule]) -> Expect:
    """What the other side of a human change should show once the sync carried it (None: nothing to carry)."""

    def expect(change: HumanChange) -> Expectation | None:
        agent = rules.get(change.agent.cxone_agent_id)
        if agent is None:
            return None
        if change.side == "cxone":
            assert change.cxone_state is not None
            status = agent.rule.publish(CxoneState.from_api(change.cxone_state)).target
            if status is None:
                return None
            return Expectation("salesforce", status, lambda shown: shown == status)
        target = agent.rule.subscribe(change.salesforce_status, agent.team_codes, previous=None).target
        if target is None:
            return None
        return Expectation("cxone", target.key, lambda shown: target.matches(CxoneState.from_api(shown)))

    return expect


def agrees(agent: AgentRule, cxone: CxoneState, status: str | None) -> tuple[bool, str]:
    """Whether CXone and Salesforce agree with the agent's rule; with what the rule says when not."""
    if cxone.is_logged_out or status is None:
        return True, "logged out: the rule leaves the other side as it is"
    published = agent.rule.publish(cxone)
    if published.target == status:
        return True, published.reason
    subscribed = agent.rule.subscribe(status, agent.team_codes, previous=None)
    if subscribed.target is not None:
        return subscribed.target.matches(cxone), f"{status} → CXone {subscribed.target.key}"
    if subscribed.row is not None:  # Previous State: whatever CXone state the agent returned to
        return cxone.is_settable, subscribed.reason
    if published.target is None:
        return True, "neither side's state is mapped"
    return False, f"CXone {cxone.key} → Salesforce {published.target}"


async def check_convergence(ctx: Context, rules: dict[int, AgentRule]) -> Convergence:
    """Read every agent's state in both systems (through their APIs) and compare with the rule."""
    states = {int(s["agentId"]): CxoneState.from_api(s) for s in (await ctx.cxone.agent_states()).states}
    spells = await ctx.salesforce.query(
        "SELECT UserId, ServicePresenceStatus.DeveloperName FROM UserServicePresence WHERE IsCurrentState = true"
    )
    statuses = {s["UserId"]: (s.get("ServicePresenceStatus") or {}).get("DeveloperName") for s in spells}
    result = Convergence()
    for agent_id, agent in sorted(rules.items()):
        cxone = states.get(agent_id)
        if cxone is None:
            continue
        status = statuses.get(agent.sf_user_id)
        result.checked += 1
        result.logged_out += cxone.is_logged_out or status is None
        agreed, why = agrees(agent, cxone, status)
        if not agreed:
            result.disagreements.append(Disagreement(agent_id, cxone.key, status or "Offline", why))
    return result


# --- running it ----------------------------------------------------------------------------------------


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


async def _wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def _flow_run_name(state: State[Any]) -> str:
    flow_run_id = state.state_details.flow_run_id
    if flow_run_id is None:
        return "?"
    async with get_client() as client:
        return (await client.read_flow_run(flow_run_id)).name


async def _api_requests(stack: EmulatorStack) -> dict[str, dict[str, int]]:
    requests = {}
    for system, http in (("Salesforce", stack.salesforce_http()), ("CXone", stack.cxone_http())):
        async with http as client:
            stats = (await client.get("/__emulator/stats")).json()
        requests[system] = {"total": stats["total_requests"], "writes": stats["write_requests"]}
    return requests


def _morning_published(stack: EmulatorStack, rules: dict[int, AgentRule]) -> bool:
    """Whether the sync's first tick has put every linked agent's CXone state into Salesforce (read in-process)."""
    return all(stack.salesforce.current_presence(agent.sf_user_id) is not None for agent in rules.values())


def _step(text: str) -> None:
    console.print(f"[bold cyan]▸[/] {text}")


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
        return combined([r.stats for r in results if isinstance(r, WindowResult)])


def combined(windows: list[WindowStats]) -> WindowStats:
    """Several windows' counters added up, field by field (counts add, samples and anomalies concatenate)."""
    total = WindowStats()
    for window in windows:
        for item in dataclasses.fields(WindowStats):
            mine, theirs = getattr(total, item.name), getattr(window, item.name)
            if isinstance(mine, dict) and not isinstance(mine, Counter):
                for key, value in theirs.items():
                    mine[key] = mine[key] + value if key in mine else value
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(total, item.name, mine + theirs)
    return total


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
    summary = DemoSummary(agents, day_seconds, seed, str(config_path))
    with EmulatorStack.serve(agents=agents, seed=seed, apply_delay_ms=150) as stack:
        _step(f"Emulators on loopback: Salesforce {stack.salesforce_url}, CXone {stack.cxone_url} ({agents} agents)")
        await stack.write_config(config_path)
        fast_forward(config_path, day_seconds)
        _step(f"Config for this contact center: {config_path}")

        _step("Onboarding (the seed's steps: statuses, profile access, app, OAuth, mapping, users, rule)")
        onboarded = await onboard(str(config_path), return_state=True)
        summary.flow_runs["onboard"] = await _flow_run_name(onboarded)
        if not onboarded.is_completed():
            summary.problem = f"onboarding failed: {onboarded.message}"
            return await _finish(summary)

        async with open_context(config_path) as ctx:
            rules = await agent_rules(ctx)
            _step(f"Sync running in {SYNC_WINDOW_SECONDS:.0f} s windows; {len(rules)} linked agents with a rule")
            windows = SyncWindows(config_path, SYNC_WINDOW_SECONDS)
            windows.start()
            if await _wait_until(lambda: sync_activity(ctx.store).running or bool(windows.states), SYNC_START_TIMEOUT_SECONDS):
                await _wait_until(lambda: _morning_published(stack, rules), SYNC_START_TIMEOUT_SECONDS)
                await _simulate(stack, summary, rules, day_seconds, seed)
                if not summary.problem:
                    summary.validation = await _validate(config_path, summary)
                _step("Letting the sync settle: every linked agent agreeing with the rule in both systems")
                await _wait_until_converged(ctx, rules, windows)
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
        summary.api_requests = await _api_requests(stack)
    return await _finish(summary)


async def _validate(config_path: Path, summary: DemoSummary) -> ValidationReport | None:
    _step(f"Validating {VALIDATION_AGENT} (the seed's last section)")
    validated = await validate(str(config_path), VALIDATION_AGENT, timeout_seconds=VALIDATION_TIMEOUT_SECONDS, return_state=True)
    summary.flow_runs["validate"] = await _flow_run_name(validated)
    result = await validated.result(raise_on_failure=False)
    return result if isinstance(result, ValidationReport) else None


async def _wait_until_converged(ctx: Context, rules: dict[int, AgentRule], windows: SyncWindows) -> None:
    """Until both sides agree for every agent (read through the APIs), a window failed, or the settle time is up."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT_SECONDS
    while windows.stopped_early is None and time.monotonic() < deadline:
        if (await check_convergence(ctx, rules)).converged:
            return
        await asyncio.sleep(1.0)


async def _simulate(
    stack: EmulatorStack, summary: DemoSummary, rules: dict[int, AgentRule], day_seconds: float, seed: int
) -> None:
    simulator = AgentSimulator.for_stack(stack, agents=summary.agents, seed=seed, day_seconds=day_seconds)
    watcher = PropagationWatcher(stack, rule_expectation(rules), poll_seconds=0.05)
    simulator.subscribe(watcher.observe)
    _step(f"Simulated agents live a working day in {day_seconds:.0f} s ({simulator.planned_changes} changes planned)")
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


async def _finish(summary: DemoSummary) -> DemoSummary:
    await acreate_markdown_artifact(key="demo-summary", markdown=summary_markdown(summary), description="presence-sync demo")
    return summary


def summary_markdown(summary: DemoSummary) -> str:
    lines = [
        f"# presence-sync demo: {'✅ passed' if summary.ok else '❌ failed'}",
        "",
        f"{summary.agents} agents, a working day in {summary.day_seconds:.0f} s (seed {summary.seed}).",
        "",
        "| | CXone → Salesforce | Salesforce → CXone |",
        "|---|---|---|",
        *(f"| {figure} | {a} | {b} |" for figure, a, b in summary.figures()),
        "",
        f"Converged: {summary.convergence.checked - len(summary.convergence.disagreements)} of "
        f"{summary.convergence.checked} linked agents agree with the rule.",
    ]
    if summary.validation is not None:
        lines.append(f"Validation: {summary.validation.headline}.")
    if summary.problem:
        lines.append(f"Problem: {summary.problem}")
    return "\n".join(lines)


__all__ = ["DemoSummary", "Latency", "agrees", "check_convergence", "demo", "rule_expectation", "summary_markdown"]
