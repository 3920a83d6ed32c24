"""engine: `decide()` throughput (observations per second) over one batch of `--agents` agents (default 10,000).

The rule is the demo center's "Default Presence", read from examples/demo-contact-center.yaml through
the config's own parser (the one the sync's rule book uses), assigned to two teams (Team B without
"CRM Work"). Every agent starts from the steady memory the engine itself builds (a morning batch
decided, its writes reported ok, their echoes decided), then three batches are timed:

- `changes`: one human change per agent, half in CXone (Break, Lunch, a call, ACW...) and half in
  Salesforce (On_Break, Lunch, Case_Work, Available...): almost every one decides a write;
- `echoes`: the echo of every write of `changes` (recognised, nothing written);
- `replay`: the `changes` batch again on the memory it produced (duplicates, nothing written).

Baseline, same run, same batches: the trivial loop a decide can't beat, doing only the dict look-ups
of the rule per observation (the agent's link, its rule, the publisher or subscriber row). The figure
is relative: decide's cost per observation in multiples of that loop's. There is no absolute target;
the report says how far decide is from the floor, and checks that the batch decided what it should
(one write per mapped change, none for echoes and replays).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.report import Report
from presence_sync.engine import (
    AgentLink,
    AgentMemory,
    CxoneState,
    Observation,
    Rule,
    RuleBook,
    Side,
    SyncPolicy,
    WriteOutcome,
    WriteResult,
    decide,
    record_write_results,
)
from presence_sync.models.config.contact_center import PresenceRuleConfig

NAME = "engine"
DEFAULT_AGENTS = 10_000
QUICK_AGENTS = 500
EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "demo-contact-center.yaml"
TEAM_A, TEAM_B = 1, 2
TEAM_CODES = {TEAM_A: frozenset({"Break", "Lunch", "CRM Work", "ACW"}), TEAM_B: frozenset({"Break", "Lunch", "ACW"})}
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CX_CHANGES = (
    CxoneState("Unavailable", "Break"),
    CxoneState("Unavailable", "Lunch"),
    CxoneState("InboundContact"),
    CxoneState("Unavailable", "ACW", is_acw=True),
    CxoneState("OutboundContact"),
)
SF_CHANGES = ("On_Break", "Lunch", "Case_Work", "Available")


def demo_rule() -> Rule:
    """The example config's rule, parsed as onboarding and the sync's rule book parse it."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    config = PresenceRuleConfig.model_validate(data["rules"][0])
    publisher = {row.acd: row.salesforce for row in config.publisher}
    subscriber = {row.salesforce: row.acd.subscriber_target() for row in config.subscriber}
    return Rule(config.name, publisher, subscriber, config.skip_unavailable_code_validation)


def _cx(agent_id: int, state: CxoneState, at: datetime, tag: str) -> Observation:
    return Observation(agent_id, Side.CXONE, state, at, f"{agent_id}:{state.key}:{tag}")


def _sf(agent_id: int, status: str | None, at: datetime, tag: str) -> Observation:
    return Observation(agent_id, Side.SALESFORCE, status, at, f"0Hn{agent_id}{tag}")


def echoes_of(decision: Any, at: datetime, tag: str) -> list[Observation]:
    """What each write of `decision` looks like when it lands on its side."""
    seen = []
    for write in decision.writes:
        if write.side is Side.SALESFORCE:
            seen.append(_sf(write.agent_id, str(write.target), at, tag))
        else:
            target = write.target
            seen.append(_cx(write.agent_id, CxoneState(target.state, target.code), at, tag))
    return seen


def _ok(decision: Any) -> list[WriteResult]:
    return [WriteResult(w.agent_id, w.command_id, WriteOutcome.OK) for w in decision.writes]


def _settled(book: RuleBook, links: dict[int, AgentLink], policy: SyncPolicy) -> dict[int, AgentMemory]:
    """Every agent in CXone Available, Salesforce Available_for_Chats, echoes in: the steady morning."""
    memory: dict[int, AgentMemory] = {}
    morning = [_cx(a, CxoneState("Available"), T0, "m") for a in links] + [_sf(a, None, T0, "m") for a in links]
    at = T0 + timedelta(seconds=1)
    decision = decide(book, links, memory, morning, at, policy)
    memory.update(decision.memory)
    changed, _ = record_write_results(memory, _ok(decision), at, policy)
    memory.update(changed)
    at += timedelta(seconds=1)
    decision = decide(book, links, memory, echoes_of(decision, at - timedelta(milliseconds=500), "m"), at, policy)
    memory.update(decision.memory)
    return memory


def baseline_loop(book: RuleBook, links: dict[int, AgentLink], batch: list[Observation]) -> list[Any]:
    """Only the rule's dict look-ups per observation: the link, the rule, the publisher or subscriber row."""
    found = []
    for observation in batch:
        link = links.get(observation.agent_id)
        if link is None:
            continue
        rule = book.rule_for(link)
        if rule is None:
            continue
        value = observation.value
        if observation.side is Side.CXONE:
            found.append(rule.publisher.get(value.key))  # type: ignore[union-attr]
        else:
            found.append(rule.subscriber.get(value))  # type: ignore[arg-type]
    return found


