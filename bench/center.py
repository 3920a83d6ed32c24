"""The benchmarks' world: the demo contact center on loopback emulators (real HTTP), onboarded, with the
sync running as the product runs it in its own process, and the instruments that watch it.

- `onboarded_center(...)`: both emulators served by uvicorn on 127.0.0.1 in threads of the bench's
  process, a config written for them, onboarding run (the seed's steps, plain async, no Prefect
  server), and what the sync will load (links, rules, team codes) read the way the sync reads it.
- `SyncProcess`: `tasks.sync.window.run_window` (the sync flow's loop, default 1 s interval) in a child
  process (`python -m bench.child sync`), stopped between two ticks; every tick is recorded (duration,
  API reads and writes as the emulators counted them, store statements as the child counted them).
- `BareProcess`: plain httpx clients holding one token per system, in a child process too: the
  minimum API work, without the connectors, engine or store. The baselines use them.

The emulators stay here, so a burst is made at once (in-process, under the emulator's lock) and
convergence is watched in-process, for no API call; what is measured (the sync, the bare client)
has its own interpreter and GIL, as against remote systems in production.

    async with onboarded_center(agents=200, apply_delay_ms=150) as center:
        async with SyncProcess(center) as sync:
            await sync.wait_quiet()
            ...
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from presence_sync.connectors import cxone_state_from_api
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.engine import AgentLink, CxoneState, CxoneTarget, Rule
from presence_sync.models.config import write_emulator_config
from presence_sync.tasks.context import Context, open_context
from presence_sync.tasks.onboarding import run_steps
from presence_sync.tasks.sync.runner import SyncSetup, load_setup, settle_heap

CXONE_DATA_PREFIX = "/incontactapi/"
SALESFORCE_DATA_PREFIX = "/services/data/"
# The routes a poll reads; any other data-API GET during a sync window would be a per-agent read.
POLL_ROUTES = {
    "cxone": ("GET /incontactapi/services/{version}/agents/states",),
    "salesforce": ("GET /services/data/{version}/query", "GET /services/data/{version}/query/{locator}"),
}
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHILD_START_SECONDS = 120.0  # imports, logging in: a child not ready by then is broken
CHILD_LINE_LIMIT = 64 * 1024 * 1024  # the window summary carries every echo lag


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


# --- the onboarded center ---------------------------------------------------------------------------


@dataclass
class Center:
    stack: EmulatorStack
    ctx: Context
    config_path: Path
    folder: Path
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
        return cxone_state_from_api(self.stack.cxone.tenant.state(agent_id))

    def agrees(self, agent_id: int) -> bool:
        """Both sides show what the rule maps CXone's state to (the steady state after the morning publish)."""
        return self.salesforce_shows(agent_id) == self.published(agent_id, self.cxone_shows(agent_id))


@asynccontextmanager
async def onboarded_center(
    agents: int, *, apply_delay_ms: int = 0, seed: int = 0, workdir: Path | None = None, store_url: str | None = None,
) -> AsyncIterator[Center]:
    """The demo center with `agents` agents on loopback, onboarded; a fresh state store in a temp folder
    (or at `store_url`, which must be a fresh database)."""
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="presence-sync-bench-"))
    try:
        with EmulatorStack.serve(agents=agents, seed=seed, apply_delay_ms=apply_delay_ms) as stack:
            config_path = await write_emulator_config(stack, folder / "presence-sync.yaml")
            if store_url is not None:
                _set_store_url(config_path, store_url)
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
                # Both emulators serve from this process, and a full collection walks their heap (every
                # agent, spell and event) with both frozen: 24 passes of 0.05-0.18 s in a `bench scale` run,
                # some inside each burst, a pause the real systems would not add to the sync's figures.
                # Settled as the sync's own process is; restored when the center closes.
                thresholds = gc.get_threshold()
                settle_heap()
                try:
                    yield Center(stack, ctx, config_path, folder, setup, rules)
                finally:
                    gc.unfreeze()
                    gc.set_threshold(*thresholds)
    finally:
        if workdir is None:
            shutil.rmtree(folder, ignore_errors=True)


def _set_store_url(config_path: Path, store_url: str) -> None:
    import yaml

    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data.setdefault("sync", {})["store_url"] = store_url
    config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


# --- child processes --------------------------------------------------------------------------------


