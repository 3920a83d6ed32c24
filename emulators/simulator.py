"""Simulated agents living a working day in fast-forward, through the emulators' `/__emulator/` controls.

Each agent follows a seeded, deterministic script of the day (09:00-17:00): inbound calls with
after-call work (CXone contact actions), a few refused contacts and outbound calls, breaks and lunch
picked in CXone or in the Salesforce Omni widget, case work, a few log-outs and log-ins on either side.
Every state lasts at least `min_dwell_seconds` of real time, so the sync has time to carry it over.
Every change a person makes is recorded as a `HumanChange` with its time; a `PropagationWatcher`
turns them into per-direction propagation latencies by watching the other side.

    with EmulatorStack.serve(agents=200) as stack:
        simulator = AgentSimulator.for_stack(stack, agents=200, seed=7, day_seconds=60)
        watcher = PropagationWatcher(stack, expect=my_rule_expectation)
        simulator.subscribe(watcher.observe)
        report = await simulator.run()

Activities only start when they can finish before the end of the day, and each ends with the agent
back in an available state on the side it started from, so the day ends quiet and comparable.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx

from presence_sync.emulators.demo_center import TEAMS, demo_agents

if TYPE_CHECKING:
    from presence_sync.emulators.stack import EmulatorStack

SideName = Literal["cxone", "salesforce"]
DAY_START_MINUTE = 9 * 60
DAY_MINUTES = 8 * 60
DEFAULT_MIN_DWELL_SECONDS = 2.0
_TEAM_CODES = {team.name: frozenset(team.codes) for team in TEAMS}


@dataclass(frozen=True, slots=True)
class SimulatedAgent:
    """One agent of the demo center as both emulators know it."""

    index: int
    email: str
    team: str
    cxone_agent_id: int
    salesforce_user_id: str | None

    def has_code(self, code: str) -> bool:
        return code in _TEAM_CODES.get(self.team, frozenset())


@dataclass(frozen=True, slots=True)
class HumanChange:
    """A change a simulated person made, with what their side showed right after it.

    `at` is `time.monotonic()` when the control call returned. A CXone change carries the agent's state
    record (as `GET /agents/states` shows it); a Salesforce change the status DeveloperName (None:
    logged out of Omni).
    """

    at: float
    agent: SimulatedAgent
    side: SideName
    action: str
    cxone_state: dict[str, Any] | None = None
    salesforce_status: str | None = None


# --- the script of a day --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One control call `delay_minutes` (virtual) after the previous step."""

    delay_minutes: float
    side: SideName
    action: str
    body: dict[str, Any]
    what: str

    @property
    def changes_state(self) -> bool:
        return self.body.get("action") != "offer"  # an offered contact only rings


@dataclass(frozen=True, slots=True)
class Activity:
    name: str
    steps: tuple[Step, ...]


def _contact(action: str, what: str, delay: float = 0.0) -> Step:
    return Step(delay, "cxone", "contact", {"action": action}, what)


def _cx_state(state: str, reason: str | None, what: str, delay: float = 0.0) -> Step:
    body = {"state": state} if reason is None else {"state": state, "reason": reason}
    return Step(delay, "cxone", "state", body, what)


def _cx_session(open: bool, what: str, delay: float = 0.0) -> Step:
    return Step(delay, "cxone", "session", {"open": open}, what)


def _sf_status(status: str | None, what: str, delay: float = 0.0) -> Step:
    return Step(delay, "salesforce", "presence", {"status": status}, what)


def _back_in_salesforce(rng: random.Random) -> str:
    return "Available" if rng.random() < 0.3 else "Available_for_Chats"


def _inbound_call(rng: random.Random, agent: SimulatedAgent) -> Activity:
    if rng.random() < 0.08:
        return Activity("refused contact", (
            _contact("offer", "is offered a contact"),
            _contact("refuse", "misses the contact (Refused)"),
            _cx_state("Available", None, "makes themself Available again", rng.uniform(1, 3)),
        ))
    return Activity("inbound call", (
        _contact("offer", "is offered a call"),
        _contact("accept", "accepts a call"),
        _contact("end", "ends the call (after-call work)", rng.uniform(3, 12)),
        _contact("end_acw", "finishes after-call work", rng.uniform(1, 3)),
    ))


