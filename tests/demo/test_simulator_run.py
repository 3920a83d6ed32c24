"""The simulator against the in-process emulators: what it records, and how the watcher measures it."""

from __future__ import annotations

import dataclasses

from presence_sync.emulators.simulator import (
    AgentSimulator,
    Expectation,
    HumanChange,
    PropagationWatcher,
    roster,
)
from presence_sync.emulators.stack import EmulatorStack

AGENTS = 8


def cxone_only(stack: EmulatorStack) -> list:
    return [dataclasses.replace(agent, salesforce_user_id=None) for agent in roster(stack, AGENTS)]


async def test_a_short_day_records_every_change_and_ends_available() -> None:
    stack = EmulatorStack.in_process(agents=AGENTS, seed=1)
    simulator = AgentSimulator(stack, cxone_only(stack), seed=5, day_seconds=3.0, min_dwell_seconds=0.15)
    heard: list[HumanChange] = []
    simulator.subscribe(heard.append)

    report = await simulator.run()

    assert heard == report.changes
    assert report.changes_by_side() == {"cxone": len(report.changes)}
    # Nothing else touched the agents, so every planned change happened.
    assert len(report.changes) == simulator.planned_changes
    names = {change.cxone_state["agentStateName"] for change in report.changes}
    assert {"InboundContact", "Available"} <= names
    for agent in simulator.agents:
        assert stack.cxone.tenant.state(agent.cxone_agent_id)["agentStateName"] == "Available"
    # Each recorded state is what CXone showed right after the change.
    last_by_agent = {change.agent.cxone_agent_id: change for change in report.changes}
    for agent_id, change in last_by_agent.items():
        assert change.cxone_state == stack.cxone.tenant.state(agent_id)


async def test_an_activity_the_emulator_refuses_is_skipped_whole() -> None:
    stack = EmulatorStack.in_process(agents=AGENTS, seed=1)
    agents = cxone_only(stack)
    for agent in agents:  # nobody is Available: no contact can be offered until a break ends
        stack.cxone.tenant.set_state(agent.cxone_agent_id, "Unavailable", "Lunch")
    simulator = AgentSimulator(stack, agents, seed=5, day_seconds=2.0, min_dwell_seconds=0.15)

    report = await simulator.run()

    skipped = sum(report.skipped.values())
    assert report.skipped["inbound call"] > 0
    # A skipped activity records none of its changes (a call is 3 of them, a refused contact 2).
    assert len(report.changes) <= simulator.planned_changes - 2 * skipped
    assert sum(report.activities.values()) + skipped == sum(len(plan) for plan in simulator.plans.values())


def change_of(stack: EmulatorStack, index: int = 1, at: float = 0.0) -> HumanChange:
    agent = roster(stack, AGENTS)[index - 1]
    return HumanChange(at, agent, "salesforce", "takes a break in the Omni widget", salesforce_status="On_Break")


def break_in_cxone(change: HumanChange) -> Expectation:
    return Expectation("cxone", "Unavailable:Break", lambda shown: shown["outStateDescription"] == "Break")


async def test_the_watcher_times_a_change_once_the_other_side_shows_it() -> None:
    stack = EmulatorStack.in_process(agents=AGENTS, seed=1)
    watcher = PropagationWatcher(stack, break_in_cxone)
    change = change_of(stack)
    watcher.observe(change)
    watcher.check()
    assert watcher.pending == 1

    stack.cxone.tenant.set_state(change.agent.cxone_agent_id, "Unavailable", "Break")
    watcher.check()

    assert watcher.pending == 0
    assert len(watcher.result.latencies["salesforce->cxone"]) == 1
    assert watcher.result.latencies["cxone->salesforce"] == []


async def test_the_watcher_counts_what_it_can_not_measure() -> None:
    stack = EmulatorStack.in_process(agents=AGENTS, seed=1)
    watcher = PropagationWatcher(stack, break_in_cxone)
    first = change_of(stack, 1)
    watcher.observe(first)
    watcher.observe(change_of(stack, 1))  # the same agent changes again before the first arrived
    assert (watcher.result.superseded, watcher.pending) == (1, 1)

    stack.cxone.tenant.set_state(change_of(stack, 2).agent.cxone_agent_id, "Unavailable", "Break")
    watcher.observe(change_of(stack, 2))  # the other side already shows it: nothing to carry
    assert watcher.result.already_there == 1

    unmapped = PropagationWatcher(stack, lambda change: None)
    unmapped.observe(change_of(stack, 3))
    assert (unmapped.result.not_carried, unmapped.pending) == (1, 0)

    await watcher.drain(timeout=0)
    assert [change.agent for change, _ in watcher.result.missed] == [first.agent]
    assert watcher.pending == 0
