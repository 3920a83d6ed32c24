"""The benchmarks' world: the demo contact center on loopback emulators (real HTTP), onboarded, with the
sync running as the product runs it, and the instruments that watch it.

- `onboarded_center(...)`: both emulators served by uvicorn on 127.0.0.1, a config written for them,
  onboarding run (the seed's steps, plain async, no Prefect server), and what the sync will load
  (links, rules, team codes) read the way the sync reads it.
- `SyncLoop`: `tasks.sync.window.run_window` (the sync flow's loop, default 1 s interval) in a
  background task, stopped between two ticks; every tick is recorded (duration, API reads and writes
  as the emulators counted them, store statements).
- `BareClients`: plain httpx clients holding one token per system: the minimum API work, without the
  connectors, engine or store. The baselines use them.

    async with onboarded_center(agents=200, apply_delay_ms=150) as center:
        async with SyncLoop(center) as loop:
            await loop.wait_quiet()
            ...
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import shutil
import socket
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

from emulators.stack import EmulatorStack
from engine import AgentLink, CxoneState, CxoneTarget, Direction, Rule
from tasks.context import Context, open_context
from tasks.onboarding import run_steps
from tasks.sync.runner import SyncSetup, load_setup
from tasks.sync.window import WindowProgress, WindowResult, run_window, watch_ticks

CXONE_DATA_PREFIX = "/incontactapi/"
SALESFORCE_DATA_PREFIX = "/services/data/"
# The routes a poll reads; any other data-API GET during a sync window would be a per-agent read.
POLL_ROUTES = {
    "cxone": ("GET /incontactapi/services/{version}/agents/states",),
    "salesforce": ("GET /services/data/{version}/query", "GET /services/data/{version}/query/{locator}"),
}


class BenchError(Exception):
    """The benchmark could not be set up or measured (not a slow figure: a broken run)."""


def route_counts(emulator: Any) -> Counter[str]:
    """A copy of an emulator's request counts by 'METHOD /route/template' (dict copy: atomic under the GIL)."""
    return Counter(dict(emulator.faults.stats.by_route))


def data_requests(counts: Counter[str], system: str, methods: Iterable[str]) -> int:
    prefix = CXONE_DATA_PREFIX if system == "cxone" else SALESFORCE_DATA_PREFIX
    wanted = set(methods)
    return sum(n for route, n in counts.items() if route.split(" ", 1)[0] in wanted and route.split(" ", 1)[1].startswith(prefix))


def non_poll_reads(counts: Counter[str], system: str) -> int:
    """Data-API GETs that are not the poll's (a per-agent read would show here)."""
    prefix = CXONE_DATA_PREFIX if system == "cxone" else SALESFORCE_DATA_PREFIX
    return sum(
        n for route, n in counts.items()
        if route.startswith("GET ") and route[4:].startswith(prefix) and route not in POLL_ROUTES[system]
    )


def nagle_note(stack: EmulatorStack) -> str | None:
    """A warning when the served emulators' connections run without TCP_NODELAY (None when they have it).

    asyncio sets TCP_NODELAY on an accepted connection only when its socket's proto is IPPROTO_TCP;
    a listening socket made as `socket.socket(AF_INET, SOCK_STREAM)` has proto 0, and so do the
    connections it accepts. Then every response written in two segments (headers, then body) waits
    for the client's delayed ACK, ~40 ms on Linux loopback, and every figure measured here includes it.
    """
    bare = []
    for running in getattr(stack, "_servers", []):
        for server in getattr(running.server, "servers", []):
            for sock in getattr(server, "sockets", ()):
                if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
                    bare.append(f"{running.host}:{running.port}")
    if not bare:
        return None
    return (
        f"the emulators' listening sockets ({', '.join(sorted(set(bare)))}) have proto 0, so asyncio leaves "
        "TCP_NODELAY off on their connections (emulators/server.py, start_in_thread: "
        "socket.socket(AF_INET, SOCK_STREAM)); each response with a body then waits ~40 ms for the delayed "
        "ACK (Nagle). Every API figure here, baselines included, carries that; fix: create the socket with "
        "socket.IPPROTO_TCP (or set TCP_NODELAY on accepted connections)"
    )


