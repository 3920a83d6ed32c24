"""shards: the same bursts carried by one sync process and by N shard processes, beside the one-process run.

Setup, once per process count (1: the unsharded sync; then 2 and, by default, 4 shards): the demo center
with `--agents` agents (default 10,000) on a fresh store (a PostgreSQL database created and dropped
for it when a server answers, else a SQLite file: the report says which), onboarded the same way, both
emulators' own `latency_ms` at 50 ms, the presence applier's delay 150 ms. The sync runs as
`python -m bench.child sync CONFIG --shard i/n`, one process per shard (`run_window` with that shard:
its agents, its lease `sync:i/n`, its cursors), 1 s interval. Once the morning publish has settled
and every shard has joined its agents' CXone sessions ahead (so each burst is one CXone request per
agent, whatever the count):

1. CXone → Salesforce: every agent goes to *Unavailable: Break* in CXone at once;
2. Salesforce → CXone: every linked agent picks *Available_for_Chats* in Omni at once.

Each burst is timed until every linked agent shows the mapped state on the other side (watched
in-process), then until every shard had two quiet ticks (the echoes in). Per burst: the seconds, the
write and poll requests per system (the emulators' counters: every process's), the sync's CPU (the
sum over its processes of `process_time` from the tick before the burst to each one's last busy
tick) per change, and the busiest shard's CPU: with one machine per shard, that is the burst's CPU
time on the critical path. Every figure is printed beside the one-process run's (the baseline).

Checks, per count and burst: every linked agent converged; no agent written by two processes, each
shard having written all of its own agents and no other (each child's log of its clients' writes);
the emulators received exactly one write for each linked agent (CXone session states by agent,
Salesforce presence commands by user) and none back.

No target: on a 2-core machine N shard processes share the same two cores (and the emulators' process),
so wall-clock and total CPU cannot improve; what sharding buys shows as per-shard work (writes, CPU)
falling as 1/N with nothing written twice. The shared API budget (Prefect global rate limits,
`flows/shared_budget.py`) needs a Prefect server and is not attached here: each shard has its own
`max_concurrency` bound, so N shards may have N times as many requests in flight.

    report = asyncio.run(run_benchmark("shards", agents=300, quick=True))
    report.figures["salesforce_to_cxone_2p_seconds_ratio"]
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.burst import BACK, BREAK, _burst_cxone, _burst_salesforce, _targets
from bench.center import (
    BenchError,
    Center,
    SyncProcess,
    data_requests,
    onboarded_center,
    route_counts,
    wait_all,
    wait_until,
)
from bench.report import Report
from bench.scale import DEFAULT_PG_SERVER, fresh_database, postgres_answers
from presence_sync.emulators.faults import FaultSettings
from presence_sync.engine import CxoneState
from presence_sync.engine.shards import Shard

NAME = "shards"
DEFAULT_AGENTS = 10_000
QUICK_AGENTS = 300
DEFAULT_COUNTS = (1, 2, 4)
QUICK_COUNTS = (1, 2)
LATENCY_MS = 50
APPLY_DELAY_MS = 150
JOIN_ROUTE = "POST /incontactapi/services/{version}/agent-sessions/join"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
SYSTEMS = ("cxone", "salesforce")
DIRECTIONS = ("cxone->salesforce", "salesforce->cxone")
LABELS = {"cxone->salesforce": "CXone → Salesforce", "salesforce->cxone": "Salesforce → CXone"}
WRITTEN = {"cxone->salesforce": "salesforce", "salesforce->cxone": "cxone"}


class WriteLog:
    """Writes per agent as the emulators receive them: CXone session states (by agent id) and Salesforce
    presence commands (by user id), counted by wrapping each emulator's own entry point."""

    def __init__(self, center: Center) -> None:
        self.cxone: Counter[int] = Counter()
        self.salesforce: Counter[str] = Counter()
        tenant, applier = center.stack.cxone.tenant, center.stack.salesforce.applier
        set_state, deliver = tenant.set_session_state, applier.deliver

        def counted_state(session_id: str, state: str, reason: str | None = None) -> dict[str, Any]:
            record = set_state(session_id, state, reason)
            self.cxone[int(record["agentId"])] += 1
            return record

        def counted_delivery(events: Iterable[dict[str, Any]]) -> None:
            events = list(events)
            self.salesforce.update(str(event.get("UserId__c")) for event in events)
            deliver(events)

        tenant.set_session_state = counted_state  # type: ignore[method-assign]
        applier.deliver = counted_delivery  # type: ignore[method-assign,assignment]

    def clear(self) -> None:
        self.cxone.clear()
        self.salesforce.clear()


