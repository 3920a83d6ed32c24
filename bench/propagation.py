"""propagation: how long a person's change takes to show on the other side, per direction, against its floor.

Setup: the demo contact center (`--agents`, default 200) on loopback emulators (real HTTP, served in
the bench's process), onboarded; the sync running as the sync flow runs it (`run_window`, the config's
default 1 s interval) in a process of its own (`python -m bench.child sync`), as against remote
systems in production; the Salesforce presence applier acting `apply_delay_ms` (150 ms, as in the
demo) after a command arrives.
Once the morning publish has settled, single human changes are made through the emulators'
`/__emulator/` controls at random moments, each on a different agent, alternating directions; the
moments are stratified (one in each of equal slots of 1/5 interval, at a random point of it, from a
start not in step with the ticks), so their phases in the poll interval are near-uniform, as a
person's are (the per-direction table shows how long they actually waited for the next tick):

- CXone → Salesforce: `PUT /__emulator/agents/{id}/state` Unavailable: Break → wait for On_Break;
- Salesforce → CXone: `PUT /__emulator/users/{id}/presence` Lunch → wait for Unavailable: Lunch.

Latency = from the moment the control request is sent (the change lands within a millisecond of it
on these emulators; the answer may come back later, so its return is not used) until the other side
shows the mapped state, read in-process every `w` = 5 ms (`emulators.simulator.PropagationWatcher`).

The floor (measured in the same run, on the same emulators, with a bare httpx client in a process of
its own as the sync's is, after the sync stopped) is what any poll-based sync at this interval must take, with nothing of its own:

    floor(X -> Y) = U * I + r_read(X) + r_write(Y) + d_apply(Y) + V * w      U, V ~ Uniform(0, 1)

- `I`: the poll interval (the config's `sync.interval_seconds`, default 1 s). A change lands
  uniformly within an interval, so it waits U * I for the next poll: I/2 on average, I at worst.
- `r_read(X)`: the round trip of the poll that sees the change (median of sequential requests):
  CXone `GET /agents/states?updatedSince=...`; Salesforce the sync's own spell query (with its overlap).
- `r_write(Y)`: the round trip of the one write: Salesforce a 1-record `POST /composite/sobjects`
  presence command; CXone `POST /agent-sessions/{id}/state` on a joined session.
- `d_apply(Y)`: Salesforce only, the presence applier's delay (the console's `apply_delay_ms`, read
  from `GET /__emulator/users/{id}`); 0 for CXone, which applies the state when it answers.
- `V * w`: the far side's own poll wait: the watcher looks at the far side every `w`, so a change
  that has arrived is seen V * w later (w/2 on average).

So the floor's p50 is I/2 + r_read + r_write + d_apply + w/2, its p95 0.95 I + the same, and its
worst I + r_read + r_write + d_apply + w. Target (the team's): the measured p50 within 1.5x of the
floor's p50, each direction. Checks: every change arrived (none missed), exactly one write per
change and none back (no ping-pong).
"""

from __future__ import annotations

import asyncio
import bisect
import random
import statistics
import time
from typing import Any

from bench.center import BareProcess, BenchError, Center, SyncProcess, WindowSummary, onboarded_center, status_ids, wait_all
from bench.report import Report
from presence_sync.connectors.presence import spell_query
from presence_sync.emulators.faults import iso_z
from presence_sync.emulators.simulator import Expect, HumanChange, PropagationWatcher, SimulatedAgent, roster
from presence_sync.tasks.demo import AgentRule, rule_expectation
from presence_sync.tasks.sync.sources import SPELL_OVERLAP
from presence_sync.tasks.sync.summary import percentile

NAME = "propagation"
DEFAULT_AGENTS = 200
QUICK_AGENTS = 40
DEFAULT_TRIALS = 100  # per direction: the p50 of U*I has a standard error of ~I/(2*sqrt(n))
QUICK_TRIALS = 6
CHANGES_PER_SECOND = 5.0
APPLY_DELAY_MS = 150
WATCH_SECONDS = 0.005  # w
FLOOR_SAMPLES = 25
TARGET_RATIO = 1.5
DIRECTIONS = ("cxone->salesforce", "salesforce->cxone")
LABELS = {"cxone->salesforce": "CXone → Salesforce", "salesforce->cxone": "Salesforce → CXone"}
CX_CHANGE = {"state": "Unavailable", "reason": "Break"}
SF_CHANGE = "Lunch"


