"""The benchmarks' child processes: the sync, and the bare client, each out of the emulators' process.

In production the sync and the two remote systems are separate processes (separate machines); on
the bench the emulators stay in the bench's process (so a burst is made "at once" under the
emulator's lock and convergence is watched in-process for free) and what is measured runs here,
with its own interpreter and GIL:

    python -m bench.child sync CONFIG [--interval S] [--holder H] [--max-concurrency N] [--max-seconds N] [--shard i/n]
                                      [--no-tick-acks]
    python -m bench.child bare        # then an init message on stdin (URLs, credentials, concurrency)

Both speak JSON lines: commands on stdin, answers on stdout (anything else the child prints goes to
stderr). The bench's side of them is `bench.center.SyncProcess` / `bench.center.BareProcess`.

sync: `tasks.sync.window.run_window` with `tasks.context.open_context(CONFIG)`, exactly what the sync
flow runs (no Prefect server); with `--shard i/n`, that shard's window (its agents, lease and cursors). After every tick it reports the tick (`{"event": "tick", ...}`: its
start and end, writes per direction, changes seen, store statements counted with SQLAlchemy's
`before_cursor_execute`, whom its clients wrote since the last tick) and waits for the bench's
`{"cmd": "ack", "tick": n}` before sleeping the rest of the interval, so the bench reads the emulators' request counters between two ticks (the
wait is taken out of the sleep; the period stays the interval). With `--no-tick-acks` it does not wait:
a tick that overran its interval is followed at once, as in a real window, and a tick's request counts
may include the next one's first requests (for figures summed over several ticks: a burst's bench
process, busy serving it, took up to 0.13 s to answer). The window starts on `{"cmd": "go"}`,
sent once the bench has read the counters the first tick is counted from. `{"cmd": "stop"}` (or stdin closing)
ends the window between two ticks, saving as a window end does; the last line is `{"event": "done",
"result": {...}}` (the window's counters), or `{"event": "error", ...}`.

bare: plain httpx clients, one token per system, at most `concurrency` requests in flight (as the
sync's `sync.max_concurrency` bounds it): the minimum API work of a burst or of the propagation
floor's round trips, without connectors, engine or store. Each command is answered with one line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import resource
import statistics
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

_PROTOCOL: IO[str] = sys.stdout


def emit(message: dict[str, Any]) -> None:
    """One JSON line to the bench (on the real stdout; `print` goes to stderr in a child)."""
    _PROTOCOL.write(json.dumps(message, separators=(",", ":"), default=str) + "\n")
    _PROTOCOL.flush()


def _inbox() -> asyncio.Queue[dict[str, Any] | None]:
    """The bench's commands, one JSON object a line; None when stdin closes."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(queue.put_nowait, json.loads(line))
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="bench-inbox", daemon=True).start()
    return queue


def peak_rss_kb() -> int:
    """This process's peak resident set, in KiB.

    Not `ru_maxrss`: Linux carries it over `fork` + `exec`, so a child of the bench (whose emulators hold
    10,000 agents) starts out "peaking" at the bench's own RSS at the fork. `VmHWM` is the high-water mark
    of this process's own memory, from its `exec` on.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # elsewhere: the best there is


# --- the store's statements --------------------------------------------------------------------------


class StatementCounter:
    """Counts SQL statements the store sends (an executemany counts once), from any thread."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._count = itertools.count(1)
        self.value = 0

    def _seen(self, *_args: Any) -> None:
        self.value = next(self._count)

    def __enter__(self) -> StatementCounter:
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._seen)


# --- sync --------------------------------------------------------------------------------------------


class WrittenAgents:
    """Whom this process wrote, as its clients sent it (CXone agent ids, Salesforce user ids), since the last
    `take()`: the bench tells which shard wrote which agent (the emulators cannot tell the processes apart)."""

    def __init__(self, ctx: Any) -> None:
        self.cxone: list[int] = []
        self.salesforce: list[str] = []
        set_state, publish = ctx.cxone.set_state, ctx.salesforce.publish_presence_commands

        async def counted_state(agent_id: int, *args: Any, **kwargs: Any) -> Any:
            answer = await set_state(agent_id, *args, **kwargs)
            self.cxone.append(int(agent_id))
            return answer

        async def counted_commands(commands: Any) -> Any:
            answer = await publish(commands)
            self.salesforce.extend(c.user_id for c, saved in zip(commands, answer, strict=True) if saved.success)
            return answer

        ctx.cxone.set_state = counted_state
        ctx.salesforce.publish_presence_commands = counted_commands

    def take(self) -> dict[str, list[Any]]:
        taken = {"cxone": self.cxone, "salesforce": self.salesforce}
        self.cxone, self.salesforce = [], []
        return taken


