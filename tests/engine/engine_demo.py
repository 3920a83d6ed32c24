"""The demo contact center's rule (product.md, "Default Presence") and a small harness for engine tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from presence_sync.engine import (
    PREVIOUS_STATE,
    AgentLink,
    AgentMemory,
    CxoneState,
    CxoneTarget,
    Decision,
    Observation,
    Outcome,
    Rule,
    RuleBook,
    Side,
    SyncPolicy,
    WriteResult,
    decide,
    record_write_results,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TEAM_A, TEAM_B = 101, 102
TEAM_CODES = {
    TEAM_A: frozenset({"Break", "Lunch", "CRM Work", "ACW"}),
    TEAM_B: frozenset({"Break", "Lunch", "ACW"}),
}
AGENT_A, AGENT_B = 1, 2  # one agent on each team

DEMO_PUBLISHER = {
    "Available": "Available_for_Chats",
    "Unavailable: Break": "On_Break",
    "Unavailable: Lunch": "Lunch",
    "Unavailable: CRM Work": "Case_Work",
    "InboundContact": "On_a_Call",
    "OutboundContact": "On_a_Call",
    "ACW": "After_Call_Work",
    "Refused": "Missed_Contact",
}
DEMO_SUBSCRIBER = {
    "Available_for_Chats": CxoneTarget.available(),
    "Available": CxoneTarget.available(),
    "On_Break": CxoneTarget.unavailable("Break"),
    "Lunch": CxoneTarget.unavailable("Lunch"),
    "Case_Work": CxoneTarget.unavailable("CRM Work"),
    "Resume_Previous": PREVIOUS_STATE,
}


def demo_rule(skip_validation: bool = True, *, logouts: bool = True) -> Rule:
    """The demo rule; `logouts=False` configures both logout settings as "nothing"."""
    rule = Rule("Default Presence", DEMO_PUBLISHER, DEMO_SUBSCRIBER, skip_unavailable_code_validation=skip_validation)
    return rule if logouts else replace(rule, on_cxone_logout=None, on_omni_logout=None)


def demo_rulebook(skip_validation: bool = True, *, logouts: bool = True) -> RuleBook:
    rule = demo_rule(skip_validation, logouts=logouts)
    return RuleBook.build([rule], teams={TEAM_A: "Default Presence", TEAM_B: "Default Presence"})


def demo_links(agents: Iterable[int] = (AGENT_A, AGENT_B)) -> dict[int, AgentLink]:
    """Odd agents on Voice Team A, even ones on Voice Team B (no CRM Work)."""
    links = {}
    for agent_id in agents:
        team = TEAM_A if agent_id % 2 else TEAM_B
        links[agent_id] = AgentLink(agent_id, f"005{agent_id:012d}", team, TEAM_CODES[team])
    return links


def available() -> CxoneState:
    return CxoneState("Available")


def unavailable(code: str | None = None) -> CxoneState:
    return CxoneState("Unavailable", code)


def acw() -> CxoneState:
    return CxoneState("Unavailable", "ACW", is_acw=True)


def refused() -> CxoneState:
    return CxoneState("Unavailable", "Refused")


def state(name: str) -> CxoneState:
    return CxoneState(name)


class Harness:
    """Feeds observations to `decide` with a moving clock and keeps the memory, as the sync tick does."""

    def __init__(
        self,
        rulebook: RuleBook | None = None,
        links: Mapping[int, AgentLink] | None = None,
        policy: SyncPolicy | None = None,
    ) -> None:
        self.rulebook = rulebook or demo_rulebook()
        self.links = dict(links or demo_links())
        self.policy = policy or SyncPolicy()
        self.memory: dict[int, AgentMemory] = {}
        self.now = T0
        self._ids = itertools.count(1)

    def at(self, seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    def cx(self, agent_id: int, value: CxoneState, seconds: float | None = None) -> Observation:
        at = self.now if seconds is None else self.at(seconds)
        return Observation(agent_id, Side.CXONE, value, at, f"cx-{next(self._ids)}")

    def sf(self, agent_id: int, status: str | None, seconds: float | None = None) -> Observation:
        at = self.now if seconds is None else self.at(seconds)
        return Observation(agent_id, Side.SALESFORCE, status, at, f"sf-{next(self._ids)}")

    def step(self, *observations: Observation, seconds: float | None = None) -> Decision:
        """Decide at `seconds` after T0 (default: one second after the last step)."""
        self.now = self.at(seconds) if seconds is not None else self.now + timedelta(seconds=1)
        decision = decide(self.rulebook, self.links, self.memory, observations, self.now, self.policy)
        self.memory.update(decision.memory)
        return decision

    def report(self, *results: WriteResult):
        updated, audit = record_write_results(self.memory, results, self.now, self.policy)
        self.memory.update(updated)
        return audit


def outcomes(decision: Decision) -> list[Outcome]:
    return [record.outcome for record in decision.audit]


def targets(decision: Decision) -> list[tuple[int, Side, str]]:
    """(agent, side, target as text) per write."""
    return [(w.agent_id, w.side, w.target if isinstance(w.target, str) else w.target.key) for w in decision.writes]