def _best(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The fastest of `repeats` runs (seconds) and the last result; gc off while timing."""
    times, result = [], None
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            result = run()
            times.append(time.perf_counter() - started)
        finally:
            gc.enable()
    return min(times), result


async def run(agents: int | None = None, quick: bool = False, repeats: int | None = None) -> Report:
    agents = agents or (QUICK_AGENTS if quick else DEFAULT_AGENTS)
    repeats = repeats or (2 if quick else 5)
    report = Report(NAME, "decide() throughput over one batch", params={"agents": agents, "repeats": repeats})
    started = time.monotonic()
    policy = SyncPolicy()
    rule = demo_rule()
    book = RuleBook.build([rule], teams={TEAM_A: rule.name, TEAM_B: rule.name})
    links = {
        a: AgentLink(a, f"005{a:012d}", TEAM_A if a % 2 else TEAM_B, TEAM_CODES[TEAM_A if a % 2 else TEAM_B])
        for a in range(1, agents + 1)
    }
    memory = _settled(book, links, policy)
    at = T0 + timedelta(seconds=60)
    changes = [
        _cx(a, CX_CHANGES[a // 2 % len(CX_CHANGES)], at, "c") if a % 2 else _sf(a, SF_CHANGES[a // 2 % len(SF_CHANGES)], at, "c")
        for a in links
    ]
    now = at + timedelta(seconds=1)
    change_time, change_decision = _best(lambda: decide(book, links, memory, changes, now, policy), repeats)
    after_changes = {**memory, **change_decision.memory}
    changed, _ = record_write_results(after_changes, _ok(change_decision), now, policy)
    after_changes.update(changed)
    later = now + timedelta(seconds=1)
    echoes = echoes_of(change_decision, now + timedelta(milliseconds=500), "e")
    echo_time, echo_decision = _best(lambda: decide(book, links, after_changes, echoes, later, policy), repeats)
    replay_time, replay_decision = _best(lambda: decide(book, links, after_changes, changes, later, policy), repeats)
    base = {
        name: _best(lambda batch=batch: baseline_loop(book, links, batch), repeats)[0]
        for name, batch in (("changes", changes), ("echoes", echoes), ("replay", changes))
    }
    report.seconds = time.monotonic() - started

    rows = []
    for name, seconds, batch in (("changes", change_time, changes), ("echoes", echo_time, echoes), ("replay", replay_time, changes)):
        rate = len(batch) / seconds
        base_rate = len(batch) / base[name]
        report.figure(f"{name}_observations", len(batch))
        report.figure(f"{name}_seconds", round(seconds, 5), "s")
        report.figure(f"{name}_obs_per_s", round(rate), "obs/s")
        report.figure(f"{name}_us_per_obs", round(seconds / len(batch) * 1e6, 2), "µs")
        report.figure(f"{name}_baseline_obs_per_s", round(base_rate), "obs/s")
        report.figure(f"{name}_relative_cost", round(seconds / base[name], 1), "x")
        rows.append([
            name, len(batch), f"{seconds * 1000:.1f} ms", f"{rate:,.0f}", f"{seconds / len(batch) * 1e6:.1f}",
            f"{base_rate:,.0f}", f"{seconds / base[name]:.0f}x",
        ])
    report.figure("decide_obs_per_s", report.figures["changes_obs_per_s"], "obs/s")
    report.table(
        f"one batch over {agents:,} agents (best of {repeats})",
        ["batch", "observations", "decide", "obs/s", "µs/obs", "baseline obs/s", "decide / baseline"],
        rows,
    )
    mapped = sum(1 for o in changes if _maps(rule, links[o.agent_id], o))
    writes = len(change_decision.writes)
    report.figure("changes_writes", writes)
    report.figure("changes_mapped", mapped)
    report.figure("echo_writes", len(echo_decision.writes))
    report.figure("replay_writes", len(replay_decision.writes))
    tick_budget = 1.0
    report.note(
        f"at {report.figures['changes_obs_per_s']:,} obs/s, a tick's decide over {agents:,} changes takes "
        f"{change_time * 1000:.0f} ms of the sync's {tick_budget:g} s interval"
    )
    report.check("one write per mapped change", writes == mapped, f"{writes} writes, {mapped} mapped changes")
    report.check("echoes write nothing", not echo_decision.writes, f"{len(echo_decision.writes)} writes")
    report.check("a replayed batch writes nothing", not replay_decision.writes, f"{len(replay_decision.writes)} writes")
    return report


def _maps(rule: Rule, link: AgentLink, observation: Observation) -> bool:
    """Whether the change needs a write on the other side (mapped to something it does not show)."""
    if observation.side is Side.CXONE:
        return rule.publish(observation.value).target not in (None, "Available_for_Chats")  # type: ignore[arg-type]
    target = rule.subscribe(observation.value, link.team_codes, previous=None).target  # type: ignore[arg-type]
    return target is not None and target.key != "Available"


__all__ = ["baseline_loop", "demo_rule", "run"]