@dataclass
class ShardGroup:
    """The sync processes of one count, watched together (any of them failing fails the wait)."""

    processes: list[SyncProcess]
    shards: list[Shard]

    def raise_if_failed(self) -> None:
        for process in self.processes:
            process.raise_if_failed()


@dataclass
class BurstRun:
    direction: str
    seconds: float
    linked: int
    converged: int
    write_requests: dict[str, int]
    poll_requests: dict[str, int]
    shard_writes: dict[str, int]  # "i/n" -> the shard's engine writes in the burst's direction
    shard_owned: dict[str, int]  # "i/n" -> linked agents the shard owns
    shard_cpu: dict[str, float]  # "i/n" -> CPU seconds for the burst
    shard_foreign: dict[str, int]  # "i/n" -> agents of other shards the process wrote (its own clients' log)
    shard_missed: dict[str, int]  # "i/n" -> agents of its own it did not write
    by_two_shards: int  # agents written by more than one process
    written: dict[str, int]  # agents written once / more than once / never / not linked
    written_back: int  # writes the emulators received on the burst's own side

    @property
    def cpu(self) -> float:
        return sum(self.shard_cpu.values())

    @property
    def busiest_cpu(self) -> float:
        return max(self.shard_cpu.values())


@dataclass
class CountRun:
    count: int
    store: str
    joins: int = 0
    bursts: dict[str, BurstRun] = field(default_factory=dict)


@asynccontextmanager
async def shard_processes(center: Center, count: int, interval: float) -> AsyncIterator[ShardGroup]:
    """`count` sync processes, shard i/count each (1: the unsharded sync, no --shard), until the block ends."""
    shards = Shard(1, count).siblings()
    async with AsyncExitStack() as stack:
        processes = [
            await stack.enter_async_context(SyncProcess(
                center, holder=f"bench/shards-{shard.index}-of-{count}", interval_seconds=interval,
                shard=str(shard) if shard.sharded else None,
            ))
            for shard in shards
        ]
        yield ShardGroup(processes, shards)


def _joins(center: Center) -> int:
    return route_counts(center.stack.cxone)[JOIN_ROUTE]


def _counts(center: Center) -> tuple[Counter[str], Counter[str]]:
    return route_counts(center.stack.cxone), route_counts(center.stack.salesforce)


def _written(counts: Counter[Any], expected: set[Any]) -> dict[str, int]:
    return {
        "once": sum(1 for key in expected if counts[key] == 1),
        "twice_or_more": sum(1 for key in expected if counts[key] > 1),
        "never": sum(1 for key in expected if counts[key] == 0),
        "not_linked": sum(1 for key in counts if key not in expected),
    }


