"""burst: every agent changes state at once on one side; how long until the other side shows it for all.

Topology: as in production, the sync runs in its own process (`python -m bench.child sync`:
`run_window`, what the sync flow runs, the config's 1 s interval) and the remote systems in another:
the emulators, served by uvicorn on loopback (real HTTP) in the bench's own process. Setup: the demo
contact center with `--agents` agents (default 10,000), onboarded. After the morning publish has
settled (every linked agent's Salesforce status mapped from its CXone state, echoes in):

1. CXone → Salesforce: every agent goes to *Unavailable: Break* in CXone at once (in-process, one
   call after the other under the emulator's lock, held for the whole burst: a poll of the sync's,
   from its own process, sees all of the burst or none of it).
   Measured: from the last change made until every linked agent's Salesforce status is what its rule
   maps that to (On_Break, by both demo rules).
2. Salesforce → CXone: every linked agent picks *Available_for_Chats* in the Omni widget at once.
   Measured: until every linked agent's CXone state is what its rule maps that to (Available; the
   chat team's Unavailable: CRM Work).

Each pair of bursts runs once per concurrency row: the config's `sync.max_concurrency` (the product
default, 64), then a loopback-tuned value (8; see bench/README.md), each in a new sync window (a new
child process taking the lease over from the store, as the next scheduled window does).

Baseline, same run, same emulators, after the sync has stopped, once per row: the same two bursts
carried by a bare client (plain httpx, one token each, the row's concurrency bound) in a child
process of its own: the reads that find the changes (the CXone delta, every page; the Salesforce
spells query, every page), then the writes (presence commands 200 per /composite/sobjects call;
CXone set state per agent, with a join first for each agent when the sync's burst joined too; when
the sync already had sessions, so does the baseline, joined beforehand, untimed). That is what the
emulators themselves cost for the burst; `sync - baseline` is the sync's own overhead, including up
to one poll interval of waiting for the next tick.

Target (the team's): each direction converges in under 30 s at 10,000 agents on this 2-core machine,
at the product's default max_concurrency. Checks: every linked agent converged; exactly one write
per linked agent in the burst's direction and none back (no ping-pong); every Salesforce poll reads
no more pages than the spells touched in its window make (a poll's floor is the previous watermark,
a background sweep's the watermark the previous sweep began from - SPELL_OVERLAP, which was less than
two SPELL_SWEEP_EVERY before the previous poll; a watermark is at least its poll's start - 1 s of clock
skew), so a quiet tick whose previous poll started more than overlap + two sweep periods + skew after
the last change reads one page per system (and one for a sweep's read, every 5 s); no read route but the polls after a window's first tick
(which loads the setup).
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bench.center import (
    POLL_ROUTES,
    BareProcess,
    BenchError,
    Center,
    SyncProcess,
    TickRecord,
    WindowSummary,
    onboarded_center,
    status_ids,
    wait_all,
    wait_until,
)
from bench.report import Report
from presence_sync.connectors.soql import quote
from presence_sync.emulators.faults import iso_z
from presence_sync.emulators.salesforce.schema import USER_SERVICE_PRESENCE
from presence_sync.engine import CxoneState, CxoneTarget
from presence_sync.tasks.sync.sources import SPELL_OVERLAP, SPELL_SWEEP_EVERY

NAME = "burst"
DEFAULT_AGENTS = 2_000  # 10,000 agents at a real round-trip time: bench/scale.py
QUICK_AGENTS = 500
TARGET_SECONDS = 30.0
CXONE_PAGE = 1000  # the CXone connector's page size (top)
SALESFORCE_PAGE = 2000  # Salesforce's query page
APPLY_DELAY_MS = 150  # the presence applier acts this long after a command arrives (as in the demo)
TUNED_CONCURRENCY = 8  # loopback-tuned (bench/README.md): not the product default
CLOCK_SKEW = timedelta(seconds=1)  # SalesforcePollSource's clock_skew (the sync's default)
# How long after a change a poll may read it: a sweep reads from where the previous began, which (sweeps
# run in the background, one at a time, each a second or two here) was less than two periods before.
SETTLE = SPELL_OVERLAP + 2 * SPELL_SWEEP_EVERY + CLOCK_SKEW

BREAK = ("Unavailable", "Break")
BACK = "Available_for_Chats"
DIRECTIONS = ("cxone->salesforce", "salesforce->cxone")
LABELS = {"cxone->salesforce": "CXone → Salesforce", "salesforce->cxone": "Salesforce → CXone"}


@dataclass
class Row:
    """One concurrency level: a sync window carrying both bursts, then the bare client's."""

    max_concurrency: int
    default: bool  # the config's (product default) value, not a tuned one
    ticks: list[TickRecord] = field(default_factory=list)
    settled_ticks: int = 0  # ticks before the first burst (the window's start, the morning publish)
    morning: float | None = None
    sync: dict[str, dict[str, Any]] = field(default_factory=dict)
    base: dict[str, dict[str, Any]] = field(default_factory=dict)
    window: WindowSummary | None = None
    pages: list[tuple[TickRecord, int, int]] = field(default_factory=list)  # (tick, spells touched, page bound)
    waited_out_overlap: bool = False  # the window ran on until quiet ticks past the overlap

    @property
    def label(self) -> str:
        return f"{self.max_concurrency} ({'config default' if self.default else 'loopback-tuned'})"