def _child_command(role: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "bench.child", role, *args]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class _Child:
    """A `python -m bench.child` process: JSON lines both ways, stderr kept in a file of the center's folder."""

    def __init__(self, center: Center, role: str, name: str, args: list[str]) -> None:
        self.center = center
        self.role = role
        self.args = args
        self.stderr_path = center.folder / f"{name}.stderr.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.error: dict[str, Any] | None = None

    async def start(self) -> None:
        with open(self.stderr_path, "wb") as stderr:
            self.proc = await asyncio.create_subprocess_exec(
                *_child_command(self.role, *self.args), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=stderr, env=_child_env(), cwd=str(PROJECT_ROOT), limit=CHILD_LINE_LIMIT,
            )

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        if self.proc.returncode is None and not self.proc.stdin.is_closing():
            with suppress(ConnectionError, RuntimeError):
                self.proc.stdin.write((json.dumps(message) + "\n").encode())

    async def read(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next line (None when the child closed its stdout)."""
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            return None
        message: dict[str, Any] = json.loads(line)
        if message.get("event") == "error":
            self.error = message
        return message

    async def expect(self, event: str, timeout: float) -> dict[str, Any]:
        try:
            message = await self.read(timeout)
        except TimeoutError:
            raise self.failure(f"no {event!r} from it within {timeout:.0f} s") from None
        if message is None or message.get("event") != event:
            raise self.failure(f"it answered {message!r} instead of {event!r}")
        return message

    def failure(self, what: str) -> BenchError:
        detail = ""
        if self.error is not None:
            detail = f": {self.error.get('error')}\n{self.error.get('traceback', '')}"
        else:
            with suppress(OSError):
                tail = self.stderr_path.read_text(encoding="utf-8", errors="replace")[-3000:]
                detail = f"; its stderr ends with:\n{tail}" if tail.strip() else ""
        return BenchError(f"the bench's {self.role} child process ({' '.join(self.args)[:120]}): {what}{detail}")

    async def close(self, timeout: float) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.kill()
            await self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


# --- the sync, running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TickRecord:
    """One tick of the running sync, as the child (window stats, store) and the emulators counted it."""

    index: int
    started_at: float  # time.monotonic() (system-wide: the child's and the bench's clocks agree)
    ended_at: float
    started_utc: float  # time.time() at the tick's start (what the Salesforce poll's watermark follows)
    ended_utc: float
    seconds: float  # from the tick's start (the end of the previous sleep) to its end
    polls: dict[str, int]  # poll requests (pages) per system: data-API GETs on the poll routes
    other_reads: dict[str, int]  # data-API GETs on any other route (per-agent reads would show here)
    write_requests: dict[str, int]  # data-API POST/PATCH/PUT/DELETE per system
    writes: dict[str, int]  # engine writes applied, per direction
    changes_seen: int
    statements: int  # SQL statements the store sent (counted in the child)
    cpu_s: float = 0.0  # the sync process's CPU time (user + system) at the tick's end
    rss_max_kb: int = 0  # the sync process's peak resident set so far (VmHWM, bench.child.peak_rss_kb)
    # whom the process wrote since its previous tick: {"cxone": [agent ids], "salesforce": [user ids]}
    written: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowSummary:
    """The sync window's counters, as the child reported them when it ended."""

    held_lease: bool
    ended: str
    ticks: int
    writes: dict[str, int]
    outcomes: dict[str, dict[str, int]]  # per direction: outcome value -> count
    lags_ms: dict[str, list[float]]  # per direction: echo lags (the audit's view of propagation)
    reads_failed: int = 0
    anomalies: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WindowSummary:
        return cls(
            held_lease=bool(data["held_lease"]), ended=str(data["ended"]), ticks=int(data["ticks"]),
            writes=dict(data["writes"]), outcomes=dict(data["outcomes"]), lags_ms=dict(data["lags_ms"]),
            reads_failed=int(data.get("reads_failed", 0)), anomalies=list(data.get("anomalies", [])),
        )

    def outcome(self, direction: str, outcome: str) -> int:
        return int(self.outcomes.get(direction, {}).get(outcome, 0))


class SyncProcess:
    """`run_window` (what the sync flow runs) in a child process, at the config's interval, until stopped.

    The child reports every tick and waits for this side's ack before it sleeps, so the emulators'
    request counters are read between two ticks. Stopping is clean: the window ends between two
    ticks and saves as a window end does; nothing is cancelled mid-tick. With `shard` ("i/n") the child
    runs that shard's window; beside other sync processes, a tick's request counts (read from the
    emulators) include the others' requests made meanwhile. With `tick_acks=False` the child does not
    wait between two ticks for this side to read the counters (`bench.child --no-tick-acks`): its
    timing is a real window's, and only sums of ticks' request counts are exact.
    """

    def __init__(
        self, center: Center, *, holder: str = "bench/sync", max_seconds: float = 3600.0,
        interval_seconds: float | None = None, max_concurrency: int | None = None, shard: str | None = None,
        tick_acks: bool = True,
    ) -> None:
        self.center = center
        self.shard = shard
        self.interval_seconds = interval_seconds or center.interval_seconds
        self.holder = holder
        self.ticks: list[TickRecord] = []
        self.result: WindowSummary | None = None
        self.max_concurrency = max_concurrency or center.max_concurrency
        args = [str(center.config_path), "--holder", holder, "--interval", repr(self.interval_seconds),
                "--max-seconds", repr(max_seconds)]
        if max_concurrency is not None:
            args += ["--max-concurrency", str(max_concurrency)]
        if shard is not None:
            args += ["--shard", shard]
        if not tick_acks:
            args.append("--no-tick-acks")
        self._child = _Child(center, "sync", f"sync-{holder.replace('/', '-')}-{self.max_concurrency}", args)
        self._reader: asyncio.Task[None] | None = None
        self._stopping = False
        self._last: tuple[Counter[str], Counter[str]] | None = None
        self._tick_listeners: list[Callable[[TickRecord], None]] = []

    async def __aenter__(self) -> SyncProcess:
        await self._child.start()
        try:
            ready = await self._child.expect("ready", CHILD_START_SECONDS)
            self.max_concurrency = int(ready["max_concurrency"])
            self._last = self._snapshot()
            self._reader = asyncio.create_task(self._read())
            self._child.send({"cmd": "go"})
        except BaseException:
            self._child.kill()
            await self._child.close(10)
            raise
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            await self.stop()
        else:
            self._child.kill()
            await self._child.close(10)
            if self._reader is not None:
                self._reader.cancel()

    async def stop(self, timeout: float = 900.0) -> WindowSummary:
        """End the window after its current tick (a burst's tick may take a while) and wait for its summary."""
        if self.result is None:
            self._stopping = True
            self._child.send({"cmd": "stop"})
            assert self._reader is not None
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), timeout)
            except TimeoutError:
                self._child.kill()
                raise self._child.failure(f"did not stop within {timeout:.0f} s") from None
            await self._child.close(30)
        if self.result is None:
            raise self._child.failure("ended without its window summary")
        return self.result

    def on_tick(self, listener: Callable[[TickRecord], None]) -> None:
        self._tick_listeners.append(listener)

    def _snapshot(self) -> tuple[Counter[str], Counter[str]]:
        return route_counts(self.center.stack.cxone), route_counts(self.center.stack.salesforce)

    async def _read(self) -> None:
        while (message := await self._child.read()) is not None:
            event = message.get("event")
            if event == "tick":
                self._on_tick(message)
                self._child.send({"cmd": "ack", "tick": message["tick"]})
            elif event == "done":
                self.result = WindowSummary.from_json(message["result"])

    def _on_tick(self, message: dict[str, Any]) -> None:
        assert self._last is not None
        cx0, sf0 = self._last
        self._last = cx1, sf1 = self._snapshot()
        cx, sf = cx1 - cx0, sf1 - sf0
        record = TickRecord(
            index=len(self.ticks) + 1,
            started_at=float(message["started_at"]),
            ended_at=float(message["ended_at"]),
            started_utc=float(message["started_utc"]),
            ended_utc=float(message["ended_utc"]),
            seconds=float(message["ended_at"]) - float(message["started_at"]),
            polls={
                "cxone": sum(cx[r] for r in POLL_ROUTES["cxone"]),
                "salesforce": sum(sf[r] for r in POLL_ROUTES["salesforce"]),
            },
            other_reads={"cxone": non_poll_reads(cx, "cxone"), "salesforce": non_poll_reads(sf, "salesforce")},
            write_requests={
                "cxone": data_requests(cx, "cxone", ("POST", "PUT", "PATCH", "DELETE")),
                "salesforce": data_requests(sf, "salesforce", ("POST", "PUT", "PATCH", "DELETE")),
            },
            writes={k: int(v) for k, v in message["writes"].items()},
            changes_seen=int(message["changes_seen"]),
            statements=int(message["statements"]),
            cpu_s=float(message.get("cpu_s", 0.0)),
            rss_max_kb=int(message.get("rss_max_kb", 0)),
            written=dict(message.get("written", {})),
        )
        self.ticks.append(record)
        for listener in self._tick_listeners:
            listener(record)

    def raise_if_failed(self) -> None:
        if self._child.error is not None:
            raise self._child.failure("the sync window failed")
        if self._reader is not None and self._reader.done() and not self._reader.cancelled():
            problem = self._reader.exception()
            if problem is not None:
                raise BenchError(f"reading the sync child's ticks failed: {problem!r}") from problem
        if self._reader is not None and self._reader.done() and self.result is None and not self._stopping:
            raise self._child.failure("the sync child ended on its own")

    async def wait_quiet(
        self, *, since: int = 0, quiet_ticks: int = 2, timeout: float = 120.0, starting_after: float | None = None,
    ) -> None:
        """Until the last `quiet_ticks` ticks (all after tick number `since`, and started after the
        monotonic time `starting_after`, if given) wrote nothing and saw no change."""

        def quiet() -> bool:
            last = self.ticks[since:][-quiet_ticks:]
            return len(last) == quiet_ticks and all(
                not sum(t.writes.values()) and not t.changes_seen
                and (starting_after is None or t.started_at > starting_after)
                for t in last
            )

        await wait_until(quiet, timeout, self, f"{quiet_ticks} quiet sync ticks")


