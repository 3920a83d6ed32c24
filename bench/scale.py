"""scale: the contact center at size with a real round-trip time, each figure against its latency floor.

Setup: the demo center with `--agents` agents (default 10,000), onboarded, then both emulators'
own `latency_ms` (their fault controls, `PUT /__emulator/faults`) set to 50 ms, the presence applier's
delay 150 ms; the sync in its own process (`python -m bench.child sync`: `run_window`), 1 s interval,
its ticks not waiting for the bench to read the emulators' counters (`--no-tick-acks`: a burst's tick
overruns its interval, and the bench's process, serving the burst, took up to 0.13 s to answer).
Per store (SQLite, then PostgreSQL on a database of its own, created and dropped here):

1. **first window**: the morning publish, then a burst each way (every agent to *Unavailable: Break*
   in CXone; every linked agent to *Available_for_Chats* in Omni), each timed until every linked agent
   shows the mapped state, against its floor (below);
2. **a later window** (a new sync process taking the lease over: sessions kept from the first): the
   same two bursts; then **steady state**: one change per agent per minute in aggregate (on a fifth of
   the linked agents, so that the rest can burst), half in each system, each timed until the other
   side shows it; halfway through, every other linked agent changes in Omni at once (a burst of 80%)
   while the steady changes go on, timed separately (with them, the changes still on their way when the
   burst began: the poll that reads the burst reads them too);
3. **naive**: the same kind of changes for a subset (default 500, half each way) carried by
   `bench/naive.py` (one Prefect task per change, sequential requests, no batching, no session cache),
   compared per change with the later window's bursts.

Floors (round trips measured sequentially by a bare httpx client in its own process, no project code,
against the same emulators with the same latency: the emulators' own cost):
- steady, per change: `U·I + r_read + r_write + d_apply + V·w` (as `bench.propagation`), p95 taken at U = V = 0.95;
- burst: `W + pages · r_read + ceil(requests / max_concurrency) · r_write + d_apply`, with requests the
  minimum the burst needs: one CXone set-state per agent; one `/composite/sobjects` call per 200
  presence commands. W is the wait from the burst to the sync's next tick as it fell in this run (I/2
  on average: where the burst falls against the tick schedule is chance, and the bench makes it
  right after a quiet tick ended, which by itself would cost ~0.4 s more than I/2 every time).

Also: the sync process's CPU (`time.process_time`, read at every tick) per change and as a share of
one core at the steady rate, its peak RSS (`VmHWM`: `ru_maxrss` would count the bench itself, carried over the fork), the longest tick, Salesforce API calls per
day at the interval (every data-API request of the steady phase, scaled to 24 h) and CXone requests
per change.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import secrets
import signal
import time
from collections.abc import Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from bench.burst import BACK, BREAK, _burst_cxone, _burst_salesforce, _targets
from bench.center import (
    CHILD_START_SECONDS,
    BenchError,
    Center,
    SyncProcess,
    TickRecord,
    _child_env,
    onboarded_center,
    status_ids,
    wait_all,
)
from bench.propagation import floor_of, measure_floor_parts
from bench.report import Report
from presence_sync.connectors.presence import spell_query
from presence_sync.emulators.faults import FaultSettings, iso_z
from presence_sync.engine import CxoneState
from presence_sync.tasks.sync.sources import SPELL_OVERLAP
from presence_sync.tasks.sync.summary import percentile

NAME = "scale"
DEFAULT_AGENTS = 10_000
QUICK_AGENTS = 200
LATENCY_MS = 50
APPLY_DELAY_MS = 150
STEADY_SECONDS = 30.0
QUICK_STEADY_SECONDS = 8.0
NAIVE_CHANGES = 500
QUICK_NAIVE_CHANGES = 20
STEADY_SHARE = 0.2  # of the linked agents carry the steady changes; the rest can burst meanwhile
WATCH_SECONDS = 0.02  # how often the bench looks at the far side for a steady change (V·w in the floor)
FLOOR_SAMPLES = 15
COMPOSITE_CHUNK = 200
CXONE_PAGE, SALESFORCE_PAGE = 1000, 2000
DEFAULT_PG_SERVER = os.environ.get("PRESENCE_SYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# The team's targets (issue 12).
RATIO_TARGET = 1.5
TICK_TARGET_S = 2.0
CPU_PER_CHANGE_TARGET_MS = 0.5
CORE_SHARE_TARGET = 0.15
RSS_TARGET_MB = 300
NAIVE_TARGET = 20.0

DIRECTIONS = ("cxone->salesforce", "salesforce->cxone")
LABELS = {"cxone->salesforce": "CXone → Salesforce", "salesforce->cxone": "Salesforce → CXone"}
CX_STEADY = (CxoneState("Available"), CxoneState("Unavailable", "Break"), CxoneState("Unavailable", "Lunch"))
SF_STEADY = ("Available_for_Chats", "On_Break", "Lunch")


# --- PostgreSQL: a fresh database per benchmark ---------------------------------------------------------


@asynccontextmanager
async def fresh_database(server_url: str, prefix: str = "presence_sync_bench") -> AsyncIterator[str]:
    """A new database on the PostgreSQL server of `server_url` (any database on it), dropped afterwards; its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as error:
        raise BenchError(f"could not create a database on {url.render_as_string()}: {error}") from None
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with suppress(psycopg.Error), psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_answers(server_url: str) -> bool:
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means: no PostgreSQL row
        return False