def _outbound_call(rng: random.Random, agent: SimulatedAgent) -> Activity:
    return Activity("outbound call", (
        _contact("dial", "dials out"),
        _contact("end", "hangs up (after-call work)", rng.uniform(2, 8)),
        _contact("end_acw", "finishes after-call work", rng.uniform(1, 2)),
    ))


def _cxone_break(rng: random.Random, agent: SimulatedAgent) -> Activity:
    return Activity("break in CXone", (
        _cx_state("Unavailable", "Break", "takes a break in CXone"),
        _cx_state("Available", None, "is back from the break (CXone)", rng.uniform(10, 15)),
    ))


def _crm_work(rng: random.Random, agent: SimulatedAgent) -> Activity:
    return Activity("CRM work in CXone", (
        _cx_state("Unavailable", "CRM Work", "does CRM work (CXone)"),
        _cx_state("Available", None, "is done with CRM work (CXone)", rng.uniform(5, 15)),
    ))


def _salesforce_break(rng: random.Random, agent: SimulatedAgent) -> Activity:
    return Activity("break in Salesforce", (
        _sf_status("On_Break", "takes a break in the Omni widget"),
        _sf_status(_back_in_salesforce(rng), "is back from the break (Omni)", rng.uniform(10, 15)),
    ))


def _case_work(rng: random.Random, agent: SimulatedAgent) -> Activity:
    return Activity("case work in Salesforce", (
        _sf_status("Case_Work", "picks Case Work in the Omni widget"),
        _sf_status(_back_in_salesforce(rng), "is done with case work (Omni)", rng.uniform(5, 20)),
    ))


def _lunch(rng: random.Random, agent: SimulatedAgent) -> Activity:
    duration = rng.uniform(25, 35)
    if agent.salesforce_user_id is not None and rng.random() < 0.5:
        return Activity("lunch in Salesforce", (
            _sf_status("Lunch", "goes to lunch (Omni)"),
            _sf_status(_back_in_salesforce(rng), "is back from lunch (Omni)", duration),
        ))
    return Activity("lunch in CXone", (
        _cx_state("Unavailable", "Lunch", "goes to lunch (CXone)"),
        _cx_state("Available", None, "is back from lunch (CXone)", duration),
    ))


def _cxone_logout(rng: random.Random, agent: SimulatedAgent) -> Activity:
    return Activity("log-out of CXone", (
        _cx_session(False, "logs out of the CXone agent app"),
        _cx_session(True, "logs back in to CXone", rng.uniform(5, 20)),
        _cx_state("Available", None, "makes themself Available after logging in", rng.uniform(0.5, 1)),
    ))


def _omni_logout(rng: random.Random, agent: SimulatedAgent) -> Activity:
    return Activity("log-out of Omni", (
        _sf_status(None, "logs out of Omni-Channel"),
        _sf_status("Available_for_Chats", "logs back in to Omni-Channel", rng.uniform(5, 20)),
    ))


_Maker = Callable[[random.Random, SimulatedAgent], Activity]
# (weight, maker, needs a Salesforce user, needs an unavailable code)
_ROUTINE: tuple[tuple[float, _Maker, bool, str | None], ...] = (
    (55, _inbound_call, False, None),
    (6, _outbound_call, False, None),
    (10, _cxone_break, False, "Break"),
    (8, _salesforce_break, True, None),
    (6, _case_work, True, None),
    (5, _crm_work, False, "CRM Work"),
)
_CXONE_LOGOUT_SHARE = 0.04
_OMNI_LOGOUT_SHARE = 0.03


@dataclass(frozen=True, slots=True)
class TimedStep:
    at: float  # seconds after the start of the day
    step: Step


