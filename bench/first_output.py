"""first-output: how long each command takes to say something useful, with Prefect's temporary server and
with a running Prefect server.

Setup: the demo contact center (`--agents`, default 200; 20 with `--quick`) on loopback emulators
(served in the bench's process), onboarded; a fresh PREFECT_HOME in a temp folder. Each command is the
real CLI (`presence-sync ...`, a process of its own, as an admin runs it); the bench reads its output
(stdout and stderr) line by line and records when the first line came and when the command ended.

Modes:
- `no server`: PREFECT_API_URL unset and nothing at 127.0.0.1:4200: commands that run a flow start
  Prefect's temporary server (first warmed up once, untimed: a new PREFECT_HOME's database is created
  by the first server that opens it).
- `running server`: `presence-sync server`'s command (`prefect server start`, analytics off) on a free
  port, named by PREFECT_API_URL (the commands find `presence-sync server` at 127.0.0.1:4200 the same
  way, by one health request).
When a server already answers at 127.0.0.1:4200 the `no server` mode can't be measured (the commands
would use that server) and is left out, with a note.

Commands: status, audit (read-only: never start Prefect), onboard --plan (read-only: runs the flow's
steps without Prefect), onboard (the idempotent second run), reconcile, sync --seconds 2, and validate
(beside a sync started in the same mode, as the README's sequence runs it). `--quick` times the
read-only ones only (no Prefect server at all: a smoke run of a few seconds).

Oversubscribed (default; `--quick` leaves it out): each mode's commands again beside a CPU hog (two
busy-looping processes per core, as the issue's load of 10-15 on 2 cores), rows next to the idle ones
with the load average at the hog's start and end.

Baseline (same run): `presence-sync --help`, the interpreter and the CLI's own imports.
Targets: read-only commands answer within 2 s of the baseline; with a running server, onboard and
reconcile (no time of their own: a second run changes nothing) answer within 3 s of the baseline.
Checks: every command exits 0; read-only commands never mention Prefect; with no server, a command
that runs a flow says so in its first line.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from bench.center import BenchError, onboarded_center
from bench.report import Report
from presence_sync.cli.prefect_api import LOCAL_API_URL, QUIET_DEFAULTS, local_server_answers

NAME = "first-output"
DEFAULT_AGENTS = 200
QUICK_AGENTS = 20
READ_ONLY = ("status", "audit", "onboard --plan")
RUNS_A_FLOW = ("onboard", "reconcile", "sync --seconds 2", "validate")
QUICK_FLOWS = ("onboard", "reconcile")  # flows with no time of their own: what's left is start-up
READ_ONLY_TARGET_SECONDS = 2.0
FIRST_LINE_TARGET_SECONDS = 3.0
COMMAND_TIMEOUT_SECONDS = 300.0
VALIDATION_AGENT = "agent1@example.com"
HOGS_PER_CORE = 2  # busy loops per core for the oversubscribed rows (issue 14: load 10-15 on 2 cores)
HOGGED = ", CPU hog"


@dataclass(frozen=True)
class Timed:
    command_line: str  # as the table shows it, e.g. "onboard --plan" (the config path left out)
    mode: str
    first_line: float | None  # seconds from start to the first output line
    done: float  # seconds from start to exit
    exit_code: int
    first_text: str
    output: str


async def run(agents: int | None = None, quick: bool = False, oversubscribe: bool | None = None,
              hogs: int | None = None, **_: Any) -> Report:
    agents = agents or (QUICK_AGENTS if quick else DEFAULT_AGENTS)
    oversubscribe = not quick if oversubscribe is None else oversubscribe
    report = Report(NAME, "time to a command's first output, no server vs a running Prefect server",
                    params={"agents": agents, "quick": quick, "oversubscribed": oversubscribe})
    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="presence-sync-bench-prefect-"))
    try:
        async with onboarded_center(agents) as center:
            config = str(center.config_path)
            base_env = _environment(home)
            baseline = await _timed("--help", "baseline", base_env)
            report.figure("baseline_seconds", round(baseline.done, 3), "s")
            results: list[Timed] = []
            modes = await _modes(quick, report)
            for mode in modes:
                env = dict(base_env)
                async with _PrefectServer(mode, env, home):
                    commands = READ_ONLY if quick else (*READ_ONLY, *RUNS_A_FLOW)
                    if mode == "no server" and not quick:
                        await _timed(f"reconcile {config}", "warm-up", env)  # creates the new home's database
                    for command in commands:
                        results.append(await _run_command(command, config, mode, env))
                    if oversubscribe:  # the same commands again, beside a CPU hog: the admin's busy machine
                        busy_loops = hogs or HOGS_PER_CORE * (os.cpu_count() or 1)
                        async with _cpu_hog(busy_loops) as load:
                            for command in commands:
                                results.append(await _run_command(command, config, f"{mode}{HOGGED}", env))
                        report.note(f"{mode}{HOGGED}: {busy_loops} busy-looping processes on {os.cpu_count()} cores "
                                    f"beside the commands; load average {load[0]:.1f} when they started, {load[1]:.1f} at the end")
            _figures(report, results, baseline, modes)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    report.seconds = time.monotonic() - started
    return report


async def _modes(quick: bool, report: Report) -> list[str]:
    if quick:
        return ["no server"]
    if local_server_answers(LOCAL_API_URL):
        report.note(f"a Prefect server answers at {LOCAL_API_URL}: the commands would use it, so the "
                    "'no server' mode was not measured (stop that server to measure it)")
        return ["running server"]
    return ["no server", "running server"]


@asynccontextmanager
async def _cpu_hog(processes: int) -> AsyncIterator[list[float]]:
    """`processes` busy loops while the block runs; yields [load average at start, at end] (filled at exit)."""
    hogs = [await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass") for _ in range(processes)]
    load = [os.getloadavg()[0], 0.0]
    try:
        yield load
    finally:
        load[1] = os.getloadavg()[0]
        for hog in hogs:
            hog.kill()
            await hog.wait()


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") or k in QUIET_DEFAULTS}
    env.update({"PREFECT_HOME": str(home), "COLUMNS": "100", "PYTHONUNBUFFERED": "1"})
    return env


async def _run_command(command: str, config: str, mode: str, env: dict[str, str]) -> Timed:
    words = command.split()
    line = " ".join([words[0], config, *words[1:]])
    if words[0] == "audit":
        line += " --limit 5"
    if words[0] != "validate":
        return await _timed(line, mode, env, label=command)
    # The README's sequence: a sync runs (another terminal), then validate proves both directions.
    sync = await _start(f"sync {config} --seconds 120", env)
    try:
        await _wait_for_lease(config, env)
        return await _timed(f"{line} --agent {VALIDATION_AGENT}", mode, env, label=command)
    finally:
        sync.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(sync.wait(), timeout=60)
        except TimeoutError:
            sync.kill()
            await sync.wait()


async def _wait_for_lease(config: str, env: dict[str, str]) -> None:
    deadline = time.monotonic() + COMMAND_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status = await _timed(f"status {config}", "poll", env)
        if "sync: running" in status.output:
            return
        await asyncio.sleep(0.5)
    raise BenchError("the background sync never took the sync lease")


async def _start(line: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *_cli(line), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


async def _timed(line: str, mode: str, env: dict[str, str], label: str | None = None) -> Timed:
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *_cli(line), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert process.stdout is not None
    first_line: float | None = None
    lines: list[str] = []
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            async for raw in process.stdout:
                text = raw.decode(errors="replace").rstrip()
                if first_line is None and text.strip():
                    first_line = time.monotonic() - started
                lines.append(text)
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BenchError(f"`presence-sync {line}` did not end within {COMMAND_TIMEOUT_SECONDS:g} s") from None
    output = "\n".join(lines)
    first_text = next((text.strip() for text in lines if text.strip()), "")
    done = time.monotonic() - started
    return Timed(label or line, mode, first_line, done, process.returncode or 0, first_text, output)


def _cli(line: str) -> list[str]:
    return [sys.executable, "-m", "presence_sync.cli.main", *line.split()]


class _PrefectServer:
    """`mode` "running server": a Prefect server for the block, named by PREFECT_API_URL in `env`."""

    def __init__(self, mode: str, env: dict[str, str], home: Path) -> None:
        self.mode, self.env, self.home = mode, env, home
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> None:
        if self.mode != "running server":
            return
        from bench.prefect_site import SiteError, start_server

        try:
            self.process, url = await start_server(self.env, self.home / "server.log")
        except SiteError as error:
            raise BenchError(str(error)) from None
        self.env["PREFECT_API_URL"] = url

    async def __aexit__(self, *_: object) -> None:
        from bench.prefect_site import stop_process

        if self.process is not None:
            await stop_process(self.process)


def _figures(report: Report, results: list[Timed], baseline: Timed, modes: list[str]) -> None:
    rows = []
    for timed in results:
        rows.append([timed.command_line, timed.mode, _seconds(timed.first_line), _seconds(timed.done),
                     timed.exit_code, timed.first_text[:60]])
        key = f"{re.sub(r'[^a-z]+', '_', timed.mode.lower())}.{timed.command_line.replace(' ', '_').replace('-', '')}"
        report.figure(f"{key}.first_line_seconds", None if timed.first_line is None else round(timed.first_line, 3), "s")
        report.figure(f"{key}.done_seconds", round(timed.done, 3), "s")
    report.table(f"baseline `presence-sync --help`: {baseline.done:.2f} s", [
        "command", "Prefect", "first line (s)", "done (s)", "exit", "first line"
    ], rows)
    report.figure("commands", len(results))

    read_only = [t for t in results if t.command_line in READ_ONLY]
    flows = [t for t in results if t.command_line not in READ_ONLY]
    # Targets are for an idle machine; the CPU-hog rows are printed beside them, to compare.
    slowest = max((t.done for t in read_only if HOGGED not in t.mode), default=0.0)
    report.target(
        f"read-only commands answer within {READ_ONLY_TARGET_SECONDS:g} s of the baseline",
        slowest - baseline.done <= READ_ONLY_TARGET_SECONDS, f"slowest {slowest:.2f} s, baseline {baseline.done:.2f} s",
    )
    # sync and validate take their own time (the window; the hops), so the target is on the others.
    running = [t for t in flows if t.mode == "running server" and t.command_line in QUICK_FLOWS]
    if running:
        late = max(t.first_line or t.done for t in running)
        report.target(
            f"with a running server, {' and '.join(QUICK_FLOWS)} answer within {FIRST_LINE_TARGET_SECONDS:g} s "
            "of the baseline",
            late - baseline.done <= FIRST_LINE_TARGET_SECONDS, f"latest {late:.2f} s",
        )
    failed = [f"{t.command_line} ({t.mode}): exit {t.exit_code}: {t.output[-300:]}" for t in results if t.exit_code != 0]
    report.check("every command exits 0", not failed, "; ".join(failed))
    chatty = [t.command_line for t in read_only if "Prefect" in t.output]
    report.check("read-only commands never mention (or start) Prefect", not chatty, ", ".join(chatty))
    unsaid = [f"{t.command_line} ({t.mode})" for t in flows if t.mode.startswith("no server") and "Prefect: " not in t.first_text]
    report.check("a command that starts a temporary server says so in its first line", not unsaid, ", ".join(unsaid))
    if "no server" in modes and running:
        report.note("first line with no server is our one line saying a temporary server starts; the answer "
                    "comes when the command is done")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