# --- steady changes ----------------------------------------------------------------------------------------


@dataclass
class Timed:
    direction: str
    at: float
    arrived: Callable[[], bool]
    during_burst: bool
    latency: float | None = None
    before_burst: bool = False  # made before the burst began, still on its way then (counts as during it)


@dataclass
class Steady:
    """People changing state at `rate` a second over `agents`, half in each system; each change timed."""

    center: Center
    agents: list[int]
    rate: float
    rng: random.Random
    changes: list[Timed] = field(default_factory=list)
    pending: dict[int, Timed] = field(default_factory=dict)
    bursting: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def change(self, agent_id: int) -> Timed | None:
        center = self.center
        if self.rng.random() < 0.5:
            shown = center.salesforce_shows(agent_id)
            current = center.cxone_shows(agent_id)
            options = [s for s in CX_STEADY if s != current and center.published(agent_id, s) not in (None, shown)]
            if not options:
                return None
            state = self.rng.choice(options)
            target = center.published(agent_id, state)
            center.stack.cxone.tenant.set_state(agent_id, state.name, state.code)
            timed = Timed("cxone->salesforce", time.monotonic(), lambda: center.salesforce_shows(agent_id) == target,
                          self.bursting)
        else:
            current = center.cxone_shows(agent_id)
            shown = center.salesforce_shows(agent_id)
            options = [
                s for s in SF_STEADY
                if s != shown and (t := center.subscribed(agent_id, s)) is not None and not t.matches(current)
            ]
            if not options:
                return None
            status = self.rng.choice(options)
            target_cx = center.subscribed(agent_id, status)
            assert target_cx is not None
            center.stack.salesforce.set_presence(center.sf_user(agent_id), status)
            timed = Timed("salesforce->cxone", time.monotonic(),
                          lambda: target_cx.matches(center.cxone_shows(agent_id)), self.bursting)
        self.changes.append(timed)
        return timed

    async def drive(self) -> None:
        order = list(self.agents)
        self.rng.shuffle(order)
        started = time.monotonic()
        for k in range(10**9):
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), max(0.0, started + k / self.rate - time.monotonic()))
            # Checked after the wait: a change made once the watcher may have finished would never be timed.
            if self.stop.is_set():
                return
            agent_id = order[k % len(order)]
            if agent_id in self.pending:
                continue
            timed = self.change(agent_id)
            if timed is not None:
                self.pending[agent_id] = timed

    async def watch(self) -> None:
        while not self.stop.is_set() or self.pending:
            now = time.monotonic()
            for agent_id, timed in list(self.pending.items()):
                if timed.arrived():
                    timed.latency = now - timed.at
                    del self.pending[agent_id]
                elif now - timed.at > 120:
                    del self.pending[agent_id]  # never arrived: counted as missed
            await asyncio.sleep(WATCH_SECONDS)


# --- one store's run -------------------------------------------------------------------------------------


@dataclass
class Burst:
    direction: str
    agents: int
    seconds: float
    floor: float
    requests: int  # the sync's write requests to the written system during the burst
    minimum_requests: int
    # Where its time went, until it converged: share of one core the sync process used, and each
    # emulator's serving thread (a burst at a few times its floor on a busy machine is CPU, not waiting).
    sync_busy: float | None = None
    emulators_busy: dict[str, float] = field(default_factory=dict)
    sync_cpu_s: float | None = None  # the sync's CPU for the whole burst, its echoes included (until quiet)
    tick_wait: float | None = None  # from the burst to the start of the sync's next tick (W in the floor)


@dataclass
class StoreRun:
    store: str
    morning: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    floor: dict[str, dict[str, float]] = field(default_factory=dict)
    bursts: dict[str, dict[str, Burst]] = field(default_factory=dict)  # "first" / "later" -> direction -> Burst
    steady: list[Timed] = field(default_factory=list)
    steady_seconds: float = 0.0
    steady_cpu: float = 0.0
    steady_ticks: list[TickRecord] = field(default_factory=list)
    during_burst: Burst | None = None
    rss_max_kb: int = 0
    naive: dict[str, Any] = field(default_factory=dict)
    max_concurrency: int = 0