# --- the onboarded center ---------------------------------------------------------------------------


@dataclass
class Center:
    stack: EmulatorStack
    ctx: Context
    config_path: Path
    setup: SyncSetup
    rules: dict[int, Rule]  # linked agents with a rule, by CXone agent id

    @property
    def links(self) -> dict[int, AgentLink]:
        return self.setup.links

    @property
    def interval_seconds(self) -> float:
        return float(self.ctx.config.sync.interval_seconds)

    @property
    def max_concurrency(self) -> int:
        return int(self.ctx.config.sync.max_concurrency)

    def sf_user(self, agent_id: int) -> str:
        return self.links[agent_id].sf_user_id

    # What the rule says the other side shows (the engine's own rule, as the sync loads it).

    def published(self, agent_id: int, cxone: CxoneState) -> str | None:
        return self.rules[agent_id].publish(cxone).target

    def subscribed(self, agent_id: int, status: str) -> CxoneTarget | None:
        return self.rules[agent_id].subscribe(status, self.links[agent_id].team_codes, previous=None).target

    # What each side shows now, read in-process (no API call, so watching costs the sync nothing but CPU).

    def salesforce_shows(self, agent_id: int) -> str | None:
        return self.stack.salesforce.current_presence(self.sf_user(agent_id))

    def cxone_shows(self, agent_id: int) -> CxoneState:
        return CxoneState.from_api(self.stack.cxone.tenant.state(agent_id))

    def agrees(self, agent_id: int) -> bool:
        """Both sides show what the rule maps CXone's state to (the steady state after the morning publish)."""
        return self.salesforce_shows(agent_id) == self.published(agent_id, self.cxone_shows(agent_id))


@asynccontextmanager
async def onboarded_center(
    agents: int, *, apply_delay_ms: int = 0, seed: int = 0, workdir: Path | None = None
) -> AsyncIterator[Center]:
    """The demo center with `agents` agents on loopback, onboarded; a fresh state store in a temp folder."""
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="presence-sync-bench-"))
    try:
        with EmulatorStack.serve(agents=agents, seed=seed, apply_delay_ms=apply_delay_ms) as stack:
            config_path = await stack.write_config(folder / "presence-sync.yaml")
            async with open_context(config_path) as ctx:
                report = await run_steps(ctx)
                if not report.succeeded:
                    raise BenchError(f"onboarding the bench's contact center failed: {report}")
                setup = await load_setup(ctx)
                rules = {
                    agent_id: rule
                    for agent_id, link in setup.links.items()
                    if (rule := setup.rulebook.rule_for(link)) is not None
                }
                if not rules:
                    raise BenchError("onboarding linked no agent with a rule; nothing to benchmark")
                yield Center(stack, ctx, config_path, setup, rules)
    finally:
        if workdir is None:
            shutil.rmtree(folder, ignore_errors=True)


# --- the store's statements --------------------------------------------------------------------------