class Failing(Protocol):
    def raise_if_failed(self) -> None: ...


async def wait_until(
    check: Callable[[], bool], timeout: float, loop: Failing | None = None, what: str = "a condition",
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
    pending: Iterable[int], arrived: Callable[[int], bool], timeout: float, loop: Failing | None = None,
    poll_seconds: float = 0.05, what: str = "every agent",
) -> float:
    """Wait until `arrived(agent)` for every agent; the seconds taken. BenchError on timeout.

    Each check walks the agents still pending, in order, and stops at the first that has not
    arrived: a check costs one look while nothing arrives, and the whole wait O(agents + checks),
    so watching 10,000 agents takes the emulators (same process) next to no CPU.
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


class BareProcess:
    """Plain httpx clients (one token per system, at most `concurrency` requests in flight) in a child
    process: `bench.child`'s `bare` role. `await bare.request({"cmd": ...})` runs one command there."""

    def __init__(self, child: _Child, concurrency: int) -> None:
        self._child = child
        self.concurrency = concurrency
        self._lock = asyncio.Lock()

    @classmethod
    @asynccontextmanager
    async def open(cls, center: Center, concurrency: int | None = None) -> AsyncIterator[BareProcess]:
        concurrency = concurrency or center.max_concurrency
        config = center.ctx.config
        sf_credentials, cx_credentials = await center.stack.credentials()
        child = _Child(center, "bare", f"bare-{concurrency}-{time.monotonic_ns()}", [])
        await child.start()
        try:
            child.send({
                "concurrency": concurrency,
                "cxone_url": center.stack.cxone_url, "salesforce_url": center.stack.salesforce_url,
                "cxone_credentials": cx_credentials, "salesforce_credentials": sf_credentials,
                "cxone_api_version": config.cxone.api_version, "salesforce_api_version": config.salesforce.api_version,
            })
            await child.expect("ready", CHILD_START_SECONDS)
            yield cls(child, concurrency)
        except BaseException:
            child.kill()
            raise
        finally:
            child.send({"cmd": "quit"})
            await child.close(30)

    async def request(self, message: dict[str, Any], timeout: float = 900.0) -> dict[str, Any]:
        async with self._lock:
            self._child.send(message)
            answer = await self._child.expect("answer", timeout)
        if not answer.get("ok"):
            raise BenchError(f"the bare client's {message.get('cmd')!r} failed: {answer.get('error')}")
        return answer

    def start(self, message: dict[str, Any], timeout: float = 900.0) -> Pending:
        """`request` in the background (while the bench watches the emulators converge)."""
        return Pending(asyncio.create_task(self.request(message, timeout)))


@dataclass
class Pending:
    """A bare-client command under way; `raise_if_failed` lets `wait_all` stop early when it broke."""

    task: asyncio.Task[dict[str, Any]]

    def raise_if_failed(self) -> None:
        if self.task.done() and self.task.exception() is not None:
            raise self.task.exception()  # type: ignore[misc]

    async def answer(self) -> dict[str, Any]:
        return await self.task


def status_ids(center: Center) -> dict[str, str]:
    """Salesforce presence status Id by DeveloperName (what the sync's write targets use)."""
    return dict(center.setup.targets.status_ids)