@dataclass(frozen=True, slots=True)
class PlannedActivity:
    name: str
    steps: tuple[TimedStep, ...]


def plan_day(
    agent: SimulatedAgent, *, seed: int, day_seconds: float, min_dwell_seconds: float = DEFAULT_MIN_DWELL_SECONDS
) -> list[PlannedActivity]:
    """The agent's day: activities with real times, deterministic for (seed, agent index).

    A virtual minute lasts `day_seconds / 480` real seconds, and every state at least `min_dwell_seconds`.
    """
    rng = random.Random(f"presence-sync-day:{seed}:{agent.index}")
    scale = day_seconds / DAY_MINUTES
    routine = [
        (weight, maker)
        for weight, maker, needs_user, code in _ROUTINE
        if (not needs_user or agent.salesforce_user_id is not None) and (code is None or agent.has_code(code))
    ]
    extras: list[_Maker] = [_lunch]
    if rng.random() < _CXONE_LOGOUT_SHARE:
        extras.append(_cxone_logout)
    if agent.salesforce_user_id is not None and rng.random() < _OMNI_LOGOUT_SHARE:
        extras.append(_omni_logout)
    rng.shuffle(extras)
    lunch_after = day_seconds * rng.uniform(0.35, 0.5)
    extra_after = [lunch_after if maker is _lunch else day_seconds * rng.uniform(0.1, 0.8) for maker in extras]

    def dwell(minutes: float) -> float:
        return 0.0 if minutes == 0 else max(minutes * scale, min_dwell_seconds)

    planned: list[PlannedActivity] = []
    clock = rng.uniform(0, min_dwell_seconds)
    while True:
        due = [i for i, after in enumerate(extra_after) if clock >= after]
        if due:
            maker = extras.pop(due[0])
            extra_after.pop(due[0])
        else:
            maker = rng.choices([m for _, m in routine], weights=[w for w, _ in routine])[0]
        activity = maker(rng, agent)
        at, steps = clock, []
        for step in activity.steps:
            at += dwell(step.delay_minutes)
            steps.append(TimedStep(at, step))
        if at + min_dwell_seconds > day_seconds:
            break
        planned.append(PlannedActivity(activity.name, tuple(steps)))
        clock = at + dwell(rng.uniform(2, 20))
    return planned


# --- running it -----------------------------------------------------------------------------------


class ControlRefused(Exception):
    """An emulator control refused a step (e.g. no contact routed: the agent was not Available)."""


class SimulationError(Exception):
    """An emulator control failed in a way a person could not cause (e.g. statuses not onboarded)."""


@dataclass
class SimulationReport:
    """What the simulated people did: their changes, and the activities the emulators would not let happen."""

    changes: list[HumanChange] = field(default_factory=list)
    activities: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def changes_by_side(self) -> Counter[str]:
        return Counter(change.side for change in self.changes)


ChangeListener = Callable[[HumanChange], None]