def _window_summary(result: Any) -> dict[str, Any]:
    from presence_sync.engine import Direction

    stats = result.stats
    directions = (Direction.CXONE_TO_SALESFORCE, Direction.SALESFORCE_TO_CXONE)
    return {
        "held_lease": result.held_lease,
        "ended": result.ended,
        "ticks": stats.ticks,
        "reads_failed": stats.reads_failed,
        "writes": {d.value: int(stats.writes[d]) for d in directions},
        "outcomes": {d.value: {o.value: int(n) for o, n in stats.outcomes[d].items()} for d in directions},
        "write_results": {d.value: {o.value: int(n) for o, n in stats.write_results[d].items()} for d in directions},
        "lags_ms": {d.value: list(stats.lags_ms[d]) for d in directions},
        "api_reads": dict(stats.api_reads),
        "anomalies": [{"kind": a.kind, "message": a.message} for a in stats.anomalies[:50]],
    }


async def run_sync(config_path: str, *, interval: float | None, holder: str, max_concurrency: int | None,
                   max_seconds: float, shard: str | None = None, tick_acks: bool = True) -> None:
    from presence_sync.engine import Direction
    from presence_sync.engine.shards import Shard
    from presence_sync.models.config import load_config
    from presence_sync.tasks.context import open_context
    from presence_sync.tasks.sync.window import WindowProgress, run_window, watch_ticks

    config = load_config(config_path)
    if max_concurrency is not None:
        config = config.model_copy(update={"sync": config.sync.model_copy(update={"max_concurrency": max_concurrency})})
    inbox = _inbox()
    stop = asyncio.Event()
    go = asyncio.Event()
    acked = asyncio.Condition()
    state = {"acked": 0, "sent": 0, "began": time.monotonic(), "began_utc": time.time()}

    async def listen() -> None:
        while (message := await inbox.get()) is not None:
            if message.get("cmd") == "ack":
                async with acked:
                    state["acked"] = max(state["acked"], int(message["tick"]))
                    acked.notify_all()
            elif message.get("cmd") == "go":
                go.set()
            elif message.get("cmd") == "stop":
                stop.set()
                go.set()
                async with acked:
                    acked.notify_all()
        stop.set()
        go.set()
        async with acked:
            acked.notify_all()

    def monotonic() -> float:
        return time.monotonic() + (1e9 if stop.is_set() else 0.0)

    async def sleep(seconds: float) -> None:
        began = time.monotonic()
        if tick_acks:
            async with acked:  # the bench reads its counters between two ticks
                await acked.wait_for(lambda: state["acked"] >= state["sent"] or stop.is_set())
        left = seconds - (time.monotonic() - began)
        if left > 0 and not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=left)
            except TimeoutError:
                pass
        state["began"], state["began_utc"] = time.monotonic(), time.time()

    listener = asyncio.create_task(listen())
    async with open_context(config) as ctx:
        directions = (Direction.CXONE_TO_SALESFORCE, Direction.SALESFORCE_TO_CXONE)
        written = WrittenAgents(ctx)
        with StatementCounter(ctx.store.engine) as statements:
            last = {"writes": dict.fromkeys(directions, 0), "seen": 0, "statements": statements.value}

            def on_tick(progress: WindowProgress) -> None:
                now, now_utc = time.monotonic(), time.time()
                stats = progress.stats
                writes = {d: int(stats.writes[d]) for d in directions}
                seen = sum(stats.changes_seen.values())
                state["sent"] += 1
                emit({
                    "event": "tick", "tick": state["sent"], "holding": progress.holding,
                    "started_at": state["began"], "ended_at": now,
                    "started_utc": state["began_utc"], "ended_utc": now_utc,
                    "writes": {d.value: writes[d] - last["writes"][d] for d in directions},
                    "changes_seen": seen - last["seen"],
                    "statements": statements.value - last["statements"],
                    "cpu_s": time.process_time(),
                    "rss_max_kb": peak_rss_kb(),
                    "written": written.take(),
                })
                last.update(writes=writes, seen=seen, statements=statements.value)

            emit({"event": "ready", "pid": os.getpid(), "max_concurrency": config.sync.max_concurrency,
                  "interval_s": interval or config.sync.interval_seconds})
            await go.wait()  # the bench has read its counters: the first tick may start
            state["began"], state["began_utc"] = time.monotonic(), time.time()
            with watch_ticks(on_tick):
                result = await run_window(
                    ctx, seconds=max_seconds, holder=holder, interval_seconds=interval, shard=Shard.parse(shard),
                    monotonic=monotonic, sleep=sleep,
                )
    listener.cancel()
    emit({"event": "done", "result": _window_summary(result)})