def _expectation(center: Center) -> Expect:
    """What the other side shows once the sync carried a change: the demo's own rule expectation."""
    links = center.links
    return rule_expectation({
        agent_id: AgentRule(rule, links[agent_id].team_codes, links[agent_id].sf_user_id)
        for agent_id, rule in center.rules.items()
    })


async def _trial(
    center: Center, http: dict[str, Any], agent: SimulatedAgent, side: str, at: float, watcher: PropagationWatcher,
    sent_at: dict[str, list[float]],
) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    sent = time.monotonic()
    sent_at["cxone->salesforce" if side == "cxone" else "salesforce->cxone"].append(sent)
    if side == "cxone":
        answer = await http["cxone"].put(f"/__emulator/agents/{agent.cxone_agent_id}/state", json=CX_CHANGE)
        answer.raise_for_status()
        change = HumanChange(sent, agent, "cxone", "takes a break in CXone", cxone_state=answer.json())
    else:
        answer = await http["salesforce"].put(
            f"/__emulator/users/{agent.salesforce_user_id}/presence", json={"status": SF_CHANGE}
        )
        answer.raise_for_status()
        change = HumanChange(sent, agent, "salesforce", "goes to lunch in Omni", salesforce_status=answer.json()["status"])
    watcher.observe(change)


async def measure_floor_parts(center: Center, agent: SimulatedAgent, samples: int) -> dict[str, float]:
    """The round trips of the floor, on the same emulators, with a bare client in its own process (as the
    sync is), sequential (the sync stopped)."""
    cx_since = iso_z(center.stack.cxone.clock.now())
    spells_since = spell_query(center.stack.salesforce.clock.now() - SPELL_OVERLAP)
    shown_cx = center.cxone_shows(agent.cxone_agent_id).as_target()
    shown_sf = center.salesforce_shows(agent.cxone_agent_id)
    if shown_cx is None or shown_sf is None:
        raise BenchError("the floor's agent is in no settable state")
    command = {
        "allOrNone": False,
        "records": [{
            "attributes": {"type": "Presence_Sync_Command__e"}, "UserId__c": agent.salesforce_user_id,
            "StatusId__c": status_ids(center)[shown_sf], "CommandId__c": "bench-floor", "Reason__c": "bench floor",
        }],
    }
    user = await center_control(center, "salesforce", "GET", f"/__emulator/users/{agent.salesforce_user_id}")
    async with BareProcess.open(center) as bare:
        answer = await bare.request({
            "cmd": "floor", "samples": samples, "agent_id": agent.cxone_agent_id, "cx_since": cx_since,
            "spell_query": spells_since, "command": command, "cx_target": shown_cx.to_api(),
        })
    parts = {k: float(answer[k]) for k in ("read_cxone", "read_salesforce", "write_salesforce", "write_cxone")}
    parts["apply_salesforce"] = float(user["console"]["apply_delay_ms"]) / 1000
    return parts


async def center_control(center: Center, system: str, method: str, path: str, body: Any = None) -> Any:
    client = center.stack.salesforce_http() if system == "salesforce" else center.stack.cxone_http()
    async with client as http:
        answer = await http.request(method, path, json=body)
    answer.raise_for_status()
    return answer.json()


def floor_of(parts: dict[str, float], interval: float, watch: float) -> dict[str, dict[str, float]]:
    """p50 / p95 / max of the floor per direction (see the module docstring)."""
    fixed = {
        "cxone->salesforce": parts["read_cxone"] + parts["write_salesforce"] + parts["apply_salesforce"],
        "salesforce->cxone": parts["read_salesforce"] + parts["write_cxone"],
    }
    return {
        d: {
            "fixed": fixed[d],
            "p50": 0.5 * interval + fixed[d] + 0.5 * watch,
            "p95": 0.95 * interval + fixed[d] + 0.95 * watch,
            "max": interval + fixed[d] + watch,
        }
        for d in DIRECTIONS
    }