async def _burst(center: Center, group: ShardGroup, log: WriteLog, direction: str, agent_ids: list[int],
                 linked: list[int], timeout: float) -> BurstRun:
    marks = [len(p.ticks) for p in group.processes]
    cpu_before = [p.ticks[-1].cpu_s for p in group.processes]
    before = _counts(center)
    log.clear()
    # Each agent's own rule says what the other side shows (the chat team's maps Available_for_Chats apart).
    sf_target, cx_target = _targets(center)
    arrived: Callable[[int], bool]
    if direction == "cxone->salesforce":
        sf_targets = {a: center.published(a, CxoneState(*BREAK)) or sf_target for a in linked}
        made_at = _burst_cxone(center, agent_ids)
        arrived = lambda a: center.salesforce_shows(a) == sf_targets[a]  # noqa: E731
    else:
        cx_targets = {a: center.subscribed(a, BACK) or cx_target for a in linked}
        made_at = _burst_salesforce(center, linked)
        arrived = lambda a: cx_targets[a].matches(center.cxone_shows(a))  # noqa: E731
    seconds = await wait_all(linked, arrived, timeout, group, poll_seconds=0.05, what=f"the {direction} burst")
    for process, mark in zip(group.processes, marks, strict=True):
        await process.wait_quiet(since=mark, timeout=timeout, starting_after=made_at)
    cx, sf = (after - first for after, first in zip(_counts(center), before, strict=True))
    system = WRITTEN[direction]
    agent_of_user = {center.sf_user(a): a for a in linked}
    shard_writes: dict[str, int] = {}
    shard_cpu: dict[str, float] = {}
    shard_foreign: dict[str, int] = {}
    shard_missed: dict[str, int] = {}
    writers: Counter[int] = Counter()
    for shard, process, mark, cpu0 in zip(group.shards, group.processes, marks, cpu_before, strict=True):
        ticks = process.ticks[mark:]
        busy = [t for t in ticks if sum(t.writes.values()) or t.changes_seen]
        shard_writes[str(shard)] = sum(t.writes.get(direction, 0) for t in ticks)
        shard_cpu[str(shard)] = (busy[-1].cpu_s - cpu0) if busy else 0.0
        sent = {w for t in ticks for w in t.written.get(system, [])}
        agents = {agent_of_user.get(w, -1) for w in sent} if system == "salesforce" else {int(w) for w in sent}
        writers.update(agents)
        own = {a for a in linked if shard.owns(a)}
        shard_foreign[str(shard)] = len(agents - own)
        shard_missed[str(shard)] = len(own - agents)
    if direction == "cxone->salesforce":
        written = _written(log.salesforce, {center.sf_user(a) for a in linked})
        written_back = sum(log.cxone.values())
    else:
        written = _written(log.cxone, set(linked))
        written_back = sum(log.salesforce.values())
    return BurstRun(
        direction, seconds, len(linked), sum(1 for a in linked if arrived(a)),
        write_requests={"cxone": data_requests(cx, "cxone", WRITES), "salesforce": data_requests(sf, "salesforce", WRITES)},
        poll_requests={"cxone": data_requests(cx, "cxone", ("GET",)), "salesforce": data_requests(sf, "salesforce", ("GET",))},
        shard_writes=shard_writes,
        shard_owned={str(s): sum(1 for a in linked if s.owns(a)) for s in group.shards},
        shard_cpu=shard_cpu, shard_foreign=shard_foreign, shard_missed=shard_missed,
        by_two_shards=sum(1 for n in writers.values() if n > 1), written=written, written_back=written_back,
    )


async def _count_run(count: int, store: str, store_url: str | None, agents: int, interval: float | None,
                     latency_ms: int) -> CountRun:
    run = CountRun(count, store)
    timeout = max(120.0, agents / 20)
    async with onboarded_center(agents, apply_delay_ms=APPLY_DELAY_MS, store_url=store_url) as center:
        linked = sorted(center.rules)
        agent_ids = [int(a["agentId"]) for a in center.stack.cxone.tenant.states_page(0, 10**9).records]
        for emulator in (center.stack.cxone, center.stack.salesforce):
            emulator.faults.configure(FaultSettings(latency_ms=latency_ms))
        log = WriteLog(center)
        joins_before = _joins(center)
        async with shard_processes(center, count, interval or center.interval_seconds) as group:
            await wait_all(linked, center.agrees, timeout, group, poll_seconds=0.1, what="the morning publish")
            # Every shard joins its agents' sessions ahead, in the background: bursts wait for them, so
            # each costs one CXone request per agent whatever the count.
            await wait_until(lambda: _joins(center) - joins_before >= len(linked), timeout, group,
                             f"the CXone session joins ahead ({len(linked)} agents)")
            for process in group.processes:
                await process.wait_quiet(timeout=timeout)
            run.joins = _joins(center) - joins_before
            for direction in DIRECTIONS:
                run.bursts[direction] = await _burst(center, group, log, direction, agent_ids, linked, timeout)
    return run