def _burst_floor(run: StoreRun, burst: Burst, concurrency: int, interval: float) -> tuple[float, int]:
    parts, n = run.parts, burst.agents
    wait = 0.5 * interval if burst.tick_wait is None else burst.tick_wait
    if burst.direction == "cxone->salesforce":
        requests = math.ceil(n / COMPOSITE_CHUNK)
        pages = math.ceil(n / CXONE_PAGE)
        floor = (wait + pages * parts["read_cxone"] + math.ceil(requests / concurrency) * parts["write_salesforce"]
                 + parts["apply_salesforce"])
    else:
        requests = n
        pages = math.ceil(2 * n / SALESFORCE_PAGE)
        floor = wait + pages * parts["read_salesforce"] + math.ceil(requests / concurrency) * parts["write_cxone"]
    return floor, requests


def _tick_wait(sync: SyncProcess, since: int, began: float) -> float | None:
    """From `began` (a burst) to the start of the first of the sync's ticks after tick `since` that
    started after it: the part of the burst's time that is the tick schedule's, not the sync's work."""
    return next((t.started_at - began for t in sync.ticks[since:] if t.started_at >= began), None)


async def _burst(center: Center, sync: SyncProcess, run: StoreRun, direction: str, agent_ids: list[int],
                 linked: list[int], interval: float, timeout: float) -> Burst:
    sf_target, cx_target = _targets(center)
    first_tick = len(sync.ticks)
    emulators_before, began = center.stack.serving_cpu_seconds(), time.monotonic()
    # Each agent's own rule says what the other side shows (the chat team's maps Available_for_Chats apart).
    sf_targets = {a: center.published(a, CxoneState(*BREAK)) or sf_target for a in linked}
    cx_targets = {a: center.subscribed(a, BACK) or cx_target for a in linked}
    if direction == "cxone->salesforce":
        _burst_cxone(center, agent_ids)
        arrived: Callable[[int], bool] = lambda a: center.salesforce_shows(a) == sf_targets[a]  # noqa: E731
    else:
        _burst_salesforce(center, linked)
        arrived = lambda a: cx_targets[a].matches(center.cxone_shows(a))  # noqa: E731
    seconds = await wait_all(set(linked), arrived, timeout, sync, poll_seconds=0.05, what=f"the {direction} burst")
    converged_at, emulators_then = time.monotonic(), center.stack.serving_cpu_seconds()
    await sync.wait_quiet(since=first_tick, timeout=timeout)
    system = "salesforce" if direction == "cxone->salesforce" else "cxone"
    requests = sum(t.write_requests[system] for t in sync.ticks[first_tick:])
    burst = Burst(direction, len(linked), seconds, 0.0, requests, 0, tick_wait=_tick_wait(sync, first_tick, began))
    if run.parts:
        burst.floor, burst.minimum_requests = _burst_floor(run, burst, sync.max_concurrency, interval)
    burst.emulators_busy = {
        name: (emulators_then[name] - emulators_before[name]) / max(converged_at - began, 1e-9) for name in emulators_then
    }
    if first_tick > 0:
        # Tick-resolved: from the last tick before the burst to the first that ended after it converged.
        before, ticks = sync.ticks[first_tick - 1], sync.ticks[first_tick:]
        then = next((t for t in ticks if t.ended_at >= converged_at), ticks[-1])
        burst.sync_busy = (then.cpu_s - before.cpu_s) / max(then.ended_at - before.ended_at, 1e-9)
        burst.sync_cpu_s = ticks[-1].cpu_s - before.cpu_s
    return burst