def _burst_cxone(center: Center, agent_ids: list[int]) -> float:
    """Every agent picks Unavailable: Break in CXone, under the tenant's lock (a poll sees all of the burst
    or none of it: "at once"); returns time.monotonic() after the last change."""
    tenant = center.stack.cxone.tenant
    with tenant._lock:  # the tenant's own (re-entrant) lock, which every API call takes
        for agent_id in agent_ids:
            tenant.set_state(agent_id, *BREAK)
    return time.monotonic()


def _burst_salesforce(center: Center, agent_ids: list[int]) -> float:
    """Every agent picks Available_for_Chats in Omni, under the emulator's lock (see `_burst_cxone`)."""
    emulator = center.stack.salesforce
    users = [center.sf_user(agent_id) for agent_id in agent_ids]
    with emulator.lock:
        for user_id in users:
            emulator.set_presence(user_id, BACK)
    return time.monotonic()


def _targets(center: Center) -> tuple[str, CxoneTarget]:
    """What the first linked agent's rule maps the two bursts to (what the bare baseline writes for all)."""
    some = next(iter(center.rules))
    sf_target = center.published(some, CxoneState(*BREAK))
    cx_target = center.subscribed(some, BACK)
    if sf_target is None or cx_target is None:
        raise BenchError("the demo rule does not map Unavailable: Break / Available_for_Chats; the burst needs both")
    return sf_target, cx_target


async def _sync_burst(
    center: Center, sync: SyncProcess, direction: str, agent_ids: list[int], linked: list[int], timeout: float
) -> dict[str, Any]:
    sf_target, cx_target = _targets(center)
    first_tick = len(sync.ticks)
    # Each agent's own rule says what the other side shows (the chat team's maps Available_for_Chats apart).
    sf_targets = {a: center.published(a, CxoneState(*BREAK)) or sf_target for a in linked}
    cx_targets = {a: center.subscribed(a, BACK) or cx_target for a in linked}
    if direction == "cxone->salesforce":
        changed_at = _burst_cxone(center, agent_ids)
        arrived = lambda a: center.salesforce_shows(a) == sf_targets[a]  # noqa: E731
    else:
        changed_at = _burst_salesforce(center, linked)
        arrived = lambda a: cx_targets[a].matches(center.cxone_shows(a))  # noqa: E731
    seconds = await wait_all(set(linked), arrived, timeout, sync, poll_seconds=0.1, what=f"the {direction} burst")
    converged_at = changed_at + seconds
    await sync.wait_quiet(since=first_tick, timeout=timeout)
    burst_ticks = sync.ticks[first_tick:]
    to_converge = [t for t in burst_ticks if t.ended_at <= converged_at] + [
        t for t in burst_ticks if t.ended_at > converged_at
    ][:1]
    return {
        "seconds": seconds,
        "changed_at": changed_at,
        "converged_at": converged_at,
        "first_tick": first_tick,
        "ticks_to_converge": len(to_converge),
        "writes": {k: sum(t.writes[k] for t in burst_ticks) for k in DIRECTIONS},
        "write_requests": {s: sum(t.write_requests[s] for t in burst_ticks) for s in ("cxone", "salesforce")},
        "statements": sum(t.statements for t in burst_ticks),
        "max_tick_seconds": max(t.seconds for t in burst_ticks),
    }