async def run(
    agents: int | None = None, quick: bool = False, trials: int | None = None, interval: float | None = None
) -> Report:
    """The benchmark; `interval` overrides the sync's poll interval (the smoke test's shortcut: the floor follows it)."""
    agents = agents or (QUICK_AGENTS if quick else DEFAULT_AGENTS)
    per_direction = trials or (QUICK_TRIALS if quick else DEFAULT_TRIALS)
    report = Report(NAME, "a person's change until the other side shows it", params={"agents": agents})
    started = time.monotonic()
    rng = random.Random(7)
    async with onboarded_center(agents, apply_delay_ms=APPLY_DELAY_MS) as center:
        people = [a for a in roster(center.stack, agents) if a.cxone_agent_id in center.rules]
        if len(people) < 2 * per_direction + 1:
            per_direction = max(1, (len(people) - 1) // 2)
        floor_agent, people = people[-1], people[: 2 * per_direction]
        plan = [(agent, "cxone" if i % 2 == 0 else "salesforce") for i, agent in enumerate(people)]
        interval = interval or center.interval_seconds
        span = len(plan) / CHANGES_PER_SECOND * interval
        report.params.update(
            changes_each_way=per_direction, interval_s=interval, apply_delay_ms=APPLY_DELAY_MS,
            watch_ms=WATCH_SECONDS * 1000,
        )
        sent_at: dict[str, list[float]] = {d: [] for d in DIRECTIONS}
        watcher = PropagationWatcher(center.stack, _expectation(center), poll_seconds=WATCH_SECONDS)
        async with SyncProcess(center, holder="bench/propagation", interval_seconds=interval) as loop:
            await wait_all(center.rules, center.agrees, 60 + agents / 50, loop, what="the morning publish")
            await loop.wait_quiet(timeout=60)
            report.params["max_concurrency"] = loop.max_concurrency
            first_tick = len(loop.ticks)
            async with center.stack.cxone_http() as cx, center.stack.salesforce_http() as sf, watcher.watching():
                # Stratified over the span (one change in each of len(plan) equal slots, at a random point of
                # it), from a start not tied to the tick that ended the quiet wait: the changes' phases in the
                # poll interval are then near-uniform whatever the seed (a plain uniform draw of ~100 times,
                # started in step with a tick, gives the same lopsided phases on every run).
                begin = time.monotonic() + 0.2 + random.Random().uniform(0, interval)
                step = span / len(plan)
                await asyncio.gather(*(
                    _trial(center, {"cxone": cx, "salesforce": sf}, agent, side, begin + (k + rng.random()) * step, watcher,
                           sent_at)
                    for k, (agent, side) in enumerate(plan)
                ))
                await watcher.drain(timeout=10 * interval + 5)
            await loop.wait_quiet(since=first_tick, timeout=60)
        window = loop.result
        assert window is not None
        trial_ticks = loop.ticks[first_tick:]
        parts = await measure_floor_parts(center, floor_agent, 5 if quick else FLOOR_SAMPLES)
        periods = [b.ended_at - a.ended_at for a, b in zip(trial_ticks, trial_ticks[1:])]
    report.seconds = time.monotonic() - started
    result = watcher.result
    floor = floor_of(parts, interval, WATCH_SECONDS)
    measured = {d: sorted(result.latencies[d]) for d in DIRECTIONS}
    writes = {d: sum(t.writes[d] for t in trial_ticks) for d in DIRECTIONS}
    waits = {d: sorted(poll_waits(sent_at[d], [t.started_at for t in trial_ticks])) for d in DIRECTIONS}
    _fill(report, measured, floor, parts, result, writes, per_direction, window, periods, interval, waits)
    return report


def poll_waits(changes: list[float], tick_starts: list[float]) -> list[float]:
    """For each change, the time until the next tick started (the U*I part of its latency, as it happened)."""
    starts = sorted(tick_starts)
    waits = []
    for at in changes:
        i = bisect.bisect_right(starts, at)
        if i < len(starts):
            waits.append(starts[i] - at)
    return waits


def _stats(samples: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(samples, 50), "p95": percentile(samples, 95), "max": samples[-1] if samples else None,
        "count": len(samples),
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _fill(
    report: Report, measured: dict[str, list[float]], floor: dict[str, dict[str, float]], parts: dict[str, float],
    result: Any, writes: dict[str, int], per_direction: int, window: WindowSummary, periods: list[float], interval: float,
    waits: dict[str, list[float]],
) -> None:
    stats = {d: _stats(measured[d]) for d in DIRECTIONS}
    for d in DIRECTIONS:
        key = d.replace("->", "_to_")
        s = stats[d]
        report.figure(f"{key}_count", s["count"])
        for p in ("p50", "p95", "max"):
            report.figure(f"{key}_{p}", None if s[p] is None else round(s[p], 4), "s")
            report.figure(f"{key}_floor_{p}", round(floor[d][p], 4), "s")
        ratio = None if s["p50"] is None else s["p50"] / floor[d]["p50"]
        report.figure(f"{key}_p50_ratio", None if ratio is None else round(ratio, 3), "x")
        report.figure(f"{key}_writes", writes[d])
        # The window's echo lags (its audit) begin with the morning publish's; the trials' are the last ones.
        lags = sorted(window.lags_ms[d][-per_direction:])
        lag = percentile(lags, 50)
        report.figure(f"{key}_sync_lag_p50", None if lag is None else round(lag / 1000, 4), "s")
    for name, value in parts.items():
        report.figure(f"floor_{name}", round(value, 4), "s")
    for d in DIRECTIONS:
        wait = percentile(waits[d], 50)
        report.figure(f"{d.replace('->', '_to_')}_poll_wait_p50", None if wait is None else round(wait, 4), "s")
    report.figure("tick_period_mean", round(statistics.fmean(periods), 4) if periods else None, "s")
    report.figure("missed", len(result.missed))

    report.table(
        "latency from the human change to the other side showing it (seconds)",
        ["", *(LABELS[d] for d in DIRECTIONS)],
        [
            ["changes timed", *(str(stats[d]["count"]) for d in DIRECTIONS)],
            ["measured p50 / p95 / max", *(f"{_fmt(stats[d]['p50'])} / {_fmt(stats[d]['p95'])} / {_fmt(stats[d]['max'])}" for d in DIRECTIONS)],
            ["floor    p50 / p95 / max", *(f"{floor[d]['p50']:.3f} / {floor[d]['p95']:.3f} / {floor[d]['max']:.3f}" for d in DIRECTIONS)],
            ["measured p50 / floor p50", *(f"{report.figures[d.replace('->', '_to_') + '_p50_ratio'] or '-'}x" for d in DIRECTIONS)],
            ["of which: until the next tick started, p50 (floor: I/2)",
             *(f"{_fmt(report.figures[d.replace('->', '_to_') + '_poll_wait_p50'])} ({interval / 2:.3f})" for d in DIRECTIONS)],
            ["the sync's own view: echo lag p50 (audit)", *(_fmt(report.figures[d.replace('->', '_to_') + '_sync_lag_p50']) for d in DIRECTIONS)],
        ],
    )
    report.table(
        "the floor's parts (measured now, same emulators, bare client in its own process; medians)",
        ["part", "CXone → Salesforce", "Salesforce → CXone"],
        [
            ["poll wait U*I (I = interval)", f"I/2 = {interval / 2:.3f} (worst {interval:.3f})", f"I/2 = {interval / 2:.3f} (worst {interval:.3f})"],
            ["read round trip r_read", f"{parts['read_cxone']:.4f} (CXone delta)", f"{parts['read_salesforce']:.4f} (spell query)"],
            ["write round trip r_write", f"{parts['write_salesforce']:.4f} (presence command)", f"{parts['write_cxone']:.4f} (set state)"],
            ["applier delay d_apply", f"{parts['apply_salesforce']:.4f}", "0"],
            ["far side's poll wait V*w", f"w/2 = {WATCH_SECONDS / 2:.4f}", f"w/2 = {WATCH_SECONDS / 2:.4f}"],
            ["floor p50 (sum)", f"{floor['cxone->salesforce']['p50']:.4f}", f"{floor['salesforce->cxone']['p50']:.4f}"],
        ],
    )
    if periods:
        report.note(f"measured tick period during the trials: mean {statistics.fmean(periods):.3f} s, max {max(periods):.3f} s (interval {interval:g} s)")
    for d in DIRECTIONS:
        s = stats[d]
        ratio = report.figures[f"{d.replace('->', '_to_')}_p50_ratio"]
        report.target(
            f"{LABELS[d]} p50 within {TARGET_RATIO}x of the floor's p50",
            ratio is not None and ratio <= TARGET_RATIO,
            f"{_fmt(s['p50'])} s vs floor {floor[d]['p50']:.3f} s: {ratio}x",
        )
    report.check(
        "every change arrived on the other side (none missed, none superseded)",
        not result.missed and not result.superseded and all(stats[d]["count"] == per_direction for d in DIRECTIONS),
        f"timed {stats['cxone->salesforce']['count']} + {stats['salesforce->cxone']['count']} of {per_direction} + "
        f"{per_direction}; missed {len(result.missed)}, already there {result.already_there}, not carried {result.not_carried}",
    )
    report.check(
        "one write per change, none back (no ping-pong)",
        writes["cxone->salesforce"] == per_direction and writes["salesforce->cxone"] == per_direction,
        f"writes CXone → Salesforce {writes['cxone->salesforce']}, Salesforce → CXone {writes['salesforce->cxone']} "
        f"(echoes suppressed: {sum(window.outcome(d, 'echo') for d in DIRECTIONS)})",
    )


__all__ = ["floor_of", "measure_floor_parts", "run"]