async def _naive(center: Center, linked: list[int], count: int, timeout: float) -> dict[str, Any]:
    """The naive design on `count` changes (half each way), in its own process; seconds until all arrived."""
    chosen = linked[:count]
    half = len(chosen) // 2
    to_sf, to_cx = chosen[:half], chosen[half:]
    ids = status_ids(center)
    sf_credentials, cx_credentials = await center.stack.credentials()
    config = center.ctx.config
    # Every chosen agent is on Break in both systems (the steady burst left them there): each changes to Available.
    cx_available = CxoneState("Available")
    # Each agent's own rule says what the other side should show (the chat team's maps apart).
    sf_targets = {a: center.published(a, cx_available) for a in to_sf}
    cx_targets = {a: center.subscribed(a, BACK) for a in to_cx}
    changes = [{"to": "salesforce", "user_id": center.sf_user(a), "status_id": ids[str(sf_targets[a])]} for a in to_sf]
    changes += [{"to": "cxone", "agent_id": a, "target": target.to_api()} for a, target in cx_targets.items() if target]
    init = {
        "cxone_url": center.stack.cxone_url, "salesforce_url": center.stack.salesforce_url,
        "cxone_credentials": cx_credentials, "salesforce_credentials": sf_credentials,
        "cxone_api_version": config.cxone.api_version, "salesforce_api_version": config.salesforce.api_version,
        "cx_since": iso_z(center.stack.cxone.clock.now()),
        "spell_query": spell_query(center.stack.salesforce.clock.now() - SPELL_OVERLAP),
        "changes": changes,
    }
    import json
    import sys

    from bench.center import PROJECT_ROOT

    stderr_path = center.folder / "naive.stderr.log"
    home = center.folder / "naive-prefect"
    home.mkdir(mode=0o700, exist_ok=True)
    with open(stderr_path, "wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.naive", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=stderr, env={**_child_env(), "BENCH_NAIVE_PREFECT_HOME": str(home)}, cwd=str(PROJECT_ROOT),
            start_new_session=True,
        )
    assert proc.stdin is not None and proc.stdout is not None

    async def line(what: str) -> dict[str, Any]:
        raw = await asyncio.wait_for(proc.stdout.readline(), CHILD_START_SECONDS + timeout)  # type: ignore[union-attr]
        message = json.loads(raw) if raw else {"event": "closed"}
        if message.get("event") != what:
            tail = stderr_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise BenchError(f"the naive implementation answered {message!r} instead of {what!r}; its stderr:\n{tail}")
        return message

    try:
        proc.stdin.write((json.dumps(init) + "\n").encode())
        await line("ready")
        for a in to_sf:
            center.stack.cxone.tenant.set_state(a, "Available", None)
        for a in to_cx:
            center.stack.salesforce.set_presence(center.sf_user(a), BACK)
        proc.stdin.write(b"go\n")
        arrived_sf = set(to_sf)
        seconds = await wait_all(
            set(chosen),
            lambda a: (center.salesforce_shows(a) == sf_targets[a]) if a in arrived_sf
            else bool((target := cx_targets[a]) and target.matches(center.cxone_shows(a))),
            timeout, None, poll_seconds=0.02, what="the naive implementation's changes",
        )
        done = await line("done")
    finally:
        # Its process group: the child and the ephemeral Prefect server it started, which would otherwise
        # outlive it holding the pipe (and asyncio waits for the pipe to close).
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
    return {"changes": len(chosen), "seconds": seconds, "requests": int(done["requests"]),
            "per_change": seconds / max(len(chosen), 1)}


def _set_latency(center: Center, latency_ms: int) -> None:
    for emulator in (center.stack.cxone, center.stack.salesforce):
        emulator.faults.configure(FaultSettings(latency_ms=latency_ms))


