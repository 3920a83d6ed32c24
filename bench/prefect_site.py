"""A Prefect site as production runs one, on loopback: `prefect server start`, a process work pool,
deployments from a prefect.yaml by `prefect deploy`, and `prefect worker start` processes.

The recovery bench and the real-worker test (tests/deployments/test_real_workers.py) use it; both
follow the production recipe of deployments/README.md step by step, with the `prefect` CLI.

    async with prefect_site(folder, database_url=None) as site:     # SQLite in `folder`
        await site.prefect("work-pool", "create", "presence-sync", "--type", "process")
        await site.prefect("--no-prompt", "deploy", "--all", "--prefect-file", str(yaml_path), cwd=PROJECT_ROOT)
        worker = await site.start_worker("worker-1")
        run_id = await site.run_deployment("sync/sync")
        state = await site.flow_run(run_id)       # {"state": {"type": "RUNNING", ...}, "infrastructure_pid": ...}
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SERVER_START_SECONDS = 240.0  # a busy 2-core machine: migrations on a fresh database take a while
COMMAND_SECONDS = 240.0
WAIT_SECONDS = 300.0  # any one condition: generous, for a 2-core machine at load 10
PREFECT_DATABASE_URL = "PREFECT_SERVER_DATABASE_CONNECTION_URL"


class SiteError(Exception):
    """The Prefect site could not be set up (the message names the step and its log)."""


async def until(check: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = WAIT_SECONDS,
                poll_seconds: float = 0.1) -> None:
    """Poll `check` (plain or async) until it holds; SiteError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise SiteError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(poll_seconds)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_server(env: dict[str, str], log_path: Path, database_url: str | None = None) -> tuple[asyncio.subprocess.Process, str]:
    """`prefect server start` on a free loopback port (`presence-sync server`'s settings); its API URL once healthy."""
    from presence_sync.cli.server import server_command

    argv, server_env = server_command(env, database_url, port=free_port())
    port = argv[argv.index("--port") + 1]
    server_env.setdefault("PREFECT_UI_ENABLED", "false")
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(*argv, env=server_env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + SERVER_START_SECONDS
    async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline and process.returncode is None:
            with suppress(httpx.HTTPError):
                if (await client.get(f"{url}/health")).status_code == 200:
                    return process, url
            await asyncio.sleep(0.25)
    await stop_process(process)
    raise SiteError(f"the Prefect server did not start within {SERVER_START_SECONDS:g} s (log: {log_path})")


async def stop_process(process: asyncio.subprocess.Process, first: int = signal.SIGINT, grace: float = 30.0) -> None:
    """Stop a process as a terminal would (`first`, then SIGKILL after `grace` seconds)."""
    if process.returncode is not None:
        return
    with suppress(ProcessLookupError):
        process.send_signal(first)
    try:
        await asyncio.wait_for(process.wait(), timeout=grace)
    except TimeoutError:
        with suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@dataclass
class PrefectSite:
    """A running Prefect server and the workers started on it (see the module docstring)."""

    folder: Path
    env: dict[str, str]  # what every `prefect` command and worker here runs with (PREFECT_API_URL, PREFECT_HOME)
    api_url: str
    workers: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    async def prefect(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """Run a `prefect` CLI command against this site; its output, or SiteError with it."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "prefect", *args, env={**self.env, **(env or {})}, cwd=str(cwd or self.folder),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout=COMMAND_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise SiteError(f"`prefect {' '.join(args)}` did not end within {COMMAND_SECONDS:g} s") from None
        text = output.decode(errors="replace")
        if process.returncode != 0:
            raise SiteError(f"`prefect {' '.join(args)}` failed (exit {process.returncode}): {text[-3000:]}")
        return text

    async def start_worker(self, name: str, pool: str = "presence-sync", env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
        """`prefect worker start` for `pool`, polling every second; its output in `<folder>/<name>.log`."""
        with open(self.folder / f"{name}.log", "wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--name", name, "--type", "process",
                env={**self.env, "PREFECT_WORKER_QUERY_SECONDS": "1", **(env or {})}, cwd=str(self.folder),
                stdout=log, stderr=log, start_new_session=True,
            )
        self.workers[name] = process
        return process

    def worker_log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self.api_url, trust_env=False, timeout=30) as client:
            response = await client.request(method, path, json=body)
        if response.status_code >= 400:
            raise SiteError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    async def run_deployment(self, flow_and_deployment: str, parameters: dict[str, Any] | None = None) -> str:
        """A flow run of `flow/deployment`, scheduled now (as `prefect deployment run` makes one); its id."""
        flow, deployment = flow_and_deployment.split("/", 1)
        found = await self.api("GET", f"/deployments/name/{flow}/{deployment}")
        run = await self.api("POST", f"/deployments/{found['id']}/create_flow_run", {"parameters": parameters or {}})
        return str(run["id"])

    async def flow_run(self, run_id: str) -> dict[str, Any]:
        return dict(await self.api("GET", f"/flow_runs/{run_id}"))

    async def flow_runs(self, deployment: str) -> list[dict[str, Any]]:
        """Every flow run of the deployment named `deployment`, oldest first."""
        body = {"deployments": {"name": {"any_": [deployment]}}, "sort": "EXPECTED_START_TIME_ASC"}
        return list(await self.api("POST", "/flow_runs/filter", body))


def flow_run_pid(run: dict[str, Any]) -> int | None:
    """The process id of a flow run started by a process worker (`infrastructure_pid` is `host:pid`)."""
    pid = run.get("infrastructure_pid")
    if not pid:
        return None
    return int(str(pid).rsplit(":", 1)[-1])


@asynccontextmanager
async def prefect_site(folder: Path, *, database_url: str | None = None) -> AsyncIterator[PrefectSite]:
    """A Prefect server for the block (PostgreSQL at `database_url`, else SQLite in `folder`), and its workers
    stopped afterwards the way systemd stops them (SIGTERM)."""
    from presence_sync.cli.prefect_api import QUIET_DEFAULTS

    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **QUIET_DEFAULTS, "PREFECT_HOME": str(folder / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    env.pop(PREFECT_DATABASE_URL, None)
    server, url = await start_server(env, folder / "server.log", database_url)
    site = PrefectSite(folder, {**env, "PREFECT_API_URL": url}, url)
    try:
        yield site
    finally:
        await asyncio.gather(*(stop_process(worker, signal.SIGTERM) for worker in site.workers.values()))
        await stop_process(server)