class AgentSimulator:
    """Plays the agents of the demo center for one fast-forwarded working day.

    Example:
        simulator = AgentSimulator.for_stack(stack, agents=50, seed=1, day_seconds=30)
        report = await simulator.run()
        print(len(report.changes), simulator.clock_label())
    """

    def __init__(
        self,
        stack: EmulatorStack,
        agents: Sequence[SimulatedAgent],
        *,
        seed: int = 0,
        day_seconds: float = 60.0,
        min_dwell_seconds: float = DEFAULT_MIN_DWELL_SECONDS,
    ) -> None:
        if day_seconds <= 0:
            raise ValueError(f"day_seconds must be positive, got {day_seconds!r}")
        self.stack = stack
        self.agents = list(agents)
        self.seed = seed
        self.day_seconds = day_seconds
        self.plans = {
            agent.index: plan_day(agent, seed=seed, day_seconds=day_seconds, min_dwell_seconds=min_dwell_seconds)
            for agent in self.agents
        }
        self.report = SimulationReport()
        self._listeners: list[ChangeListener] = []
        self._started: float | None = None

    @classmethod
    def for_stack(
        cls,
        stack: EmulatorStack,
        *,
        agents: int,
        seed: int = 0,
        day_seconds: float = 60.0,
        exclude: Iterable[int] = (),
        min_dwell_seconds: float = DEFAULT_MIN_DWELL_SECONDS,
    ) -> AgentSimulator:
        """Simulate agents 1..`agents` of the seeded demo center, except the indexes in `exclude`."""
        return cls(
            stack,
            roster(stack, agents, exclude=exclude),
            seed=seed,
            day_seconds=day_seconds,
            min_dwell_seconds=min_dwell_seconds,
        )

    def subscribe(self, listener: ChangeListener) -> None:
        """Call `listener` with every human change, as it happens."""
        self._listeners.append(listener)

    @property
    def planned_changes(self) -> int:
        return sum(
            1 for plan in self.plans.values() for activity in plan for timed in activity.steps if timed.step.changes_state
        )

    def elapsed_fraction(self) -> float:
        if self._started is None:
            return 0.0
        return min(1.0, (time.monotonic() - self._started) / self.day_seconds)

    def clock_label(self) -> str:
        """The simulated wall clock, e.g. '13:45'."""
        minute = DAY_START_MINUTE + round(self.elapsed_fraction() * DAY_MINUTES)
        return f"{minute // 60:02d}:{minute % 60:02d}"

    async def run(self) -> SimulationReport:
        """Play the whole day; returns when every agent's last activity is over."""
        async with self.stack.cxone_http() as cxone, self.stack.salesforce_http() as salesforce:
            clients: dict[SideName, httpx.AsyncClient] = {"cxone": cxone, "salesforce": salesforce}
            self._started = time.monotonic()
            await asyncio.gather(*(self._live(agent, clients) for agent in self.agents))
        return self.report

    async def _live(self, agent: SimulatedAgent, clients: dict[SideName, httpx.AsyncClient]) -> None:
        assert self._started is not None
        for activity in self.plans[agent.index]:
            for position, timed in enumerate(activity.steps):
                await asyncio.sleep(max(0.0, self._started + timed.at - time.monotonic()))
                try:
                    change = await self._perform(agent, timed.step, clients[timed.step.side])
                except ControlRefused:
                    # Only a first step can be refused (a later one follows from it): skip the activity.
                    self.report.skipped[activity.name] += 1
                    break
                if position == 0:
                    self.report.activities[activity.name] += 1
                if change is not None:
                    self.report.changes.append(change)
                    for listener in self._listeners:
                        listener(change)

    async def _perform(self, agent: SimulatedAgent, step: Step, client: httpx.AsyncClient) -> HumanChange | None:
        if step.side == "salesforce":
            assert agent.salesforce_user_id is not None
            answer = await _control(client, "PUT", f"/__emulator/users/{agent.salesforce_user_id}/presence", step.body)
            if not answer["changed"]:
                return None
            return HumanChange(time.monotonic(), agent, "salesforce", step.what, salesforce_status=answer["status"])
        before = self.stack.cxone.clock.now()
        path = {
            "contact": f"/__emulator/agents/{agent.cxone_agent_id}/contact",
            "state": f"/__emulator/agents/{agent.cxone_agent_id}/state",
            "session": f"/__emulator/agents/{agent.cxone_agent_id}/session",
        }[step.action]
        method = "POST" if step.action == "contact" else "PUT"
        answer = await _control(client, method, path, step.body)
        record = answer["state"] if step.action == "session" else answer
        if not step.changes_state or _parse_time(record["startDate"]) < before:
            return None  # asked for the state the agent already had: nothing changed
        return HumanChange(time.monotonic(), agent, "cxone", step.what, cxone_state=record)


