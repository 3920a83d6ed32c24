"""consoles: N connected agent consoles on one gateway process (issue 9): memory, CPU per command, and how
fast a command's outcome reaches the sync with push (LISTEN/NOTIFY wake-up) vs poll (a read every interval).

Setup: a fresh PostgreSQL database (the broker between sync and gateway, as in production); the gateway
is the real `presence-sync gateway` in a process of its own; the consoles (`bench/console_swarm.py`,
10,000; 200 with `--quick`) in another, each with its own WebSocket and token, acknowledging every
command and reporting the status change, as the Lightning component does. The bench is the sync side.

Figures (the gateway process, from /proc): RSS with no console (baseline) and with N, per console; CPU
per second idle with N connected (heartbeats, sweeps); CPU per command above that idle rate; command to
outcome seen by the sync, p50/p95/max, for push and for poll, commands sent at a steady rate.
Targets: under 100 KiB RSS per console; push p50 below poll p50 (a wake-up beats waiting for the next
read). Checks: every console welcomed; every command applied exactly once and its outcome seen.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.center import BenchError
from bench.console_swarm import user_id
from bench.report import Report
from bench.scale import DEFAULT_PG_SERVER, fresh_database, postgres_answers
from presence_sync.connectors.console.broker import CommandOutcome, ConsoleCommand
from presence_sync.connectors.console.postgres_broker import PostgresBroker
from presence_sync.tasks.sync.summary import percentile

NAME = "consoles"
DEFAULT_CONSOLES = 10_000
QUICK_CONSOLES = 200
COMMANDS_PER_SECOND = 100.0
IDLE_SECONDS = 10.0
QUICK_IDLE_SECONDS = 2.0
POLL_INTERVAL_SECONDS = 1.0  # the sync's default tick
STATUS_ID = "0N5000000000001AAA"
CONNECT_TIMEOUT_SECONDS = 900.0
OUTCOMES_TIMEOUT_SECONDS = 300.0
RSS_PER_CONSOLE_TARGET_KIB = 100.0
_PORT_LINE = re.compile(rb"ws://127\.0\.0\.1:(\d+)/console")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for process {pid}")


@dataclass
class Round:
    mode: str
    latencies: list[float]
    cpu_per_command_ms: float
    applied_twice: int
    not_applied: int  # lost at their expiry: the gateway did not deliver them in time


async def _gateway(broker_url: str, env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "presence_sync.cli.main", "gateway", "--port", "0", "--broker-url", broker_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env)
    assert process.stdout is not None
    async with asyncio.timeout(120):
        while line := await process.stdout.readline():
            if match := _PORT_LINE.search(line):
                asyncio.create_task(process.stdout.read())  # drained: a full pipe would stall the gateway
                return process, f"ws://127.0.0.1:{match.group(1).decode()}/console"
    raise BenchError(f"the gateway exited before listening (exit {await process.wait()})")


async def _swarm(url: str, consoles: int, env: dict[str, str]) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.console_swarm", url, str(consoles),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
    assert process.stdout is not None
    line = b""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            while not line.startswith(b"ready"):
                line = await process.stdout.readline()
                if not line:
                    raise BenchError(f"the console swarm exited (code {await process.wait()}) before every console connected")
    except TimeoutError:
        process.kill()
        raise BenchError(f"{consoles:,} consoles did not all connect within {CONNECT_TIMEOUT_SECONDS:g} s "
                         f"(last word from the swarm: {line.decode().strip() or 'none'})") from None
    return process


async def _round(broker: PostgresBroker, pid: int, mode: str, users: range, idle_rate: float) -> Round:
    """Commands to `users` at a steady rate; each outcome's delay as the sync sees it in `mode`."""
    cursor = max((event.seq for event in await broker.read_events(0, limit=1_000_000)), default=0)
    sent: dict[str, float] = {}
    latencies: dict[str, float] = {}  # of the applied commands only
    ended: set[str] = set()  # every outcome: applied, or lost at its expiry (a gateway too busy to deliver)
    applied: dict[str, int] = {}
    cpu_before, started = cpu_seconds(pid), time.monotonic()

    async def send() -> None:
        for n in users:
            command_id = f"{mode}-{n}"
            command = ConsoleCommand.set_status(user_id(n), STATUS_ID, "On_Break", command_id=command_id)
            sent[command_id] = time.monotonic()
            await broker.submit([command])
            await asyncio.sleep(max(0.0, started + (len(sent) / COMMANDS_PER_SECOND) - time.monotonic()))

    sender = asyncio.create_task(send())
    async with asyncio.timeout(OUTCOMES_TIMEOUT_SECONDS + len(users) / COMMANDS_PER_SECOND):
        while len(ended) < len(users):
            if mode == "push":
                await broker.wait_for_events(cursor, timeout=5.0)
            else:
                await asyncio.sleep(POLL_INTERVAL_SECONDS)
            seen_at = time.monotonic()
            for event in await broker.read_events(cursor, limit=100_000):
                cursor = event.seq
                if isinstance(event, CommandOutcome) and event.command_id in sent:
                    ended.add(event.command_id)
                    if event.outcome == "applied":
                        applied[event.command_id] = applied.get(event.command_id, 0) + 1
                        latencies.setdefault(event.command_id, seen_at - sent[event.command_id])
    await sender
    busy = cpu_seconds(pid) - cpu_before - idle_rate * (time.monotonic() - started)
    return Round(mode, sorted(latencies.values()), 1000 * max(0.0, busy) / len(users),
                 sum(1 for count in applied.values() if count > 1), len(users) - len(latencies))