async def _store_run(
    store: str, store_url: str | None, agents: int, quick: bool, interval: float | None, latency_ms: int,
    steady_seconds: float, naive_changes: int,
) -> StoreRun:
    run = StoreRun(store)
    timeout = max(120.0, agents / 20)
    async with onboarded_center(agents, apply_delay_ms=APPLY_DELAY_MS, store_url=store_url) as center:
        linked = sorted(center.rules)
        agent_ids = [int(a["agentId"]) for a in center.stack.cxone.tenant.states_page(0, 10**9).records]
        interval = interval or center.interval_seconds
        _set_latency(center, latency_ms)
        run.max_concurrency = center.max_concurrency

        # 1. The first window: nothing kept from an earlier one.
        async with SyncProcess(center, holder="bench/scale-1", interval_seconds=interval, tick_acks=False) as sync:
            run.morning = await wait_all(linked, center.agrees, timeout, sync, poll_seconds=0.1, what="the morning publish")
            await sync.wait_quiet(timeout=timeout)
            run.bursts["first"] = {
                d: await _burst(center, sync, run, d, agent_ids, linked, interval, timeout) for d in DIRECTIONS
            }
            run.rss_max_kb = max(t.rss_max_kb for t in sync.ticks)

        # The floor's round trips, the sync stopped (its agent in a settable state since the morning publish).
        floor_agent = _FloorAgent(linked[-1], center.sf_user(linked[-1]))
        run.parts = await measure_floor_parts(center, floor_agent, 5 if quick else FLOOR_SAMPLES)  # type: ignore[arg-type]
        run.floor = floor_of(run.parts, interval, WATCH_SECONDS)
        for burst in run.bursts["first"].values():
            burst.floor, burst.minimum_requests = _burst_floor(run, burst, run.max_concurrency, interval)

        # 2. A later window (sessions kept), then the steady state with a burst in its middle.
        steady_agents = linked[: max(2, int(len(linked) * STEADY_SHARE))]
        rest = linked[len(steady_agents):]
        async with SyncProcess(center, holder="bench/scale-2", interval_seconds=interval, tick_acks=False) as sync:
            await sync.wait_quiet(timeout=timeout)
            run.bursts["later"] = {
                d: await _burst(center, sync, run, d, agent_ids, linked, interval, timeout) for d in DIRECTIONS
            }
            steady = Steady(center, steady_agents, rate=len(linked) / 60.0, rng=random.Random(12))
            first_tick = len(sync.ticks)
            began = time.monotonic()
            driver, watcher = asyncio.create_task(steady.drive()), asyncio.create_task(steady.watch())
            await asyncio.sleep(steady_seconds / 2)
            # Every other linked agent picks On_Break in Omni at once, while the steady changes go on.
            quiet_ticks = sync.ticks[first_tick:]
            run.steady_seconds = (quiet_ticks[-1].ended_at - quiet_ticks[0].ended_at) if len(quiet_ticks) > 1 else 0.0
            run.steady_cpu = (quiet_ticks[-1].cpu_s - quiet_ticks[0].cpu_s) if len(quiet_ticks) > 1 else 0.0
            run.steady_ticks = quiet_ticks[1:]
            steady_changes_before = len(steady.changes)
            if rest:
                steady.bursting = True
                burst_tick = len(sync.ticks)
                target = center.subscribed(rest[0], "On_Break")
                assert target is not None
                emulator = center.stack.salesforce
                burst_began = time.monotonic()
                with emulator.lock:
                    for agent_id in rest:
                        emulator.set_presence(center.sf_user(agent_id), "On_Break")
                seconds = await wait_all(set(rest), lambda a: target.matches(center.cxone_shows(a)), timeout, sync,
                                         poll_seconds=0.05, what="the burst during the steady state")
                converged_at = time.monotonic()
                run.during_burst = Burst("salesforce->cxone", len(rest), seconds, 0.0, 0, 0,
                                         tick_wait=_tick_wait(sync, burst_tick, burst_began))
                run.during_burst.floor, run.during_burst.minimum_requests = _burst_floor(
                    run, run.during_burst, sync.max_concurrency, interval)
                steady.bursting = False
            left = steady_seconds - (time.monotonic() - began)
            if left > 0:
                await asyncio.sleep(left)
            steady.stop.set()
            await driver
            await asyncio.wait_for(watcher, 150)
            run.steady = steady.changes
            if rest:
                # A change still on its way when the burst began was read with the burst: it counts as made
                # during it (left with the quiet ones, the ~80 a side made in the second before the burst
                # put the quiet p95 at 1.4-2.9x in about one run in three).
                for timed in run.steady:
                    if timed.at < burst_began and timed.latency is not None and timed.at + timed.latency > burst_began:
                        timed.during_burst = timed.before_burst = True
            if run.during_burst is not None:  # its ticks have all reported by now (the steady writes' included)
                after = sync.ticks[burst_tick:]
                upto = next((i for i, t in enumerate(after) if t.ended_at >= converged_at), len(after) - 1)
                run.during_burst.requests = sum(t.write_requests["cxone"] for t in after[: upto + 1])
            run.steady_changes_quiet = steady_changes_before  # type: ignore[attr-defined]
            run.all_steady_ticks = sync.ticks[first_tick:]  # type: ignore[attr-defined]
            await sync.wait_quiet(timeout=timeout)
            run.rss_max_kb = max(run.rss_max_kb, max(t.rss_max_kb for t in sync.ticks))

        # 3. The naive design, the sync stopped, on agents the steady burst left on Break in both systems.
        if rest and naive_changes > 0:
            run.naive = await _naive(center, rest, min(naive_changes, len(rest)), timeout)
    return run


@dataclass(frozen=True)
class _FloorAgent:
    cxone_agent_id: int
    salesforce_user_id: str


# --- the report -------------------------------------------------------------------------------------------------


async def run(
    agents: int | None = None, quick: bool = False, interval: float | None = None, latency_ms: int = LATENCY_MS,
    store_url: str | None = None, steady_seconds: float | None = None, naive_changes: int | None = None,
) -> Report:
    """The benchmark. `store_url`: a PostgreSQL server (the bench creates and drops a database of its own on it)
    for the PostgreSQL row; by default the local test server when it answers (not in --quick); "none": SQLite only."""
    agents = agents or (QUICK_AGENTS if quick else DEFAULT_AGENTS)
    steady_seconds = steady_seconds or (QUICK_STEADY_SECONDS if quick else STEADY_SECONDS)
    if naive_changes is None:
        naive_changes = QUICK_NAIVE_CHANGES if quick else NAIVE_CHANGES
    report = Report(NAME, "at size with a real round-trip time, against the latency floor", params={
        "agents": agents, "latency_ms": latency_ms, "interval_s": interval or 1.0, "apply_delay_ms": APPLY_DELAY_MS,
        "steady_s": steady_seconds, "naive_changes": naive_changes,
    })
    started = time.monotonic()
    load_before = os.getloadavg()
    pg_server = None if store_url == "none" else (store_url or (None if quick else DEFAULT_PG_SERVER))
    stores: list[tuple[str, str | None]] = [("sqlite", None)]
    if pg_server is not None:
        if postgres_answers(pg_server):
            stores.append(("postgresql", pg_server))
        else:
            report.note(f"no PostgreSQL row: no server answered at {pg_server.split('@')[-1]} (give one with --store-url)")
    runs: list[StoreRun] = []
    for store, server in stores:
        if server is None:
            runs.append(await _store_run(store, None, agents, quick, interval, latency_ms, steady_seconds, naive_changes))
        else:
            async with fresh_database(server) as url:
                runs.append(await _store_run(store, url, agents, quick, interval, latency_ms, steady_seconds, naive_changes))
    load_after = os.getloadavg()
    report.seconds = time.monotonic() - started
    report.params["load_before"] = "/".join(f"{x:.2f}" for x in load_before)
    report.params["load_after"] = "/".join(f"{x:.2f}" for x in load_after)
    report.params["max_concurrency"] = runs[0].max_concurrency
    _fill(report, runs, interval or 1.0)
    return report