class StatementCounter:
    """Counts SQL statements the store sends (an executemany counts once), from any thread."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._count = itertools.count()
        self.value = 0

    def _seen(self, *_args: Any) -> None:
        self.value = next(self._count) + 1

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


# --- the sync, running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TickRecord:
    """One tick of the running sync, as its window stats, the emulators and the store counted it."""

    index: int
    ended_at: float  # time.monotonic()
    seconds: float  # from the tick's start (the end of the previous sleep) to its end
    polls: dict[str, int]  # poll requests (pages) per system: data-API GETs on the poll routes
    other_reads: dict[str, int]  # data-API GETs on any other route (per-agent reads would show here)
    write_requests: dict[str, int]  # data-API POST/PATCH/PUT/DELETE per system
    writes: dict[str, int]  # engine writes applied, per direction
    changes_seen: int
    statements: int


def _writes_by_direction(stats: Any) -> dict[str, int]:
    return {d.value: int(stats.writes[d]) for d in (Direction.CXONE_TO_SALESFORCE, Direction.SALESFORCE_TO_CXONE)}


class SyncLoop:
    """`run_window` (what the sync flow runs) in the background, at the config's interval, until stopped.

    Stopping is clean: the loop ends between two ticks (through run_window's own `sleep`/`monotonic`
    seams) and saves as a window end does; nothing is cancelled mid-tick.
    """

    def __init__(
        self, center: Center, *, holder: str = "bench/sync", max_seconds: float = 3600.0,
        interval_seconds: float | None = None,
    ) -> None:
        self.center = center
        self.interval_seconds = interval_seconds or center.interval_seconds
        self.holder = holder
        self.max_seconds = max_seconds
        self.ticks: list[TickRecord] = []
        self.result: WindowResult | None = None
        self._stop = asyncio.Event()
        self._stopping = False
        self._tick_began = 0.0
        self._stack = ExitStack()
        self._task: asyncio.Task[WindowResult] | None = None
        self._statements = StatementCounter(center.ctx.store.engine)
        self._last: tuple[Counter[str], Counter[str], dict[str, int], int, int] | None = None
        self._tick_listeners: list[Callable[[TickRecord], None]] = []
        self._live_stats: Any = None

    async def __aenter__(self) -> SyncLoop:
        self._stack.enter_context(self._statements)
        self._stack.enter_context(watch_ticks(self._on_tick))
        self._last = self._snapshot(None)
        self._tick_began = time.monotonic()
        self._task = asyncio.create_task(
            run_window(
                self.center.ctx, seconds=self.max_seconds, holder=self.holder,
                interval_seconds=self.interval_seconds, monotonic=self._monotonic, sleep=self._sleep,
            )
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> WindowResult | None:
        if self._task is not None and self.result is None:
            self._stopping = True
            self._stop.set()
            try:
                self.result = await self._task
            finally:
                self._stack.close()
        return self.result

    @property
    def stats(self) -> Any:
        """The window's WindowStats (live counters while it runs; None before its first tick)."""
        return self.result.stats if self.result else self._live_stats

    def on_tick(self, listener: Callable[[TickRecord], None]) -> None:
        self._tick_listeners.append(listener)

    def _monotonic(self) -> float:
        return time.monotonic() + (1e9 if self._stopping else 0.0)

    async def _sleep(self, seconds: float) -> None:
        if self._task is not None and self._task.done():
            return
        if seconds > 0 and not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=seconds)
            except TimeoutError:
                pass
        self._tick_began = time.monotonic()

    def _snapshot(self, stats: Any) -> tuple[Counter[str], Counter[str], dict[str, int], int, int]:
        writes = _writes_by_direction(stats) if stats is not None else {d.value: 0 for d in Direction}
        seen = sum(stats.changes_seen.values()) if stats is not None else 0
        return (
            route_counts(self.center.stack.cxone),
            route_counts(self.center.stack.salesforce),
            writes,
            seen,
            self._statements.value,
        )

    def _on_tick(self, progress: WindowProgress) -> None:
        now = time.monotonic()
        self._live_stats = progress.stats
        assert self._last is not None
        cx0, sf0, writes0, seen0, statements0 = self._last
        current = self._snapshot(progress.stats)
        cx1, sf1, writes1, seen1, statements1 = current
        self._last = current
        cx, sf = cx1 - cx0, sf1 - sf0
        record = TickRecord(
            index=len(self.ticks) + 1,
            ended_at=now,
            seconds=now - self._tick_began,
            polls={
                "cxone": sum(cx[r] for r in POLL_ROUTES["cxone"]),
                "salesforce": sum(sf[r] for r in POLL_ROUTES["salesforce"]),
            },
            other_reads={"cxone": non_poll_reads(cx, "cxone"), "salesforce": non_poll_reads(sf, "salesforce")},
            write_requests={
                "cxone": data_requests(cx, "cxone", ("POST", "PUT", "PATCH", "DELETE")),
                "salesforce": data_requests(sf, "salesforce", ("POST", "PUT", "PATCH", "DELETE")),
            },
            writes={k: writes1.get(k, 0) - writes0.get(k, 0) for k in writes1},
            changes_seen=seen1 - seen0,
            statements=statements1 - statements0,
        )
        self.ticks.append(record)
        for listener in self._tick_listeners:
            listener(record)

    def raise_if_failed(self) -> None:
        if self._task is not None and self._task.done() and self._task.exception() is not None:
            raise BenchError(f"the sync window failed: {self._task.exception()!r}") from self._task.exception()

    async def wait_ticks(self, count: int, timeout: float = 60.0) -> None:
        """Until `count` more ticks have run."""
        target = len(self.ticks) + count
        await wait_until(lambda: len(self.ticks) >= target, timeout, self, f"{count} sync ticks")

    async def wait_quiet(self, *, since: int = 0, quiet_ticks: int = 2, timeout: float = 120.0) -> None:
        """Until the last `quiet_ticks` ticks (all after tick number `since`) wrote nothing and saw no change."""

        def quiet() -> bool:
            last = self.ticks[since:][-quiet_ticks:]
            return len(last) == quiet_ticks and all(not sum(t.writes.values()) and not t.changes_seen for t in last)

        await wait_until(quiet, timeout, self, f"{quiet_ticks} quiet sync ticks")