# --- bare ---------------------------------------------------------------------------------------------


class BareError(Exception):
    pass


@dataclass
class BareClients:
    """One plain httpx client per system with a token, `concurrency` connections each, bounded alike."""

    cxone: httpx.AsyncClient
    salesforce: httpx.AsyncClient
    concurrency: int
    slots: asyncio.Semaphore = field(init=False)
    sessions: dict[int, str] = field(default_factory=dict)  # CXone agent id -> joined session
    users: dict[int, str] = field(default_factory=dict)  # linked: CXone agent id -> Salesforce user id
    agents: dict[str, int] = field(default_factory=dict)  # linked: Salesforce user id -> CXone agent id

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.concurrency)

    @classmethod
    @asynccontextmanager
    async def open(cls, init: dict[str, Any]) -> AsyncIterator[BareClients]:
        concurrency = int(init["concurrency"])
        sf_credentials, cx_credentials = init["salesforce_credentials"], init["cxone_credentials"]
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=60) as login:
            basic = base64.b64encode(f"{cx_credentials['client_id']}:{cx_credentials['client_secret']}".encode()).decode()
            answer = await login.post(
                f"{init['cxone_url']}/auth/token",
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
                f"{init['salesforce_url']}/services/oauth2/token",
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
        cx_base = f"{init['cxone_url']}/incontactapi/services/{init['cxone_api_version']}"
        sf_base = f"{sf_token['instance_url']}/services/data/{init['salesforce_api_version']}"
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
            raise BareError(f"bare client: {method} {url} answered HTTP {response.status_code}: {response.text[:300]}")
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
        stamp = time.monotonic_ns()

        def body(part: list[tuple[str, str]], start: int) -> dict[str, Any]:
            return {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "Presence_Sync_Command__e"},
                        "UserId__c": user_id, "StatusId__c": status_id,
                        "CommandId__c": f"bare-{stamp}-{start + i}", "Reason__c": "bench baseline",
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
                raise BareError(f"bare client: Salesforce refused presence commands: {failed[:3]}")
        return len(parts)

    async def join(self, agent_ids: list[int]) -> int:
        """A session per agent (`POST /agent-sessions/join`), all at once under the bound; requests made."""

        async def one(agent_id: int) -> None:
            joined = await self.call(self.cxone, "POST", "/agent-sessions/join", json={"asAgentId": agent_id})
            self.sessions[agent_id] = str(joined.json()["sessionId"])

        await asyncio.gather(*(one(agent_id) for agent_id in agent_ids))
        return len(agent_ids)

    async def set_cxone_states(self, targets: dict[int, dict[str, Any]]) -> int:
        """Join (when no session is known) and set each agent's state, all at once under the bound; requests made."""
        requests = 0

        async def one(agent_id: int, body: dict[str, Any]) -> None:
            nonlocal requests
            session = self.sessions.get(agent_id)
            if session is None:
                joined = await self.call(self.cxone, "POST", "/agent-sessions/join", json={"asAgentId": agent_id})
                session = self.sessions[agent_id] = str(joined.json()["sessionId"])
                requests += 1
            await self.call(self.cxone, "POST", f"/agent-sessions/{session}/state", json=body)
            requests += 1

        await asyncio.gather(*(one(agent_id, body) for agent_id, body in targets.items()))
        return requests


async def _timed(call: Callable[[], Awaitable[Any]], count: int) -> float:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def _bare_command(bare: BareClients, message: dict[str, Any]) -> dict[str, Any]:
    cmd = message["cmd"]
    started = time.monotonic()
    if cmd == "cxone_to_salesforce":
        # The delta that finds the burst (every page), then one presence command per linked agent
        # whose state maps (the burst's one state: the rule's one look-up per record).
        from presence_sync.connectors.presence import cxone_state_from_api

        users = bare.users
        records, reads = await bare.cxone_states_since(message["since"], page_size=int(message["page_size"]))
        commands = [
            (users[int(r["agentId"])], message["status_id"])
            for r in records
            if int(r["agentId"]) in users and cxone_state_from_api(r).key == message["state_key"]
        ]
        calls = await bare.publish_commands(commands)
        return {"reads": reads, "writes": len(commands), "write_requests": calls, "seconds": time.monotonic() - started}
    if cmd == "salesforce_to_cxone":
        # The spells that started since the burst (every page), then each linked agent's state.
        agents = bare.agents
        spells, reads = await bare.salesforce_query(message["soql"])
        targets: dict[int, dict[str, Any]] = {}
        for spell in spells:
            agent_id = agents.get(spell["UserId"])
            status = (spell.get("ServicePresenceStatus") or {}).get("DeveloperName")
            if agent_id is not None and status == message["status"]:
                targets[int(agent_id)] = message["target"]
        requests = await bare.set_cxone_states(targets)
        return {"reads": reads, "writes": len(targets), "write_requests": requests, "seconds": time.monotonic() - started}
    if cmd == "links":  # who is linked to whom, sent before the burst (not timed)
        bare.users = {int(k): str(v) for k, v in message["users"].items()}
        bare.agents = {v: k for k, v in bare.users.items()}
        return {"linked": len(bare.users)}
    if cmd == "join":
        requests = await bare.join([int(a) for a in message["agents"]])
        return {"requests": requests, "seconds": time.monotonic() - started}
    if cmd == "floor":
        samples = int(message["samples"])
        agent_id = int(message["agent_id"])
        if agent_id not in bare.sessions:
            await bare.join([agent_id])
        session = bare.sessions[agent_id]
        return {
            "read_cxone": await _timed(lambda: bare.call(bare.cxone, "GET", "/agents/states", params={
                "updatedSince": message["cx_since"], "skip": "0", "top": "1000"}), samples),
            "read_salesforce": await _timed(lambda: bare.salesforce_query(message["spell_query"]), samples),
            "write_salesforce": await _timed(
                lambda: bare.call(bare.salesforce, "POST", "/composite/sobjects", json=message["command"]), samples),
            "write_cxone": await _timed(
                lambda: bare.call(bare.cxone, "POST", f"/agent-sessions/{session}/state", json=message["cx_target"]),
                samples),
        }
    raise BareError(f"unknown command {cmd!r}")


async def run_bare() -> None:
    inbox = _inbox()
    init = await inbox.get()
    if init is None:
        return
    async with BareClients.open(init) as bare:
        emit({"event": "ready", "pid": os.getpid(), "concurrency": bare.concurrency})
        while (message := await inbox.get()) is not None and message.get("cmd") != "quit":
            try:
                emit({"event": "answer", "ok": True, **await _bare_command(bare, message)})
            except (BareError, httpx.HTTPError) as error:
                emit({"event": "answer", "ok": False, "error": f"{type(error).__name__}: {error}"})


def main(argv: list[str] | None = None) -> int:
    global _PROTOCOL
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    sub = parser.add_subparsers(dest="role", required=True)
    sync = sub.add_parser("sync")
    sync.add_argument("config")
    sync.add_argument("--interval", type=float, default=None)
    sync.add_argument("--holder", default="bench/sync")
    sync.add_argument("--max-concurrency", type=int, default=None)
    sync.add_argument("--max-seconds", type=float, default=3600.0)
    sync.add_argument("--shard", default=None, metavar="i/n", help="sync shard i of n (default: every agent)")
    sync.add_argument("--no-tick-acks", dest="tick_acks", action="store_false",
                      help="do not wait for the bench's ack between two ticks")
    sub.add_parser("bare")
    args = parser.parse_args(argv)
    if args.role == "sync" and args.shard is not None:
        from presence_sync.engine.shards import Shard, ShardError

        try:
            Shard.parse(args.shard)
        except ShardError as error:
            parser.error(f"--shard: {error}")
    _PROTOCOL, sys.stdout = sys.stdout, sys.stderr
    try:
        if args.role == "sync":
            asyncio.run(run_sync(args.config, interval=args.interval, holder=args.holder,
                                 max_concurrency=args.max_concurrency, max_seconds=args.max_seconds,
                                 shard=args.shard, tick_acks=args.tick_acks))
        else:
            asyncio.run(run_bare())
    except BaseException as error:  # reported to the bench, which raises BenchError with it
        if isinstance(error, KeyboardInterrupt):
            return 130
        emit({"event": "error", "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
