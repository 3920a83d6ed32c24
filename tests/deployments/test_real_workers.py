"""The production recipe for real: `prefect server start`, a process work pool, `prefect deploy` from a
prefect.yaml derived from ours, two `prefect worker start` processes, sync windows over 10,000 emulated
agents on one store; then a window killed with SIGKILL, windows stopped with SIGTERM (by a worker
cancelling its run, and sent straight to the run's process), and `presence-sync sync` stopped with SIGTERM.

Prefect's database and the sync's store are PostgreSQL databases of their own when PostgreSQL answers
(created and dropped here), else SQLite: then everything but the two-shard store runs.

On PostgreSQL the windows are two shards (`sync-1-of-2`, `sync-2-of-2`, parameter `shard: "i/n"`, leases
`sync:i/n`), as the production recipe deploys them; on SQLite one `sync` deployment runs, and what was
not run is named in pytest's warnings summary.

Everything waits on conditions (store leases, flow run states, the emulators' state) with generous
deadlines; nothing is timed. The whole scenario is one test: it shares one server, and its xdist group
keeps it off the other tests' worker (`make test` runs pytest with `--dist loadgroup`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.prefect_site import PrefectSite, SiteError, flow_run_pid, prefect_site
from bench.prefect_site import until as wait_for
from bench.scale import fresh_database, postgres_answers
from presence_sync.deployments.serve import PREFECT_YAML, PROJECT_ROOT
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.engine import Shard
from presence_sync.models.config import load_config, write_emulator_config
from presence_sync.tasks.context import open_context, open_store
from presence_sync.tasks.onboarding import run_steps
from presence_sync.tasks.sync.sources import CXONE_CURSOR, SALESFORCE_CURSOR

pytestmark = pytest.mark.xdist_group("real-prefect")

AGENTS = 10_000
SHARDS = 2
PG_URL = os.environ.get("PRESENCE_SYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEADLINE = 240.0  # seconds for any one condition: generous, for a 2-core machine at load 10
CHANGED_PER_PHASE = 40
TO_CXONE = "salesforce->cxone"


def voice_agents(phase: int, count: int = CHANGED_PER_PHASE) -> list[int]:
    """`count` demo agents spread over all 10,000 (so every shard has some, whatever its rule), on a voice
    team with a Salesforce user (emulators/demo_center.py: every 10th chats, every 50th has no user);
    each phase its own."""
    step = AGENTS // count
    return [k * step + 1 + phase * 2 + (1 if (k * step + 1 + phase * 2) % 10 == 0 else 0) for k in range(count)]


def sync_deployments(shards: int | None) -> list[dict[str, Any]]:
    """Our prefect.yaml's `sync` deployment, as the README's production recipe shards it (or as it is)."""
    document = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    template = next(entry for entry in document["deployments"] if entry["name"] == "sync")
    names = [("sync", None)] if shards is None else [(f"sync-{i}-of-{shards}", f"{i}/{shards}") for i in range(1, shards + 1)]
    entries = []
    for name, shard in names:
        entry = yaml.safe_load(yaml.safe_dump(template))  # a deep copy, anchors resolved
        entry["name"] = name
        entry["schedules"] = []  # the test starts each window itself, as `prefect deployment run` does
        entry["parameters"].update(interval_seconds=1, window_minutes=30, **({"shard": shard} if shard else {}))
        for trigger in entry.get("triggers", []):
            trigger["match_related"]["prefect.resource.name"] = name
        entries.append(entry)
    return entries


def write_project(folder: Path, shards: int | None) -> Path:
    document = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    document["deployments"] = sync_deployments(shards)
    path = folder / "prefect.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def lease_name(shard: str | None) -> str:
    return "sync" if shard is None else f"sync:{shard}"


async def until(check: Callable[[], Awaitable[bool] | bool], what: str, site: PrefectSite | None = None) -> None:
    """Wait for `check` with a generous deadline (not a timing assertion); on failure, the workers' output."""
    try:
        await wait_for(check, what, DEADLINE)
    except SiteError as error:
        logs = "" if site is None else "".join(f"\n--- {name}.log ---\n{site.worker_log(name)[-3000:]}" for name in site.workers)
        raise AssertionError(f"{error}{logs}") from None


@asynccontextmanager
async def databases() -> AsyncIterator[tuple[str | None, str | None]]:
    """(Prefect's database URL, the store's URL): fresh PostgreSQL databases, or (None, None) for SQLite."""
    if not postgres_answers(PG_URL):
        yield None, None
        return
    async with fresh_database(PG_URL, "ps_stops_prefect") as prefect_db, fresh_database(PG_URL, "ps_stops_store") as store_db:
        yield prefect_db.replace("postgresql+psycopg://", "postgresql+asyncpg://", 1), store_db