async def _sync_row(
    center: Center, row: Row, agent_ids: list[int], linked: list[int], interval: float, timeout: float, first: bool,
) -> None:
    """The row's sync window: (the morning publish,) both bursts; the first row then waits out the overlap."""
    holder = f"bench/burst-c{row.max_concurrency}"
    async with SyncProcess(
        center, holder=holder, interval_seconds=interval, max_concurrency=None if row.default else row.max_concurrency,
    ) as sync:
        if sync.max_concurrency != row.max_concurrency:
            raise BenchError(f"the sync child runs at max_concurrency {sync.max_concurrency}, not {row.max_concurrency}")
        if first:
            row.morning = await wait_all(linked, center.agrees, timeout, sync, poll_seconds=0.1, what="the morning publish")
        await sync.wait_quiet(timeout=timeout)
        row.settled_ticks = len(sync.ticks)
        for direction in DIRECTIONS:
            row.sync[direction] = await _sync_burst(center, sync, direction, agent_ids, linked, timeout)
        if first:
            # Until two quiet ticks whose previous poll started more than overlap + two sweep periods + skew after the last
            # spell touched: from there on a quiet tick reads one page per system, and a sweep one (tasks/sync/sources.py).
            # Once a run is enough to show it (it costs overlap + two sweep periods + skew + an interval or two of waiting).
            past = last_touch(center) + SETTLE.total_seconds()

            def settled() -> bool:
                ticks = sync.ticks[row.settled_ticks:]
                return sum(
                    1 for before, tick in zip(ticks, ticks[1:])
                    if before.started_utc > past and not tick.changes_seen and not sum(tick.writes.values())
                ) >= 2

            await wait_until(settled, timeout, sync, "two quiet sync ticks past the Salesforce poll's overlap")
            row.waited_out_overlap = True
        row.ticks = sync.ticks
    row.window = sync.result


async def _baseline_cxone_to_salesforce(
    center: Center, bare: BareProcess, agent_ids: list[int], linked: list[int], timeout: float
) -> dict[str, Any]:
    sf_target, _ = _targets(center)
    message = {
        "cmd": "cxone_to_salesforce", "since": iso_z(center.stack.cxone.clock.now()), "page_size": CXONE_PAGE,
        "state_key": CxoneState(*BREAK).key, "status_id": status_ids(center)[sf_target],
    }
    changed_at = _burst_cxone(center, agent_ids)
    pending = bare.start(message, timeout)
    seconds = await wait_all(
        set(linked), lambda a: center.salesforce_shows(a) == sf_target, timeout, pending,
        poll_seconds=0.1, what="the baseline's CXone -> Salesforce burst",
    )
    answer = await pending.answer()
    return {"seconds": seconds, "changed_at": changed_at, "reads": answer["reads"], "writes": answer["writes"],
            "write_requests": answer["write_requests"], "joined_beforehand": False}