async def wait_until(
    check: Callable[[], bool], timeout: float, loop: SyncLoop | None = None, what: str = "a condition",
    poll_seconds: float = 0.05,
) -> float:
    """Wait until `check()` holds; the seconds it took. BenchError on timeout or if the sync died."""
    started = time.monotonic()
    deadline = started + timeout
    while not check():
        if loop is not None:
            loop.raise_if_failed()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(poll_seconds)
    return time.monotonic() - started


async def wait_all(
    pending: Iterable[int], arrived: Callable[[int], bool], timeout: float, loop: SyncLoop | None = None,
    poll_seconds: float = 0.05, what: str = "every agent",
) -> float:
    """Wait until `arrived(agent)` for every agent; the seconds taken. BenchError on timeout.

    Each check walks the agents still pending, in order, and stops at the first that has not
    arrived: a check costs one look while nothing arrives, and the whole wait O(agents + checks),
    so watching 10,000 agents takes the sync (same thread) next to no CPU.
    """
    started = time.monotonic()
    deadline = started + timeout
    left = sorted(set(pending))
    total = len(left)
    while True:
        done = 0
        for agent_id in left:
            if not arrived(agent_id):
                break
            done += 1
        left = left[done:]
        if not left:
            return time.monotonic() - started
        if loop is not None:
            loop.raise_if_failed()
        if time.monotonic() > deadline:
            missing = [a for a in left if not arrived(a)]
            raise BenchError(
                f"timed out after {timeout:.0f} s waiting for {what}: {len(missing)} of {total} agents "
                f"never arrived (e.g. {missing[:5]})"
            )
        await asyncio.sleep(poll_seconds)


# --- bare clients (the baselines) ------------------------------------------------------------------------