async def _control(client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.request(method, path, json=body)
    if response.status_code == 409:
        raise ControlRefused(response.text)
    if not response.is_success:
        raise SimulationError(
            f"the emulator refused {method} {path} (HTTP {response.status_code}: {response.text}); "
            "the simulated day needs an onboarded contact center (presence statuses and profile access)"
        )
    answer: dict[str, Any] = response.json()
    return answer


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def roster(stack: EmulatorStack, agents: int, *, exclude: Iterable[int] = ()) -> list[SimulatedAgent]:
    """The seeded agents 1..`agents` with their CXone agent ids and Salesforce user ids (None: no user)."""
    skipped = set(exclude)
    found: list[SimulatedAgent] = []
    for spec in demo_agents(agents):
        if spec.index in skipped:
            continue
        cxone_agent = stack.cxone.tenant.find_agent(spec.email)
        user = stack.salesforce.user_by_username(spec.email) if spec.has_salesforce_user else None
        found.append(
            SimulatedAgent(spec.index, spec.email, spec.team, int(cxone_agent["agentId"]), user.id if user else None)
        )
    return found


# --- measuring propagation ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the other side should show once a human change has propagated."""

    side: SideName
    label: str
    arrived: Callable[[Any], bool]
    """Given what `side` shows (a CXone state record, or a Salesforce DeveloperName/None)."""


Expect = Callable[[HumanChange], Expectation | None]


@dataclass
class Propagation:
    """Latencies (seconds) per direction ("cxone->salesforce", "salesforce->cxone") and what was not measured."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"cxone->salesforce": [], "salesforce->cxone": []})
    superseded: int = 0
    already_there: int = 0
    not_carried: int = 0
    missed: list[tuple[HumanChange, Expectation]] = field(default_factory=list)


def direction_of(change: HumanChange) -> str:
    return "cxone->salesforce" if change.side == "cxone" else "salesforce->cxone"


class PropagationWatcher:
    """Watches the other side of every human change (in-process, without API calls) until it shows the
    expected value; a newer change of the same agent supersedes an older one that has not arrived yet.

    Example:
        watcher = PropagationWatcher(stack, expect)
        simulator.subscribe(watcher.observe)
        async with watcher.watching():
            await simulator.run()
            await watcher.drain(timeout=10)
        watcher.result.latencies["cxone->salesforce"]
    """

    def __init__(self, stack: EmulatorStack, expect: Expect, *, poll_seconds: float = 0.02) -> None:
        self.stack = stack
        self.expect = expect
        self.poll_seconds = poll_seconds
        self.result = Propagation()
        self._pending: dict[int, tuple[HumanChange, Expectation]] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def observe(self, change: HumanChange) -> None:
        """Start watching for `change` on the other side (the simulator calls this)."""
        previous = self._pending.pop(change.agent.index, None)
        if previous is not None:
            self.result.superseded += 1
        expectation = self.expect(change)
        if expectation is None:
            self.result.not_carried += 1
            return
        if expectation.arrived(self._shown(change.agent, expectation.side)):
            self.result.already_there += 1
            return
        self._pending[change.agent.index] = (change, expectation)

    def check(self) -> None:
        """Record every pending change whose other side now shows the expected value."""
        now = time.monotonic()
        for index, (change, expectation) in list(self._pending.items()):
            if expectation.arrived(self._shown(change.agent, expectation.side)):
                del self._pending[index]
                self.result.latencies[direction_of(change)].append(now - change.at)

    async def drain(self, timeout: float) -> None:
        """Wait until nothing is pending or `timeout` seconds passed; what is left counts as missed."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            self.check()
            await asyncio.sleep(self.poll_seconds)
        self.check()
        self.result.missed.extend(self._pending.values())
        self._pending.clear()

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[PropagationWatcher]:
        """Check pending changes every `poll_seconds` while the block runs."""
        task = asyncio.create_task(self._watch())
        try:
            yield self
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(self.poll_seconds)

    def _shown(self, agent: SimulatedAgent, side: SideName) -> Any:
        if side == "salesforce":
            assert agent.salesforce_user_id is not None
            return self.stack.salesforce.current_presence(agent.salesforce_user_id)
        return self.stack.cxone.tenant.state(agent.cxone_agent_id)