async def _baseline_salesforce_to_cxone(
    center: Center, bare: BareProcess, linked: list[int], timeout: float, join_beforehand: bool
) -> dict[str, Any]:
    _, cx_target = _targets(center)
    if join_beforehand:  # the sync already had a session for each agent: so has the baseline (not timed)
        await bare.request({"cmd": "join", "agents": linked}, timeout)
    since = center.stack.salesforce.clock.now() - timedelta(milliseconds=1)
    soql = (
        "SELECT Id, UserId, ServicePresenceStatus.DeveloperName, StatusStartDate FROM UserServicePresence "
        f"WHERE StatusStartDate > {quote(since)} ORDER BY StatusStartDate"
    )
    message = {"cmd": "salesforce_to_cxone", "soql": soql, "status": BACK, "target": cx_target.to_api()}
    changed_at = _burst_salesforce(center, linked)
    pending = bare.start(message, timeout)
    seconds = await wait_all(
        set(linked), lambda a: cx_target.matches(center.cxone_shows(a)), timeout, pending,
        poll_seconds=0.1, what="the baseline's Salesforce -> CXone burst",
    )
    answer = await pending.answer()
    return {"seconds": seconds, "changed_at": changed_at, "reads": answer["reads"], "writes": answer["writes"],
            "write_requests": answer["write_requests"], "joined_beforehand": join_beforehand}


async def _baseline_row(
    center: Center, row: Row, agent_ids: list[int], linked: list[int], timeout: float
) -> None:
    sync = row.sync["salesforce->cxone"]
    writes = max(sync["writes"]["salesforce->cxone"], 1)
    join_beforehand = sync["write_requests"]["cxone"] / writes < 1.5  # the sync's burst made no joins
    async with BareProcess.open(center, row.max_concurrency) as bare:
        await bare.request({"cmd": "links", "users": {str(a): center.sf_user(a) for a in linked}})
        row.base["cxone->salesforce"] = await _baseline_cxone_to_salesforce(center, bare, agent_ids, linked, timeout)
        row.base["salesforce->cxone"] = await _baseline_salesforce_to_cxone(center, bare, linked, timeout, join_beforehand)


# --- Salesforce pages against the spells of each poll's window --------------------------------------------


def spell_touches(center: Center) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """Every spell's start and end (epoch seconds, Id), sorted: what a spell query's floor selects on."""
    emulator = center.stack.salesforce
    with emulator.lock:
        rows = list(emulator.org.table(USER_SERVICE_PRESENCE.name).rows.values())
    starts = sorted((r["StatusStartDate"].timestamp(), r["Id"]) for r in rows)
    ends = sorted((r["StatusEndDate"].timestamp(), r["Id"]) for r in rows if r.get("StatusEndDate") is not None)
    return starts, ends


def last_touch(center: Center) -> float:
    """When the last spell started or ended (epoch seconds)."""
    starts, ends = spell_touches(center)
    return max(series[-1][0] for series in (starts, ends) if series)


def touched(touches: tuple[list[tuple[float, str]], list[tuple[float, str]]], low: float, high: float) -> int:
    """Spells that started or ended in (low, high]."""
    ids: set[str] = set()
    for series in touches:
        start = bisect.bisect_right(series, (low, "\uffff"))
        end = bisect.bisect_right(series, (high, "\uffff"))
        ids.update(spell_id for _, spell_id in series[start:end])
    return len(ids)


def page_bounds(
    ticks: list[TickRecord], touches: tuple[list[tuple[float, str]], list[tuple[float, str]]]
) -> list[tuple[TickRecord, int, int]]:
    """(tick, spells its poll could have read, the pages those make) for every Salesforce poll but a window's first.

    A poll's floor is the previous poll's watermark; a sweep's (in the background, counted in the tick
    its requests fell in) the watermark the previous sweep began from - SPELL_OVERLAP, and that sweep
    began less than two SPELL_SWEEP_EVERY before the previous poll; a watermark is at least its poll's
    start - the clock skew; what a tick reads existed by its end. So each of a tick's two reads (its
    poll, and a sweep's that fell in it) reads at most the spells touched in (previous poll's start -
    SETTLE, its tick's end]: twice the pages those make. The first poll of a window reads from the saved
    watermark (or, without one, every current spell).
    """
    bounds = []
    previous: TickRecord | None = None
    for tick in ticks:
        if tick.polls["salesforce"] == 0:
            continue
        if previous is not None:
            count = touched(touches, previous.started_utc - SETTLE.total_seconds() - 0.01, tick.ended_utc + 0.01)
            bounds.append((tick, count, 2 * max(1, math.ceil(count / SALESFORCE_PAGE))))
        previous = tick
    return bounds


