"""burst: every agent changes state at once on one side; how long until the other side shows it for all.

Setup: the demo contact center with `--agents` agents (default 10,000) on loopback emulators (real
HTTP), onboarded; the sync running as the sync flow runs it (`run_window`, the config's 1 s
interval, max_concurrency 32). After the morning publish has settled (every linked agent's
Salesforce status mapped from its CXone state, echoes in):

1. CXone → Salesforce: every agent goes to *Unavailable: Break* in CXone at once (in-process, under
   the emulator's lock, one call after the other with no await between: "at once" for the sync).
   Measured: from the last change made until every linked agent's Salesforce status is On_Break.
2. Salesforce → CXone: every linked agent picks *Available_for_Chats* in the Omni widget at once.
   Measured: until every linked agent is Available in CXone.

Baseline, same run, same emulators, after the sync has stopped: the same two bursts carried by a
bare client (plain httpx, one token each, the same concurrency bound as the sync): the reads that
find the changes (the CXone delta, every page; the Salesforce spells query, every page), then the
writes (presence commands 200 per /composite/sobjects call; CXone join + set state per agent).
That is what the emulators themselves cost for the burst; `sync - baseline` is the sync's own
overhead, including up to one poll interval of waiting for the next tick.

Target (the team's): each direction converges in under 30 s at 10,000 agents on this 2-core machine.
Checks: every linked agent converged; exactly one write per linked agent in the burst's direction
and none back (no ping-pong); reads per tick bounded by one poll per system (pages of that one
query aside) whatever the agent count, and no other read route used.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any

from bench.center import (
    POLL_ROUTES,
    BareClients,
    BenchError,
    Center,
    SyncLoop,
    TickRecord,
    nagle_note,
    onboarded_center,
    status_ids,
    wait_all,
)
from bench.report import Report
from connectors.soql import quote
from emulators.faults import iso_z
from engine import CxoneState, CxoneTarget, Direction, Outcome

NAME = "burst"
DEFAULT_AGENTS = 10_000
QUICK_AGENTS = 500
TARGET_SECONDS = 30.0
CXONE_PAGE = 1000  # the CXone connector's page size (top)
SALESFORCE_PAGE = 2000  # Salesforce's query page
APPLY_DELAY_MS = 150  # the presence applier acts this long after a command arrives (as in the demo)

BREAK = ("Unavailable", "Break")
BACK = "Available_for_Chats"


def _burst_cxone(center: Center, agent_ids: list[int]) -> float:
    """Every agent picks Unavailable: Break in CXone; returns time.monotonic() after the last change."""
    tenant = center.stack.cxone.tenant
    for agent_id in agent_ids:
        tenant.set_state(agent_id, *BREAK)
    return time.monotonic()


def _burst_salesforce(center: Center, agent_ids: list[int]) -> float:
    emulator = center.stack.salesforce
    for agent_id in agent_ids:
        emulator.set_presence(center.sf_user(agent_id), BACK)
    return time.monotonic()


def _targets(center: Center) -> tuple[str, CxoneTarget]:
    """What the rule maps the two bursts to (the same for every linked agent of the demo rule)."""
    some = next(iter(center.rules))
    sf_target = center.published(some, CxoneState("Unavailable", "Break"))
    cx_target = center.subscribed(some, BACK)
    if sf_target is None or cx_target is None:
        raise BenchError("the demo rule does not map Unavailable: Break / Available_for_Chats; the burst needs both")
    return sf_target, cx_target


async def _sync_burst(
    center: Center, loop: SyncLoop, direction: str, agent_ids: list[int], linked: list[int], timeout: float
) -> dict[str, Any]:
    sf_target, cx_target = _targets(center)
    first_tick = len(loop.ticks)
    if direction == "cxone->salesforce":
        changed_at = _burst_cxone(center, agent_ids)
        arrived = lambda a: center.salesforce_shows(a) == sf_target  # noqa: E731
    else:
        changed_at = _burst_salesforce(center, linked)
        arrived = lambda a: cx_target.matches(center.cxone_shows(a))  # noqa: E731
    seconds = await wait_all(set(linked), arrived, timeout, loop, poll_seconds=0.1, what=f"the {direction} burst")
    converged_at = changed_at + seconds
    await loop.wait_quiet(since=first_tick, timeout=timeout)
    burst_ticks = loop.ticks[first_tick:]
    to_converge = [t for t in burst_ticks if t.ended_at <= converged_at] + [
        t for t in burst_ticks if t.ended_at > converged_at
    ][:1]
    return {
        "seconds": seconds,
        "changed_at": changed_at,
        "ticks": burst_ticks,
        "ticks_to_converge": len(to_converge),
        "writes": {k: sum(t.writes[k] for t in burst_ticks) for k in ("cxone->salesforce", "salesforce->cxone")},
        "write_requests": {s: sum(t.write_requests[s] for t in burst_ticks) for s in ("cxone", "salesforce")},
        "statements": sum(t.statements for t in burst_ticks),
        "max_tick_seconds": max(t.seconds for t in burst_ticks),
    }


async def _baseline_cxone_to_salesforce(
    center: Center, bare: BareClients, agent_ids: list[int], linked: list[int], timeout: float
) -> dict[str, Any]:
    sf_target, _ = _targets(center)
    ids = status_ids(center)
    since = iso_z(center.stack.cxone.clock.now())
    changed_at = _burst_cxone(center, agent_ids)
    records, reads = await bare.cxone_states_since(since, page_size=CXONE_PAGE)
    commands = []
    for record in records:
        agent_id = int(record["agentId"])
        if agent_id in center.rules:
            status = center.published(agent_id, CxoneState.from_api(record))
            if status is not None:
                commands.append((center.sf_user(agent_id), ids[status]))
    calls = await bare.publish_commands(commands)
    await wait_all(
        set(linked), lambda a: center.salesforce_shows(a) == sf_target, timeout,
        poll_seconds=0.1, what="the baseline's CXone -> Salesforce burst",
    )
    return {"seconds": time.monotonic() - changed_at, "reads": reads, "writes": len(commands), "write_requests": calls}


async def _baseline_salesforce_to_cxone(
    center: Center, bare: BareClients, linked: list[int], timeout: float
) -> dict[str, Any]:
    _, cx_target = _targets(center)
    since = center.stack.salesforce.clock.now() - timedelta(milliseconds=1)
    changed_at = _burst_salesforce(center, linked)
    soql = (
        "SELECT Id, UserId, ServicePresenceStatus.DeveloperName, StatusStartDate FROM UserServicePresence "
        f"WHERE StatusStartDate > {quote(since)} ORDER BY StatusStartDate"
    )
    spells, reads = await bare.salesforce_query(soql)
    targets: dict[int, CxoneTarget] = {}
    agents_by_user = center.setup.agents_by_user
    for spell in spells:
        agent_id = agents_by_user.get(spell["UserId"])
        status = (spell.get("ServicePresenceStatus") or {}).get("DeveloperName")
        if agent_id in center.rules and status is not None:
            target = center.subscribed(agent_id, status)
            if target is not None:
                targets[agent_id] = target
    requests = await bare.set_cxone_states(targets, sessions={})
    await wait_all(
        set(linked), lambda a: cx_target.matches(center.cxone_shows(a)), timeout,
        poll_seconds=0.1, what="the baseline's Salesforce -> CXone burst",
    )
    return {"seconds": time.monotonic() - changed_at, "reads": reads, "writes": len(targets), "write_requests": requests}


async def run(agents: int | None = None, quick: bool = False, interval: float | None = None) -> Report:
    """The benchmark; `interval` overrides the sync's poll interval (the smoke test's shortcut, not a figure)."""
    agents = agents or (QUICK_AGENTS if quick else DEFAULT_AGENTS)
    timeout = max(60.0, agents / 25)  # far beyond the target: a timeout means broken, not slow
    report = Report(NAME, "every agent changes state at once on one side", params={"agents": agents})
    started = time.monotonic()
    async with onboarded_center(agents, apply_delay_ms=APPLY_DELAY_MS) as center:
        linked = sorted(center.rules)
        agent_ids = [int(a["agentId"]) for a in center.stack.cxone.tenant.states_page(0, 10**9).records]
        interval = interval or center.interval_seconds
        report.params.update(linked=len(linked), interval_s=interval,
                             max_concurrency=center.max_concurrency, apply_delay_ms=APPLY_DELAY_MS)
        nagle = nagle_note(center.stack)
        sync: dict[str, dict[str, Any]] = {}
        async with SyncLoop(center, holder="bench/burst", interval_seconds=interval) as loop:
            morning = await wait_all(linked, center.agrees, timeout, loop, poll_seconds=0.1, what="the morning publish")
            await loop.wait_quiet(timeout=timeout)
            settled_ticks = len(loop.ticks)
            sync["cxone->salesforce"] = await _sync_burst(center, loop, "cxone->salesforce", agent_ids, linked, timeout)
            sync["salesforce->cxone"] = await _sync_burst(center, loop, "salesforce->cxone", agent_ids, linked, timeout)
            await loop.wait_ticks(2, timeout)
        window = loop.result
        assert window is not None
        ticks = loop.ticks
        async with BareClients.open(center) as bare:
            base = {
                "cxone->salesforce": await _baseline_cxone_to_salesforce(center, bare, agent_ids, linked, timeout),
                "salesforce->cxone": await _baseline_salesforce_to_cxone(center, bare, linked, timeout),
            }
    report.seconds = time.monotonic() - started
    _fill(report, agents, linked, morning, ticks, settled_ticks, sync, base, window)
    if nagle:
        report.note(nagle)
    return report


def _fill(
    report: Report, agents: int, linked: list[int], morning: float, ticks: list[TickRecord], settled_ticks: int,
    sync: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]], window: Any,
) -> None:
    directions = ("cxone->salesforce", "salesforce->cxone")
    labels = {"cxone->salesforce": "CXone → Salesforce", "salesforce->cxone": "Salesforce → CXone"}
    n = len(linked)
    for d in directions:
        key = d.replace("->", "_to_")
        report.figure(f"{key}_seconds", round(sync[d]["seconds"], 3), "s")
        report.figure(f"{key}_baseline_seconds", round(base[d]["seconds"], 3), "s")
        report.figure(f"{key}_ratio", round(sync[d]["seconds"] / max(base[d]["seconds"], 1e-9), 2), "x")
        report.figure(f"{key}_ticks", sync[d]["ticks_to_converge"])
        report.figure(f"{key}_writes", sync[d]["writes"][d])
        report.figure(f"{key}_writes_back", sync[d]["writes"][_other(d)])
        report.figure(f"{key}_statements", sync[d]["statements"])
        report.figure(f"{key}_max_tick_seconds", round(sync[d]["max_tick_seconds"], 3), "s")
    quiet = [t for t in ticks[settled_ticks:] if not t.changes_seen and not sum(t.writes.values())]
    polls_max = {s: max((t.polls[s] for t in ticks), default=0) for s in ("cxone", "salesforce")}
    quiet_max = {s: max((t.polls[s] for t in quiet), default=0) for s in ("cxone", "salesforce")}
    # The first tick includes taking the lease and loading the setup (one read per team's codes, the statuses).
    other = {s: sum(t.other_reads[s] for t in ticks[1:]) for s in ("cxone", "salesforce")}
    setup_reads = {s: ticks[0].other_reads[s] if ticks else 0 for s in ("cxone", "salesforce")}
    report.figure("morning_publish_seconds", round(morning, 3), "s")
    report.figure("ticks_total", len(ticks))
    report.figure("reads_per_quiet_tick_max", quiet_max)
    report.figure("reads_per_tick_max", polls_max)
    report.figure("expected_pages_per_burst_tick", {
        "cxone": math.ceil(agents / CXONE_PAGE), "salesforce": math.ceil(n / SALESFORCE_PAGE),
    })
    report.figure("other_reads", other)
    report.figure("setup_reads", setup_reads)
    report.figure("statements_per_tick_max", max((t.statements for t in ticks), default=0))
    report.figure("echoes", {d: int(window.stats.outcomes[Direction(d)][Outcome.ECHO]) for d in directions})

    report.table(
        "time until every linked agent shows the mapped state",
        ["", *(labels[d] for d in directions)],
        [
            ["sync", *(f"{sync[d]['seconds']:.2f} s" for d in directions)],
            ["baseline (bare client, same emulators)", *(f"{base[d]['seconds']:.2f} s" for d in directions)],
            ["sync / baseline", *(f"{sync[d]['seconds'] / max(base[d]['seconds'], 1e-9):.2f}x" for d in directions)],
            ["sync ticks until converged", *(str(sync[d]["ticks_to_converge"]) for d in directions)],
            ["sync writes (engine) / back the other way", *(f"{sync[d]['writes'][d]} / {sync[d]['writes'][_other(d)]}" for d in directions)],
            ["sync write requests CXone / Salesforce", *(f"{sync[d]['write_requests']['cxone']} / {sync[d]['write_requests']['salesforce']}" for d in directions)],
            ["baseline reads / writes / write requests", *(f"{base[d]['reads']} / {base[d]['writes']} / {base[d]['write_requests']}" for d in directions)],
            ["store statements during the burst", *(str(sync[d]["statements"]) for d in directions)],
            ["slowest tick", *(f"{sync[d]['max_tick_seconds']:.2f} s" for d in directions)],
        ],
    )
    report.table(
        "ticks from each burst until quiet (poll requests are pages of one query per system)",
        ["burst", "tick", "ends after", "seconds", "changes seen", "polls CXone", "polls SF", "writes",
         "write reqs CX/SF", "statements"],
        [
            [labels[d] if i == 0 else "", t.index, f"{t.ended_at - sync[d]['changed_at']:.1f} s", f"{t.seconds:.3f}",
             t.changes_seen, t.polls["cxone"], t.polls["salesforce"], sum(t.writes.values()),
             f"{t.write_requests['cxone']}/{t.write_requests['salesforce']}", t.statements]
            for d in directions for i, t in enumerate(sync[d]["ticks"])
        ],
    )
    report.note(
        f"{len(ticks)} ticks in all; reads per quiet tick (max) CXone {quiet_max['cxone']}, Salesforce "
        f"{quiet_max['salesforce']}; per burst tick at most CXone {polls_max['cxone']}, Salesforce "
        f"{polls_max['salesforce']} pages (one query each, {CXONE_PAGE} / {SALESFORCE_PAGE} records a page; "
        "the Salesforce poll re-reads its 5 s overlap, so pages follow the changes of the last 5 s, not the agents)"
    )
    report.note(f"morning publish (first tick writes every linked agent's status) took {morning:.2f} s")
    if quiet_max["salesforce"] > 1:
        report.note(
            f"quiet ticks (nothing changed) still read up to {quiet_max['salesforce']} pages of Salesforce spells: the "
            "spell query's floor is the newest spell seen minus the 5 s overlap (tasks/sync/sources.py "
            "SalesforcePollSource.fetch), so while nothing newer arrives every poll re-reads the last burst in full"
        )
    slow = [t for t in ticks[1:] if t.seconds > 5 * max(report.params.get("interval_s", 1.0), 1.0)]
    if slow:
        worst = max(slow, key=lambda t: t.seconds)
        report.note(
            f"{len(slow)} tick(s) ran past 5x the interval (the slowest {worst.seconds:.1f} s, tick {worst.index}): a tick "
            "applies all its writes before the next poll, so every other change waits that long; the sync lease "
            f"(TTL {_lease_ttl(report.params.get('interval_s', 1.0)):.0f} s, renewed once per tick) can expire mid-tick"
        )

    for d in directions:
        report.target(
            f"{labels[d]} burst of {n} linked agents converges in under {TARGET_SECONDS:.0f} s",
            sync[d]["seconds"] < TARGET_SECONDS,
            f"{sync[d]['seconds']:.2f} s; baseline {base[d]['seconds']:.2f} s",
        )
        report.check(f"{labels[d]}: every linked agent converged", True, f"{n} agents")
        report.check(
            f"{labels[d]}: one write per linked agent, none back (no ping-pong)",
            sync[d]["writes"][d] == n and sync[d]["writes"][_other(d)] == 0,
            f"{sync[d]['writes'][d]} writes, {sync[d]['writes'][_other(d)]} back",
        )
    report.check(
        "reads per quiet tick: at most one poll per system, whatever the agent count",
        quiet_max["cxone"] <= 1 and quiet_max["salesforce"] <= 1 and bool(quiet),
        f"{len(quiet)} quiet ticks; max CXone {quiet_max['cxone']}, Salesforce {quiet_max['salesforce']}",
    )
    report.check(
        "no per-agent reads (after the setup load, only the poll routes were read)",
        other["cxone"] == 0 and other["salesforce"] == 0,
        f"other data-API GETs: CXone {other['cxone']}, Salesforce {other['salesforce']} (setup load in the first "
        f"tick: CXone {setup_reads['cxone']}, Salesforce {setup_reads['salesforce']}); poll routes "
        f"{', '.join(r for rs in POLL_ROUTES.values() for r in rs)}",
    )


def _other(direction: str) -> str:
    return "salesforce->cxone" if direction == "cxone->salesforce" else "cxone->salesforce"


def _lease_ttl(interval: float) -> float:
    from tasks.sync.runner import lease_ttl_seconds

    return lease_ttl_seconds(interval)