def _ratio(value: float | None, floor: float) -> str:
    return "-" if value is None or floor <= 0 else f"{value / floor:.2f}x"


def _waited(burst: Burst) -> str:
    return "next tick: I/2" if burst.tick_wait is None else f"next tick after {burst.tick_wait:.2f} s"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _fill(report: Report, runs: list[StoreRun], interval: float) -> None:
    rows: list[list[Any]] = []
    busy_rows: list[list[Any]] = []
    split: list[str] = []
    figures: dict[str, Any] = {}
    for r in runs:
        f: dict[str, Any] = {}
        quiet = [t for t in r.steady if not t.during_burst]
        during = [t for t in r.steady if t.during_burst]
        for d in DIRECTIONS:
            key = d.replace("->", "_to_")
            floor95 = r.floor[d]["p95"]
            for label, group in (("steady", quiet), ("steady_during_burst", during)):
                lat = sorted(t.latency for t in group if t.direction == d and t.latency is not None)
                p95 = percentile(lat, 95)
                f[f"{label}_{key}_p95"] = p95
                f[f"{label}_{key}_count"] = len(lat)
                f[f"{label}_{key}_missed"] = sum(1 for t in group if t.direction == d and t.latency is None)
                f[f"{label}_{key}_ratio"] = None if p95 is None else round(p95 / floor95, 3)
                rows.append([r.store, f"{label.replace('_', ' ')} p95 ({len(lat)} changes)", LABELS[d],
                             "-" if p95 is None else f"{p95:.3f} s", f"{floor95:.3f} s", _ratio(p95, floor95),
                             f"≤ {RATIO_TARGET}x"])
            f[f"floor_{key}_p95"] = round(floor95, 4)
            # Which of the changes timed with the burst make its p95: those made before it or after it began.
            for label, made_before in (("made_before", True), ("made_after", False)):
                lat = sorted(t.latency for t in during if t.direction == d and t.latency is not None
                             and t.before_burst is made_before)
                p95 = percentile(lat, 95)
                f[f"steady_during_burst_{key}_{label}_count"] = len(lat)
                f[f"steady_during_burst_{key}_{label}_ratio"] = None if p95 is None else round(p95 / floor95, 3)
                if during:
                    split.append(f"{LABELS[d]} [{r.store}], {len(lat)} made {label[5:]} it began: {_ratio(p95, floor95)}")
        for window in ("first", "later"):
            for d, b in r.bursts.get(window, {}).items():
                key = f"burst_{window}_{d.replace('->', '_to_')}"
                f[f"{key}_seconds"] = round(b.seconds, 3)
                f[f"{key}_floor"] = round(b.floor, 3)
                f[f"{key}_ratio"] = round(b.seconds / b.floor, 3)
                f[f"{key}_requests"] = b.requests
                f[f"{key}_minimum_requests"] = b.minimum_requests
                f[f"{key}_tick_wait"] = None if b.tick_wait is None else round(b.tick_wait, 3)
                rows.append([r.store, f"burst, {window} window ({b.agents} agents; {b.requests} write requests, "
                             f"minimum {b.minimum_requests}; {_waited(b)})", LABELS[d], f"{b.seconds:.2f} s", f"{b.floor:.2f} s",
                             _ratio(b.seconds, b.floor), f"≤ {RATIO_TARGET}x"])
                cpu_per_agent = None if b.sync_cpu_s is None else 1000 * b.sync_cpu_s / b.agents
                f[f"{key}_sync_busy"] = None if b.sync_busy is None else round(b.sync_busy, 3)
                f[f"{key}_sync_cpu_ms_per_agent"] = None if cpu_per_agent is None else round(cpu_per_agent, 3)
                f.update({f"{key}_emulator_busy_{name}": round(v, 3) for name, v in b.emulators_busy.items()})
                busy_rows.append([r.store, f"{window} window", LABELS[d], f"{b.seconds:.2f} s (floor {b.floor:.2f} s)",
                                  _share(b.sync_busy), _share(b.emulators_busy.get("cxone")),
                                  _share(b.emulators_busy.get("salesforce")),
                                  "-" if cpu_per_agent is None else f"{cpu_per_agent:.2f} ms"])
        if r.during_burst is not None:
            b = r.during_burst
            f["burst_during_steady_seconds"] = round(b.seconds, 3)
            f["burst_during_steady_ratio"] = round(b.seconds / b.floor, 3)
            f["burst_during_steady_tick_wait"] = None if b.tick_wait is None else round(b.tick_wait, 3)
            rows.append([r.store, f"burst during the steady state ({b.agents} agents; {b.requests} CXone write requests, "
                         f"the steady changes' included; {_waited(b)})",
                         LABELS[b.direction], f"{b.seconds:.2f} s", f"{b.floor:.2f} s", _ratio(b.seconds, b.floor),
                         f"≤ {RATIO_TARGET}x"])
        all_ticks: list[TickRecord] = getattr(r, "all_steady_ticks", [])
        longest = max((t.seconds for t in all_ticks), default=0.0)
        f["longest_steady_tick_seconds"] = round(longest, 3)
        rows.append([r.store, "longest tick in the steady state (burst included)", "", f"{longest:.2f} s",
                     "", f"{longest / TICK_TARGET_S:.2f}x of target", f"≤ {TICK_TARGET_S:g} s"])
        changes = getattr(r, "steady_changes_quiet", 0)
        cpu_ms = 1000 * r.steady_cpu / max(changes, 1)
        share = r.steady_cpu / r.steady_seconds if r.steady_seconds else 0.0
        f.update(steady_changes=changes, steady_cpu_seconds=round(r.steady_cpu, 3),
                 cpu_ms_per_change=round(cpu_ms, 3), core_share=round(share, 4), rss_max_mb=round(r.rss_max_kb / 1024, 1))
        rows.append([r.store, f"sync CPU per change (steady, {changes} changes)", "", f"{cpu_ms:.3f} ms", "",
                     f"{cpu_ms / CPU_PER_CHANGE_TARGET_MS:.2f}x of target", f"≤ {CPU_PER_CHANGE_TARGET_MS} ms"])
        rows.append([r.store, "sync CPU, share of one core at the steady rate", "", f"{100 * share:.1f} %", "",
                     f"{share / CORE_SHARE_TARGET:.2f}x of target", f"< {100 * CORE_SHARE_TARGET:.0f} %"])
        rows.append([r.store, "sync peak RSS", "", f"{r.rss_max_kb / 1024:.0f} MB", "",
                     f"{r.rss_max_kb / 1024 / RSS_TARGET_MB:.2f}x of target", f"< {RSS_TARGET_MB} MB"])
        sf_requests = sum(t.polls["salesforce"] + t.write_requests["salesforce"] + t.other_reads["salesforce"]
                          for t in r.steady_ticks)
        span = (r.steady_ticks[-1].ended_at - r.steady_ticks[0].started_at) if r.steady_ticks else 0.0
        per_day = sf_requests / span * 86_400 if span else 0.0
        cx_writes = sum(t.write_requests["cxone"] for t in r.steady_ticks)
        cx_all = cx_writes + sum(t.polls["cxone"] + t.other_reads["cxone"] for t in r.steady_ticks)
        to_cx = sum(1 for t in r.steady[:changes] if t.direction == "salesforce->cxone")
        f.update(salesforce_calls_per_day=round(per_day), cxone_write_requests_per_change=round(cx_writes / max(to_cx, 1), 3),
                 cxone_requests_per_change=round(cx_all / max(changes, 1), 3))
        rows.append([r.store, f"Salesforce API calls per day at {interval:g} s", "", f"{per_day:,.0f}", "", "", "(reported)"])
        rows.append([r.store, "CXone write requests per Salesforce → CXone change (all requests per change)", "",
                     f"{cx_writes / max(to_cx, 1):.2f} ({cx_all / max(changes, 1):.2f})", "", "", "(reported)"])
        if r.naive:
            later = r.bursts.get("later", {})
            sync_per_change = sum(b.seconds for b in later.values()) / max(sum(b.agents for b in later.values()), 1)
            speedup = r.naive["per_change"] / sync_per_change if sync_per_change else 0.0
            f.update(naive_changes=r.naive["changes"], naive_seconds=round(r.naive["seconds"], 3),
                     naive_ms_per_change=round(1000 * r.naive["per_change"], 3),
                     sync_ms_per_change=round(1000 * sync_per_change, 3), naive_speedup=round(speedup, 1))
            rows.append([r.store, f"naive (bench/naive.py, {r.naive['changes']} changes, {r.naive['requests']} requests) "
                         "vs the later window's bursts, per change", "",
                         f"{1000 * r.naive['per_change']:.1f} vs {1000 * sync_per_change:.2f} ms", "",
                         f"{speedup:.0f}x faster", f"≥ {NAIVE_TARGET:g}x"])
        f["morning_publish_seconds"] = round(r.morning, 3)
        f["floor_parts"] = {k: round(v, 4) for k, v in r.parts.items()}
        figures[r.store] = f

        # Targets, per store.
        tag = f" [{r.store}]"
        for d in DIRECTIONS:
            key = d.replace("->", "_to_")
            for label in ("steady", "steady_during_burst"):
                ratio = f[f"{label}_{key}_ratio"]
                report.target(f"{LABELS[d]} {label.replace('_', ' ')} p95 ≤ {RATIO_TARGET}x its floor{tag}",
                              ratio is not None and ratio <= RATIO_TARGET,
                              "no changes" if ratio is None else f"{ratio:.2f}x")
            for window in ("first", "later"):
                if window in r.bursts:
                    b = r.bursts[window][d]
                    report.target(f"{LABELS[d]} burst, {window} window ≤ {RATIO_TARGET}x its floor{tag}",
                                  b.seconds <= RATIO_TARGET * b.floor, f"{b.seconds / b.floor:.2f}x")
        report.target(f"no tick longer than {TICK_TARGET_S:g} s in the steady state{tag}", longest <= TICK_TARGET_S,
                      f"{longest:.2f} s")
        report.target(f"sync CPU ≤ {CPU_PER_CHANGE_TARGET_MS} ms per change{tag}", cpu_ms <= CPU_PER_CHANGE_TARGET_MS,
                      f"{cpu_ms:.3f} ms")
        report.target(f"sync CPU < {100 * CORE_SHARE_TARGET:.0f}% of one core at the steady rate{tag}",
                      share < CORE_SHARE_TARGET, f"{100 * share:.1f} %")
        report.target(f"sync peak RSS < {RSS_TARGET_MB} MB{tag}", r.rss_max_kb / 1024 < RSS_TARGET_MB,
                      f"{r.rss_max_kb / 1024:.0f} MB")
        if r.naive:
            report.target(f"≥ {NAIVE_TARGET:g}x the naive design per change{tag}", f["naive_speedup"] >= NAIVE_TARGET,
                          f"{f['naive_speedup']:.1f}x")

        # Checks: everything arrived.
        missed = sum(f[f"{label}_{d.replace('->', '_to_')}_missed"] for label in ("steady", "steady_during_burst")
                     for d in DIRECTIONS)
        report.check(f"every steady change arrived on the other side{tag}", missed == 0, f"{len(r.steady)} changes, {missed} missed")
        report.check(f"every burst converged{tag}", True, ", ".join(
            f"{w} {LABELS[d]}" for w in r.bursts for d in r.bursts[w]))
        if r.naive:
            report.check(f"the naive implementation carried every change{tag}", True, f"{r.naive['changes']} changes")

    report.figure("stores", figures)
    main = figures[runs[0].store]
    for name, value in main.items():
        report.figure(name, value)
    report.table(
        f"each figure beside its floor (round trips of a bare httpx client, no project code, same emulators at "
        f"{report.params['latency_ms']} ms) and the target; max_concurrency {runs[0].max_concurrency}",
        ["store", "figure", "direction", "measured", "floor", "ratio", "target"], rows,
    )
    if busy_rows:
        report.table(
            f"where each burst's time went: share of one core used until it converged ({os.cpu_count()} cores "
            "here), by the sync's process and by each emulator's serving thread (the bench's process); the "
            "sync's CPU per agent for the whole burst, its echoes included",
            ["store", "burst", "direction", "converged in", "sync", "CXone emulator", "Salesforce emulator",
             "sync CPU per agent"], busy_rows,
        )
    parts = runs[0].parts
    report.note(
        "floor round trips (median of sequential requests): " + ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in parts.items())
    )
    report.note(
        f"steady: {STEADY_SHARE:.0%} of the linked agents carry one change per agent per minute in aggregate (the rest "
        "burst halfway through); a change is timed from the moment it is made until the bench, looking every "
        f"{1000 * WATCH_SECONDS:.0f} ms, sees the mapped state on the other side"
    )
    if split:
        report.note("steady changes timed with the burst, p95 against the floor: " + "; ".join(split))
    report.note(
        "CPU is the sync process's process_time between the steady phase's first and last tick before the burst, "
        "divided by the changes made meanwhile (polls, decide, store, writes: everything the process did)"
    )


__all__ = ["fresh_database", "run"]