class Writes:
    """The CXone emulator's state writes per agent (its agent-session API), counted as they arrive."""

    def __init__(self, stack: EmulatorStack) -> None:
        self.by_agent: Counter[int] = Counter()
        tenant = stack.cxone.tenant
        original = tenant.set_session_state

        def counting(session_id: str, state: str, reason: str | None = None) -> dict[str, Any]:
            record = original(session_id, state, reason)
            self.by_agent[int(record["agentId"])] += 1
            return record

        tenant.set_session_state = counting  # type: ignore[method-assign]


async def test_sync_windows_on_real_workers_survive_kill_and_stop_cleanly(tmp_path: Path) -> None:
    skipped: list[str] = []
    async with databases() as (prefect_db, store_db):
        if store_db is None:
            skipped.append(f"PostgreSQL does not answer at {PG_URL}: Prefect and the store ran on SQLite, one window")
        shards = SHARDS if store_db is not None else None
        with EmulatorStack.serve(agents=AGENTS, seed=7) as stack:
            config_path = await write_emulator_config(stack, tmp_path / "presence-sync.yaml")
            data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
            data["sync"].update(echo_timeout_seconds=5, **({"store_url": store_db} if store_db else {}))
            config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
            async with open_context(config_path) as ctx:
                assert (await run_steps(ctx)).succeeded
            writes = Writes(stack)
            store = open_store(load_config(config_path))
            try:
                async with prefect_site(tmp_path / "prefect", database_url=prefect_db) as site:
                    await run_scenario(site, stack, store, writes, config_path, shards, tmp_path)
            finally:
                store.close()
    for reason in skipped:  # shown in pytest's warnings summary
        warnings.warn(f"real-worker test, not run here: {reason}", UserWarning, stacklevel=1)


async def run_scenario(site: PrefectSite, stack: EmulatorStack, store: Any, writes: Writes, config_path: Path,
                       shards: int | None, tmp_path: Path) -> None:
    env = {"PRESENCE_SYNC_HOME": str(PROJECT_ROOT), "PRESENCE_SYNC_CONFIG": str(config_path)}
    project = write_project(tmp_path, shards)
    await site.prefect("work-pool", "create", "presence-sync", "--type", "process")
    await site.prefect("--no-prompt", "deploy", "--all", "--prefect-file", str(project), cwd=PROJECT_ROOT, env=env)
    for name in ("worker-1", "worker-2"):
        await site.start_worker(name, env=env)
    deployments = {entry["name"]: entry["parameters"].get("shard") for entry in sync_deployments(shards)}
    for name in deployments:  # the recipe's first windows: `prefect deployment run sync/<name>`
        await site.prefect("deployment", "run", f"sync/{name}", env=env)

    def holder(name: str) -> str | None:
        lease = store.leases.get(lease_name(deployments[name]))
        return lease.holder if lease is not None and lease.expires_at > datetime.now(UTC) else None

    def lease_free(name: str) -> bool:
        return holder(name) is None

    for name in deployments:
        await until(lambda name=name: holder(name) is not None, f"a window of {name} holds its lease", site)

    sf, cx = stack.salesforce, stack.cxone

    async def carried(agents: list[int], status: str, state: str) -> None:
        """Each agent picks `status` in Omni once aligned; wait until CXone shows `state` for every one."""
        users = {i: sf.user_by_username(f"agent{i}@example.com").id for i in agents}
        ids = {i: int(cx.tenant.find_agent(f"agent{i}@example.com")["agentId"]) for i in agents}
        await until(lambda: all(sf.current_presence(u) is not None for u in users.values()),
                    "the windows aligned the agents' Omni status", site)
        for user in users.values():
            sf.set_presence(user, status)
        await until(lambda: all(cx.tenant.state(a)["outStateDescription"] == state for a in ids.values()),
                    f"every change to {status} reached CXone", site)
        for agent in ids.values():
            assert writes.by_agent[agent] == 1, f"agent {agent}: {writes.by_agent[agent]} CXone writes for one change"
        writes.by_agent.clear()

    def writers(agent_ids: list[int]) -> dict[int, set[str]]:
        """The windows (their lease holder names) that wrote each agent to CXone, from the store's audit."""
        return {
            agent_id: {row.run_id or "" for row in store.reports.audit_for(agent_id, limit=100)
                       if row.direction == TO_CXONE and row.outcome == "write"}
            for agent_id in agent_ids
        }

    # 1. Windows carry their agents (each shard its own, no agent written by two windows).
    first = voice_agents(0)
    await carried(first, "On_Break", "Break")
    runs = {name: {f"sync/{run['id']}" for run in await site.flow_runs(name)} for name in deployments}
    first_ids = [int(cx.tenant.find_agent(f"agent{i}@example.com")["agentId"]) for i in first]
    by_agent = writers(first_ids)
    assert all(len(run_ids) == 1 for run_ids in by_agent.values()), "an agent was written by two windows"
    if shards is not None:
        carrying = {name for name, ids in runs.items() if any(ids & r for r in by_agent.values())}
        assert carrying == set(deployments), f"only {carrying} carried agents"

    # 2. SIGKILL one window's process: its run ends Crashed, the deployment's trigger starts the next window,
    #    which takes the lease over once the dead one's expires; a change made meanwhile is written once.
    victim = next(iter(deployments))
    killed = await running_run(site, victim)
    os.kill(flow_run_pid(killed), signal.SIGKILL)  # type: ignore[arg-type]
    second = voice_agents(1)
    await until(lambda: state_of(site, killed["id"], "CRASHED"), "the killed run is Crashed", site)
    await until(lambda: next_run_holds(site, victim, killed["id"], holder), f"a new window of {victim} holds the lease", site)
    await carried(second, "Lunch", "Lunch")

    # 3. A worker cancels a run (the UI's Cancel): SIGTERM to its process; the run ends Cancelled and its
    #    lease is free the moment it does. Then SIGTERM straight to the other window's process.
    for name, how in zip(deployments, ("cancel", "sigterm"), strict=False):
        run = await running_run(site, name)
        if how == "cancel":
            await site.prefect("flow-run", "cancel", run["id"])
        else:
            os.kill(flow_run_pid(run), signal.SIGTERM)  # type: ignore[arg-type]
        await until(lambda run=run: state_of(site, run["id"], "CANCELLED", "COMPLETED"), f"{how}: the run ended cleanly", site)
        assert lease_free(name), f"{how}: the run ended but its lease is still held"
        final = await site.flow_run(run["id"])
        assert "stopped by SIGTERM" in (final["state"]["message"] or ""), final["state"]
    for name in site.workers:
        assert "Traceback" not in site.worker_log(name), site.worker_log(name)[-3000:]
    if len(deployments) == 1:  # one window: the direct SIGTERM needs a second running window
        run_id = await site.run_deployment(f"sync/{victim}")
        await until(lambda: holder(victim) == f"sync/{run_id}", "a fresh window holds the lease", site)
        os.kill(flow_run_pid(await site.flow_run(run_id)), signal.SIGTERM)  # type: ignore[arg-type]
        await until(lambda: state_of(site, run_id, "CANCELLED"), "sigterm: the run ended cleanly", site)
        assert lease_free(victim)

    # 4. `presence-sync sync` in a terminal (shard 1 when sharded), stopped with SIGTERM once it holds the
    #    lease and has carried a change.
    [cli_agent, *_] = [i for i, cx_id in zip(first, first_ids, strict=True) if by_agent[cx_id] & runs[victim]]
    await cli_stopped_by_sigterm(site, stack, store, writes, config_path, lambda: holder(victim), cli_agent,
                                 [] if deployments[victim] is None else ["--shard", deployments[victim]])