async def run(agents: int | None = None, quick: bool = False, *, commands: int | None = None,
              store_url: str | None = None, **_: Any) -> Report:
    consoles = agents or (QUICK_CONSOLES if quick else DEFAULT_CONSOLES)
    per_round = min(consoles // 2, commands or (50 if quick else 1000))
    report = Report(NAME, f"{consoles:,} consoles on one gateway process",
                    params={"consoles": consoles, "commands_per_round": per_round, "rate_per_s": COMMANDS_PER_SECOND})
    server = store_url or DEFAULT_PG_SERVER
    if not postgres_answers(server):
        raise BenchError(f"needs PostgreSQL (the broker between sync and gateway) at {server.rsplit('@', 1)[-1]}")
    started = time.monotonic()
    env = {**os.environ, "PRESENCE_SYNC_GATEWAY_SECRET": secrets.token_urlsafe(36)}
    async with fresh_database(server) as url:
        broker_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        gateway, ws_url = await _gateway(broker_url, env)
        swarm: asyncio.subprocess.Process | None = None
        broker = await PostgresBroker.open(broker_url)
        try:
            rss_empty = rss_kib(gateway.pid)
            swarm = await _swarm(ws_url, consoles, env)
            connected = sum((await broker.connected_consoles()).values())
            rss_full = rss_kib(gateway.pid)
            cpu_idle_start, idle_start = cpu_seconds(gateway.pid), time.monotonic()
            await asyncio.sleep(QUICK_IDLE_SECONDS if quick else IDLE_SECONDS)  # a bench measures time; tests never do
            idle_rate = (cpu_seconds(gateway.pid) - cpu_idle_start) / (time.monotonic() - idle_start)
            push = await _round(broker, gateway.pid, "push", range(per_round), idle_rate)
            poll = await _round(broker, gateway.pid, "poll", range(per_round, 2 * per_round), idle_rate)
        finally:
            await broker.close()
            counts = await _stop(swarm)
            gateway.terminate()
            await gateway.wait()
    report.seconds = time.monotonic() - started
    _fill(report, consoles, connected, rss_empty, rss_full, idle_rate, push, poll, counts)
    return report


async def _stop(swarm: asyncio.subprocess.Process | None) -> dict[str, int]:
    if swarm is None:
        return {}
    assert swarm.stdin is not None and swarm.stdout is not None
    swarm.stdin.close()
    try:
        async with asyncio.timeout(60):
            line = await swarm.stdout.readline()
            await swarm.wait()
    except TimeoutError:
        swarm.kill()
        return {}
    return dict(json.loads(line)) if line.strip() else {}


def _fill(report: Report, consoles: int, connected: int, rss_empty: int, rss_full: int, idle_rate: float,
          push: Round, poll: Round, counts: dict[str, int]) -> None:
    per_console = report.figure("rss_per_console_kib", (rss_full - rss_empty) / consoles, "KiB")
    report.figure("rss_no_consoles_mib", rss_empty / 1024, "MiB")
    report.figure("rss_with_consoles_mib", rss_full / 1024, "MiB")
    report.figure("cpu_idle_percent", 100 * idle_rate, "% of a core")
    rows = []
    for round_ in (push, poll):
        p50, p95 = percentile(round_.latencies, 50), percentile(round_.latencies, 95)
        report.figure(f"{round_.mode}_p50_s", p50, "s")
        report.figure(f"{round_.mode}_p95_s", p95, "s")
        report.figure(f"{round_.mode}_cpu_per_command_ms", round_.cpu_per_command_ms, "ms")
        report.figure(f"{round_.mode}_lost", round_.not_applied)
        rows.append([round_.mode, len(round_.latencies), round_.not_applied, _s(p50), _s(p95),
                     _s(round_.latencies[-1] if round_.latencies else None), f"{round_.cpu_per_command_ms:.2f}"])
    report.table("command -> applied outcome seen by the sync (s), gateway CPU per command above idle (ms)",
                 ["mode", "applied", "lost", "p50", "p95", "max", "CPU ms"], rows)
    report.figure("load_after", round(os.getloadavg()[0], 2))
    report.note(f"load average after: {os.getloadavg()[0]:.2f} (before: see the machine line); "
                f"{report.env['cpu_count']} cores; the consoles' process and PostgreSQL share them with the gateway")
    report.target(f"gateway RSS per console under {RSS_PER_CONSOLE_TARGET_KIB:g} KiB",
                  per_console < RSS_PER_CONSOLE_TARGET_KIB, f"{per_console:.1f} KiB")
    push_p50, poll_p50 = percentile(push.latencies, 50) or 0.0, percentile(poll.latencies, 50) or 0.0
    report.target("push p50 below poll p50 (the same run's baseline)", push_p50 < poll_p50,
                  f"{push_p50:.3f} s vs {poll_p50:.3f} s")
    report.check("every console welcomed and listed by the broker",
                 counts.get("welcomed") == consoles == connected, f"{counts.get('welcomed')} welcomed, {connected} listed")
    expected = len(push.latencies) + len(poll.latencies) + push.not_applied + poll.not_applied
    report.check("every command applied once, within its 30 s expiry",
                 counts.get("commands") == expected and push.applied_twice == poll.applied_twice == 0
                 and push.not_applied == poll.not_applied == 0,
                 f"{counts.get('commands')} received of {expected}, {push.not_applied + poll.not_applied} lost, "
                 f"{push.applied_twice + poll.applied_twice} applied twice")


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