async def run(
    agents: int | None = None, quick: bool = False, interval: float | None = None,
    concurrency: tuple[int | None, ...] = (None, TUNED_CONCURRENCY),
) -> Report:
    """The benchmark; `interval` overrides the sync's poll interval (the smoke test's shortcut, not a figure);
    `concurrency` the rows' max_concurrency (None: the config's, the product default)."""
    agents = agents or (QUICK_AGENTS if quick else DEFAULT_AGENTS)
    timeout = max(60.0, agents / 25)  # far beyond the target: a timeout means broken, not slow
    report = Report(NAME, "every agent changes state at once on one side", params={"agents": agents})
    started = time.monotonic()
    async with onboarded_center(agents, apply_delay_ms=APPLY_DELAY_MS) as center:
        linked = sorted(center.rules)
        agent_ids = [int(a["agentId"]) for a in center.stack.cxone.tenant.states_page(0, 10**9).records]
        interval = interval or center.interval_seconds
        default = center.max_concurrency
        levels = list(dict.fromkeys(default if c is None else int(c) for c in concurrency))
        rows = [Row(level, level == default) for level in levels]
        report.params.update(
            linked=len(linked), interval_s=interval, max_concurrency="/".join(r.label for r in rows),
            apply_delay_ms=APPLY_DELAY_MS,
        )
        for i, row in enumerate(rows):
            await _sync_row(center, row, agent_ids, linked, interval, timeout, first=i == 0)
        touches = spell_touches(center)
        for row in rows:
            row.pages = page_bounds(row.ticks, touches)
        for row in rows:
            await _baseline_row(center, row, agent_ids, linked, timeout)
    report.seconds = time.monotonic() - started
    _fill(report, agents, linked, rows, interval)
    return report


def _row_figures(row: Row) -> dict[str, Any]:
    window = row.window
    assert window is not None
    after_first = row.ticks[1:]
    settled = [
        t for t, count, _ in row.pages
        if count == 0 and not t.changes_seen and not sum(t.writes.values())
    ]
    figures: dict[str, Any] = {
        "max_concurrency": row.max_concurrency,
        "default": row.default,
        "ticks_total": len(row.ticks),
        "settled_quiet_ticks": len(settled),
        "reads_per_settled_quiet_tick_max": {
            s: max((t.polls[s] for t in settled), default=0) for s in ("cxone", "salesforce")
        },
        "reads_per_tick_max": {s: max((t.polls[s] for t in row.ticks), default=0) for s in ("cxone", "salesforce")},
        "salesforce_polls_over_bound": sum(1 for t, _, bound in row.pages if t.polls["salesforce"] > bound),
        "salesforce_polls_bounded": len(row.pages),
        "other_reads": {s: sum(t.other_reads[s] for t in after_first) for s in ("cxone", "salesforce")},
        "setup_reads": {s: row.ticks[0].other_reads[s] if row.ticks else 0 for s in ("cxone", "salesforce")},
        "statements_per_tick_max": max((t.statements for t in row.ticks), default=0),
        "echoes": {d: window.outcome(d, "echo") for d in DIRECTIONS},
    }
    for d in DIRECTIONS:
        key = d.replace("->", "_to_")
        sync, base = row.sync[d], row.base[d]
        writes = sync["writes"][d]
        system = "cxone" if d == "salesforce->cxone" else "salesforce"
        figures.update({
            f"{key}_seconds": round(sync["seconds"], 3),
            f"{key}_baseline_seconds": round(base["seconds"], 3),
            f"{key}_ratio": round(sync["seconds"] / max(base["seconds"], 1e-9), 2),
            f"{key}_ticks": sync["ticks_to_converge"],
            f"{key}_writes": writes,
            f"{key}_writes_back": sync["writes"][_other(d)],
            f"{key}_write_requests": sync["write_requests"][system],
            f"{key}_write_requests_per_write": round(sync["write_requests"][system] / max(writes, 1), 3),
            f"{key}_baseline_write_requests": base["write_requests"],
            # Write requests per second from the burst to convergence: what the concurrency bound buys,
            # whatever the requests per write (a join first, or not).
            f"{key}_write_requests_per_second": round(sync["write_requests"][system] / max(sync["seconds"], 1e-9), 1),
            f"{key}_baseline_write_requests_per_second": round(base["write_requests"] / max(base["seconds"], 1e-9), 1),
            f"{key}_statements": sync["statements"],
            f"{key}_max_tick_seconds": round(sync["max_tick_seconds"], 3),
        })
    return figures