async def run(
    agents: int | None = None, quick: bool = False, interval: float | None = None, latency_ms: int = LATENCY_MS,
    store_url: str | None = None, counts: tuple[int, ...] | None = None, db_prefix: str = "presence_sync_bench",
) -> Report:
    """The benchmark. `store_url`: a PostgreSQL server (a database is created and dropped on it for each
    count); by default the local test server when it answers; "none": SQLite. `counts`: the process
    counts, the first the baseline (default 1, 2, 4; --quick 1, 2)."""
    agents = agents or (QUICK_AGENTS if quick else DEFAULT_AGENTS)
    counts = tuple(counts or (QUICK_COUNTS if quick else DEFAULT_COUNTS))
    if counts[0] != 1:
        raise BenchError(f"the first process count is the baseline and must be 1 (the unsharded sync), got {counts}")
    server = None if store_url == "none" else (store_url or DEFAULT_PG_SERVER)
    report = Report(NAME, "the same bursts with 1 sync process and with N shard processes", params={
        "agents": agents, "processes": "/".join(map(str, counts)), "latency_ms": latency_ms,
        "interval_s": interval or 1.0, "apply_delay_ms": APPLY_DELAY_MS,
    })
    if server is not None and not postgres_answers(server):
        report.note(f"no PostgreSQL answered at {server.split('@')[-1]}: SQLite stores (give one with --store-url)")
        server = None
    store = "postgresql" if server is not None else "sqlite"
    report.params["store"] = store
    started = time.monotonic()
    load_before = os.getloadavg()
    runs: list[CountRun] = []
    for count in counts:
        if server is None:
            runs.append(await _count_run(count, store, None, agents, interval, latency_ms))
        else:
            async with fresh_database(server, prefix=db_prefix) as url:
                runs.append(await _count_run(count, store, url, agents, interval, latency_ms))
    load_after = os.getloadavg()
    report.seconds = time.monotonic() - started
    report.params["load_before"] = "/".join(f"{x:.2f}" for x in load_before)
    report.params["load_after"] = "/".join(f"{x:.2f}" for x in load_after)
    _fill(report, runs)
    return report


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base > 0 else "-"