@dataclass
class BareClients:
    """One plain httpx client per system with a token, `concurrency` connections each, bounded alike."""

    cxone: httpx.AsyncClient
    salesforce: httpx.AsyncClient
    concurrency: int
    slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.concurrency)

    @classmethod
    @asynccontextmanager
    async def open(cls, center: Center, concurrency: int | None = None) -> AsyncIterator[BareClients]:
        concurrency = concurrency or center.max_concurrency
        stack = center.stack
        config = center.ctx.config
        sf_credentials, cx_credentials = await stack.credentials()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=60) as login:
            basic = base64.b64encode(f"{cx_credentials['client_id']}:{cx_credentials['client_secret']}".encode()).decode()
            answer = await login.post(
                f"{stack.cxone_url}/auth/token",
                headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
                data={
                    "grant_type": "password",
                    "username": cx_credentials["access_key_id"],
                    "password": cx_credentials["access_key_secret"],
                },
            )
            answer.raise_for_status()
            cx_token = answer.json()["access_token"]
            answer = await login.post(
                f"{stack.salesforce_url}/services/oauth2/token",
                data={
                    "grant_type": "password",
                    "client_id": sf_credentials["client_id"],
                    "client_secret": sf_credentials["client_secret"],
                    "username": sf_credentials["username"],
                    "password": sf_credentials["password"] + sf_credentials["security_token"],
                },
            )
            answer.raise_for_status()
            sf_token = answer.json()
        cx_base = f"{stack.cxone_url}/incontactapi/services/{config.cxone.api_version}"
        sf_base = f"{sf_token['instance_url']}/services/data/{config.salesforce.api_version}"
        async with (
            httpx.AsyncClient(
                base_url=cx_base, limits=limits, timeout=60,
                headers={"Authorization": f"Bearer {cx_token}", "Accept": "application/json"},
            ) as cx,
            httpx.AsyncClient(
                base_url=sf_base, limits=limits, timeout=60,
                headers={"Authorization": f"Bearer {sf_token['access_token']}"},
            ) as sf,
        ):
            yield cls(cx, sf, concurrency)

    async def call(self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async with self.slots:
            response = await client.request(method, url, **kwargs)
        if response.is_error:
            raise BenchError(f"bare client: {method} {url} answered HTTP {response.status_code}: {response.text[:300]}")
        return response

    async def cxone_states_since(self, since: str | None, page_size: int = 1000) -> tuple[list[dict[str, Any]], int]:
        """`GET /agents/states` (delta when `since`), every page; (records, requests made)."""
        records: list[dict[str, Any]] = []
        skip, requests = 0, 0
        while True:
            params = {"skip": str(skip), "top": str(page_size)}
            if since is not None:
                params["updatedSince"] = since
            page = (await self.call(self.cxone, "GET", "/agents/states", params=params)).json()
            requests += 1
            batch = page.get("agentStates", [])
            records.extend(batch)
            skip += len(batch)
            if len(batch) < page_size or skip >= int(page.get("totalRecords") or 0):
                return records, requests

    async def salesforce_query(self, soql: str) -> tuple[list[dict[str, Any]], int]:
        """A SOQL query, every page (following nextRecordsUrl); (records, requests made)."""
        answer = (await self.call(self.salesforce, "GET", "/query", params={"q": soql})).json()
        records, requests = list(answer["records"]), 1
        while not answer.get("done", True):
            locator = answer["nextRecordsUrl"].rsplit("/", 1)[1]
            answer = (await self.call(self.salesforce, "GET", f"/query/{locator}")).json()
            records.extend(answer["records"])
            requests += 1
        return records, requests

    async def publish_commands(self, commands: list[tuple[str, str]], chunk: int = 200) -> int:
        """Presence commands (user id, status id), `chunk` per /composite/sobjects call, calls concurrently."""
        def body(part: list[tuple[str, str]], start: int) -> dict[str, Any]:
            return {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "Presence_Sync_Command__e"},
                        "UserId__c": user_id, "StatusId__c": status_id,
                        "CommandId__c": f"bare-{start + i}-{time.monotonic_ns()}", "Reason__c": "bench baseline",
                    }
                    for i, (user_id, status_id) in enumerate(part)
                ],
            }

        parts = [(commands[start : start + chunk], start) for start in range(0, len(commands), chunk)]
        answers = await asyncio.gather(
            *(self.call(self.salesforce, "POST", "/composite/sobjects", json=body(part, start)) for part, start in parts)
        )
        for answer in answers:
            failed = [r for r in answer.json() if not r.get("success")]
            if failed:
                raise BenchError(f"bare client: Salesforce refused presence commands: {failed[:3]}")
        return len(parts)

    async def set_cxone_states(self, targets: dict[int, CxoneTarget], sessions: dict[int, str]) -> int:
        """Join (when no session is known) and set each agent's state, all at once under the bound; requests made."""
        requests = 0

        async def one(agent_id: int, target: CxoneTarget) -> None:
            nonlocal requests
            session = sessions.get(agent_id)
            if session is None:
                joined = await self.call(self.cxone, "POST", "/agent-sessions/join", json={"asAgentId": agent_id})
                session = sessions[agent_id] = str(joined.json()["sessionId"])
                requests += 1
            await self.call(self.cxone, "POST", f"/agent-sessions/{session}/state", json=target.to_api())
            requests += 1

        await asyncio.gather(*(one(agent_id, target) for agent_id, target in targets.items()))
        return requests


def status_ids(center: Center) -> dict[str, str]:
    """Salesforce presence status Id by DeveloperName (what the sync's write targets use)."""
    return dict(center.setup.targets.status_ids)