async def running_run(site: PrefectSite, deployment: str) -> dict[str, Any]:
    runs = [run for run in await site.flow_runs(deployment) if run["state"]["type"] == "RUNNING" and flow_run_pid(run)]
    assert runs, f"no running window of {deployment}"
    return runs[-1]


async def state_of(site: PrefectSite, run_id: str, *types: str) -> bool:
    return (await site.flow_run(run_id))["state"]["type"] in types


async def next_run_holds(site: PrefectSite, deployment: str, after: str, holder: Callable[[str], str | None]) -> bool:
    current = holder(deployment)
    return current is not None and current != f"sync/{after}" and current.startswith("sync/")


async def cli_stopped_by_sigterm(site: PrefectSite, stack: EmulatorStack, store: Any, writes: Writes, config_path: Path,
                                 holder: Callable[[], str | None], agent: int, shard: list[str]) -> None:
    """`agent` is one of the window's (its shard's) agents, on Break since the first phase."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "presence_sync.cli.main", "sync", str(config_path), "--seconds", "1800", *shard,
        env={**site.env, "COLUMNS": "100"}, cwd=str(PROJECT_ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await until(lambda: (holder() or "").startswith("sync/"), "the CLI's window holds the lease", site)
        run_id = holder().removeprefix("sync/")  # type: ignore[union-attr]
        sf, cx = stack.salesforce, stack.cxone
        user = sf.user_by_username(f"agent{agent}@example.com").id
        cx_id = int(cx.tenant.find_agent(f"agent{agent}@example.com")["agentId"])
        sf.set_presence(user, "Lunch")
        await until(lambda: cx.tenant.state(cx_id)["outStateDescription"] == "Lunch", "the CLI's window carried a change", site)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=DEADLINE)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 128 + signal.SIGTERM, text
    assert "stopped by SIGTERM" in text and "Traceback" not in text, text
    assert holder() is None
    assert (await site.flow_run(run_id))["state"]["type"] == "CANCELLED"
    assert writes.by_agent[cx_id] == 1
    cursors = Shard.parse(shard[-1] if shard else None)
    assert store.sync.get_cursor(cursors.cursor(CXONE_CURSOR)) is not None
    assert store.sync.get_cursor(cursors.cursor(SALESFORCE_CURSOR)) is not None
    decided = [row for row in store.reports.audit_for(cx_id, since=None, limit=50) if row.run_id == f"sync/{run_id}"]
    assert any(row.outcome == "write" and row.direction == TO_CXONE for row in decided)