def _fill(report: Report, runs: list[CountRun]) -> None:
    base = runs[0]
    report.params["linked"] = base.bursts[DIRECTIONS[0]].linked
    rows: list[list[Any]] = []
    for direction in DIRECTIONS:
        key = direction.replace("->", "_to_")
        system = WRITTEN[direction]
        b0 = base.bursts[direction]
        for r in runs:
            b = r.bursts[direction]
            prefix = f"{key}_{r.count}p"
            cpu_ms = 1000 * b.cpu / max(b.linked, 1)
            base_cpu_ms = 1000 * b0.cpu / max(b0.linked, 1)
            figures = {
                "seconds": round(b.seconds, 3), "seconds_ratio": round(b.seconds / b0.seconds, 3),
                "write_requests": b.write_requests, "poll_requests": b.poll_requests,
                "write_requests_ratio": round(b.write_requests[system] / max(b0.write_requests[system], 1), 3),
                "cpu_ms_per_change": round(cpu_ms, 4), "cpu_ratio": round(cpu_ms / base_cpu_ms, 3) if base_cpu_ms else None,
                "busiest_shard_cpu_s": round(b.busiest_cpu, 3),
                "busiest_shard_cpu_ratio": round(b.busiest_cpu / b0.cpu, 3) if b0.cpu else None,
                "shard_writes": b.shard_writes, "shard_cpu_s": {k: round(v, 3) for k, v in b.shard_cpu.items()},
                "written": b.written, "written_back": b.written_back, "converged": b.converged,
                "by_two_shards": b.by_two_shards, "shard_foreign": b.shard_foreign, "shard_missed": b.shard_missed,
            }
            for name, value in figures.items():
                report.figure(f"{prefix}_{name}", value)
            label = "1 (unsharded)" if r.count == 1 else f"{r.count} shards"
            rows.append([
                LABELS[direction], label,
                f"{b.seconds:.2f} s", _ratio(b.seconds, b0.seconds),
                f"{b.write_requests['cxone']:,} / {b.write_requests['salesforce']:,}",
                _ratio(b.write_requests[system], b0.write_requests[system]),
                f"{b.poll_requests['cxone']:,} / {b.poll_requests['salesforce']:,}",
                f"{cpu_ms:.3f} ms", _ratio(cpu_ms, base_cpu_ms),
                f"{b.busiest_cpu:.2f} s", _ratio(b.busiest_cpu, b0.cpu),
                " / ".join(f"{b.shard_writes[s]:,}" for s in b.shard_writes),
            ])
            tag = f" [{label}, {LABELS[direction]}]"
            report.check(f"every linked agent converged{tag}", b.converged == b.linked, f"{b.converged} of {b.linked}")
            report.check(
                f"no agent written by two shards; each shard wrote all of its own agents and no other{tag}",
                not b.by_two_shards and not any(b.shard_foreign.values()) and not any(b.shard_missed.values()),
                f"{b.by_two_shards} by two; " + ", ".join(
                    f"{s}: {b.shard_owned[s] - b.shard_missed[s]} of its {b.shard_owned[s]}, {b.shard_foreign[s]} foreign"
                    for s in b.shard_owned),
            )
            w = b.written
            report.check(
                f"the {system} emulator received exactly one write per linked agent, none back{tag}",
                w["once"] == b.linked and not w["twice_or_more"] and not w["never"] and not w["not_linked"]
                and b.written_back == 0,
                f"{w['once']} once, {w['twice_or_more']} more than once, {w['never']} never, "
                f"{w['not_linked']} not linked, {b.written_back} back",
            )
    report.figure("joins_ahead", {str(r.count): r.joins for r in runs})
    report.table(
        f"each burst beside the 1-process run (×1); {report.params['agents']:,} agents, {report.params['linked']:,} "
        f"linked, {report.params['store']} store, emulators at {report.params['latency_ms']} ms",
        ["burst", "sync processes", "converged in", "×1", "write requests CXone / SF", "×1", "GETs CXone / SF",
         "sync CPU per change (sum)", "×1", "busiest shard's CPU", "×1", "writes per shard"],
        rows,
    )
    report.note(
        f"no target on this machine: {report.env['cpu_count']} cores shared by every shard process and the emulators, "
        "so N processes cannot converge faster or spend less CPU in total; what sharding buys is each shard's work "
        "(writes per shard, the busiest shard's CPU: the critical path with a machine per shard) with nothing written twice"
    )
    report.note(
        "CPU: each process's process_time from its tick before the burst to its last tick that wrote or saw a change "
        "(the echoes'); per change = the sum over processes / linked agents"
    )
    report.note(
        "each shard polls both systems itself (the GETs grow with the count) and has its own max_concurrency "
        "bound; the shared API budget (Prefect global rate limits) needs a Prefect server and is not attached here"
    )


__all__ = ["WriteLog", "run", "shard_processes"]