def _fill(report: Report, agents: int, linked: list[int], rows: list[Row], interval: float) -> None:
    n = len(linked)
    figures = {row.max_concurrency: _row_figures(row) for row in rows}
    main = rows[0]
    # The first row's figures flat (the product default unless `concurrency` said otherwise), every row's by level.
    for name, value in figures[main.max_concurrency].items():
        if name not in ("max_concurrency", "default"):
            report.figure(name, value, "s" if name.endswith("seconds") else "")
    report.figure("max_concurrency", main.max_concurrency)
    report.figure("rows", {str(level): f for level, f in figures.items()})
    if main.morning is not None:
        report.figure("morning_publish_seconds", round(main.morning, 3), "s")
    report.figure("expected_pages_per_burst_tick", {
        "cxone": math.ceil(agents / CXONE_PAGE), "salesforce": math.ceil(2 * n / SALESFORCE_PAGE),
    })

    table = []
    for row in rows:
        f = figures[row.max_concurrency]
        table += [
            [row.label, "sync", *(f"{row.sync[d]['seconds']:.2f} s" for d in DIRECTIONS)],
            ["", "baseline (bare client, own process)", *(f"{row.base[d]['seconds']:.2f} s" for d in DIRECTIONS)],
            ["", "sync / baseline", *(f"{f[d.replace('->', '_to_') + '_ratio']:.2f}x" for d in DIRECTIONS)],
            ["", "sync ticks until converged", *(str(row.sync[d]["ticks_to_converge"]) for d in DIRECTIONS)],
            ["", "sync writes (engine) / back the other way",
             *(f"{row.sync[d]['writes'][d]} / {row.sync[d]['writes'][_other(d)]}" for d in DIRECTIONS)],
            ["", "sync write requests CXone / Salesforce",
             *(f"{row.sync[d]['write_requests']['cxone']} / {row.sync[d]['write_requests']['salesforce']}" for d in DIRECTIONS)],
            ["", "baseline reads / writes / write requests",
             *(f"{row.base[d]['reads']} / {row.base[d]['writes']} / {row.base[d]['write_requests']}"
               + (" (joined beforehand)" if row.base[d]["joined_beforehand"] else "") for d in DIRECTIONS)],
            ["", "CXone write requests / s until converged: sync / baseline", "-",
             f"{f['salesforce_to_cxone_write_requests_per_second']:.0f} / "
             f"{f['salesforce_to_cxone_baseline_write_requests_per_second']:.0f}"],
            ["", "store statements during the burst", *(str(row.sync[d]["statements"]) for d in DIRECTIONS)],
            ["", "slowest tick", *(f"{row.sync[d]['max_tick_seconds']:.2f} s" for d in DIRECTIONS)],
        ]
    report.table(
        "time until every linked agent shows the mapped state (sync and bare client each in its own process)",
        ["max_concurrency", "", *(LABELS[d] for d in DIRECTIONS)], table,
    )
    bound = {t.index: (count, limit) for t, count, limit in main.pages}
    report.table(
        f"max_concurrency {main.label}: ticks from each burst until settled (poll requests are pages of one query "
        "per system; spells = spells touched in the Salesforce poll's window, the page bound they make)",
        ["burst", "tick", "starts after", "seconds", "changes seen", "polls CXone", "polls SF", "spells / bound",
         "writes", "write reqs CX/SF", "statements"],
        [
            [LABELS[d] if t.index - 1 == main.sync[d]["first_tick"] else "", t.index,
             f"{t.started_at - main.sync[d]['changed_at']:.1f} s", f"{t.seconds:.3f}", t.changes_seen,
             t.polls["cxone"], t.polls["salesforce"],
             "{} / {}".format(*bound[t.index]) if t.index in bound else "-",
             sum(t.writes.values()), f"{t.write_requests['cxone']}/{t.write_requests['salesforce']}", t.statements]
            for d, end in zip(DIRECTIONS, (main.sync[DIRECTIONS[1]]["first_tick"], len(main.ticks)), strict=True)
            for t in main.ticks[main.sync[d]["first_tick"]:end]
        ],
    )

    f = figures[main.max_concurrency]
    report.note(
        f"the sync ran in its own process (python -m bench.child sync: run_window, as the sync flow runs it), the "
        f"bare client in another, the emulators in the bench's: each its own GIL on {report.env['cpu_count']} cores, "
        "as against remote systems; the bench's emulator process serves both APIs and watches convergence in-process"
    )
    report.note(
        f"{f['ticks_total']} ticks in the first window; per burst tick at most CXone {f['reads_per_tick_max']['cxone']}, "
        f"Salesforce {f['reads_per_tick_max']['salesforce']} pages ({CXONE_PAGE} / {SALESFORCE_PAGE} records a page). "
        "The Salesforce poll reads from its watermark; every "
        f"{SPELL_SWEEP_EVERY.total_seconds():g} s a background sweep re-reads from the previous sweep's watermark - "
        f"{SPELL_OVERLAP.total_seconds():g} s (a watermark is at least its poll's start - "
        f"{CLOCK_SKEW.total_seconds():g} s): for up to {SETTLE.total_seconds():g} s + one interval after a burst "
        "a sweep's pages follow that burst's spells (a burst of n agents ends n spells and starts n), de-duplicated, then one page"
    )
    if main.morning is not None:
        report.note(f"morning publish (first tick writes every linked agent's status) took {main.morning:.2f} s")
    for row in rows:
        d = "salesforce->cxone"
        per = figures[row.max_concurrency]["salesforce_to_cxone_write_requests_per_write"]
        report.note(
            f"max_concurrency {row.label}: Salesforce → CXone write requests per write {per:g} "
            f"({'a join, then the state, per agent' if per >= 1.5 else 'the state only: sessions already known'}); "
            f"the baseline {'joined its sessions beforehand, untimed' if row.base[d]['joined_beforehand'] else 'joined in the burst'}"
        )
    slow = [t for row in rows for t in row.ticks[1:] if t.seconds > 5 * max(interval, 1.0)]
    if slow:
        worst = max(slow, key=lambda t: t.seconds)
        report.note(
            f"{len(slow)} tick(s) ran past 5x the interval (the slowest {worst.seconds:.1f} s): a tick applies all its "
            "writes before the next poll, so every other change waits that long; the sync lease "
            f"(TTL {_lease_ttl(interval):.0f} s) is renewed every TTL/3 while the writes are applied"
        )

    main_requests = main.sync["salesforce->cxone"]["write_requests"]["cxone"]
    for row in rows[1:]:
        times = ", ".join(f"{LABELS[d]} {row.sync[d]['seconds']:.2f} s" for d in DIRECTIONS)
        met = all(row.sync[d]["seconds"] < TARGET_SECONDS for d in DIRECTIONS)
        text = (
            f"at max_concurrency {row.label}{'' if row.default else ', not the product default'}: {times}; "
            f"that row {'would meet' if met else 'would miss'} the {TARGET_SECONDS:.0f} s target"
        )
        requests = row.sync["salesforce->cxone"]["write_requests"]["cxone"]
        if requests != main_requests:
            rate = figures[row.max_concurrency]["salesforce_to_cxone_write_requests_per_second"]
            text += (
                f" with {requests} CXone write requests; the first row's burst made {main_requests} (its window had "
                f"no session to reuse): at this row's {rate:.0f} requests/s those would take ~{main_requests / max(rate, 1e-9):.0f} s "
                "(an estimate from the rate, not a measurement)"
            )
        report.note(text)
    for d in DIRECTIONS:
        report.target(
            f"{LABELS[d]} burst of {n} linked agents converges in under {TARGET_SECONDS:.0f} s "
            f"(max_concurrency {main.label})",
            main.sync[d]["seconds"] < TARGET_SECONDS,
            f"{main.sync[d]['seconds']:.2f} s; baseline {main.base[d]['seconds']:.2f} s",
        )
    for row in rows:
        f = figures[row.max_concurrency]
        tag = f" [max_concurrency {row.max_concurrency}]"
        for d in DIRECTIONS:
            report.check(f"{LABELS[d]}: every linked agent converged{tag}", True, f"{n} agents")
            report.check(
                f"{LABELS[d]}: one write per linked agent, none back (no ping-pong){tag}",
                row.sync[d]["writes"][d] == n and row.sync[d]["writes"][_other(d)] == 0,
                f"{row.sync[d]['writes'][d]} writes, {row.sync[d]['writes'][_other(d)]} back; write requests "
                f"{f[d.replace('->', '_to_') + '_write_requests']}",
            )
        quiet = f["reads_per_settled_quiet_tick_max"]
        report.check(
            f"a quiet tick past the overlap reads one page per system (Salesforce: and a sweep's, every 5 s){tag}",
            (f["settled_quiet_ticks"] > 0 or not row.waited_out_overlap) and quiet["cxone"] <= 1 and quiet["salesforce"] <= 2,
            f"{f['settled_quiet_ticks']} quiet ticks whose previous Salesforce poll started more than "
            f"{SETTLE.total_seconds():g} s (overlap + two sweep periods + clock skew) after the last change; max CXone {quiet['cxone']}, "
            f"Salesforce {quiet['salesforce']}"
            + ("" if row.waited_out_overlap else "; this window was not kept running to wait out the overlap"),
        )
        over = [(t, count, limit) for t, count, limit in row.pages if t.polls["salesforce"] > limit]
        report.check(
            f"Salesforce pages follow the spells of the poll's overlap window, not the agent count{tag}",
            not over,
            f"{len(row.pages)} polls checked, {len(over)} over their bound"
            + (f", e.g. tick {over[0][0].index}: {over[0][0].polls['salesforce']} pages for {over[0][1]} spells" if over else ""),
        )
        report.check(
            f"no per-agent reads (after the setup load, only the poll routes were read){tag}",
            f["other_reads"]["cxone"] == 0 and f["other_reads"]["salesforce"] == 0,
            f"other data-API GETs: CXone {f['other_reads']['cxone']}, Salesforce {f['other_reads']['salesforce']} "
            f"(setup load in the first tick: CXone {f['setup_reads']['cxone']}, Salesforce "
            f"{f['setup_reads']['salesforce']}); poll routes {', '.join(r for rs in POLL_ROUTES.values() for r in rs)}",
        )


def _other(direction: str) -> str:
    return "salesforce->cxone" if direction == "cxone->salesforce" else "cxone->salesforce"


def _lease_ttl(interval: float) -> float:
    from presence_sync.tasks.sync.runner import lease_ttl_seconds

    return lease_ttl_seconds(interval)


__all__ = ["page_bounds", "run", "spell_touches", "touched"]
