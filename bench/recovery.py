"""recovery: how long agents go unsynced when a sync window is stopped, on a Prefect site as production runs it.

Setup: the demo center onboarded (`--agents`, default 2,000), `prefect server start` (SQLite), a process
work pool, our prefect.yaml's `sync` deployment by `prefect deploy` (schedule left out, 1 s interval;
its Crashed trigger kept), one `prefect worker start`. Each scenario starts a fresh window, makes it hold
the lease, stops it, and at once changes one agent's Omni status; the figure is the time from the
stop to CXone showing the change: the next tick that writes, by whichever window holds the lease then.

1. **SIGTERM, next window waiting** (a worker cancelling the run, systemd, Kubernetes; the schedule's
   overlapping window): the stopped window saves and releases its lease; the waiting one takes it at once.
2. **SIGKILL, nothing waiting**: the run ends Crashed, the deployment's trigger starts the next window
   (the server's automation, the worker, a new flow-run process), which takes the lease once it expired.
3. **SIGKILL, next window waiting**: the dead window's lease expires (its lifetime), then the next takes it.

Baseline, in the same run: the lease lifetime (`lease_ttl_seconds`), what a restart must wait at least
after a crash. Targets: a clean stop hands over well within it; a crash recovers within it plus 15 s
(before: 20-26 s of a temporary Prefect server plus the lifetime).
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench.center import BenchError, Center, onboarded_center
from bench.prefect_site import PrefectSite, SiteError, flow_run_pid, prefect_site, until
from bench.report import Report
from presence_sync.deployments.serve import PREFECT_YAML, PROJECT_ROOT
from presence_sync.tasks.sync.runner import LEASE_NAME, lease_ttl_seconds

INTERVAL_SECONDS = 1.0
# The last one leaves the run its trigger starts to the site's shutdown (it would compete for the lease).
SCENARIOS = (
    ("SIGTERM, next window waiting", signal.SIGTERM, True),
    ("SIGKILL, next window started by the Crashed trigger", signal.SIGKILL, False),
    ("SIGKILL, next window waiting", signal.SIGKILL, True),
)
TARGET_CRASH_EXTRA_SECONDS = 15.0
STATUSES = ("On_Break", "Lunch")  # voice agents: CXone "Break" / "Lunch"
CXONE_SHOWS = {"On_Break": "Break", "Lunch": "Lunch"}


def deployment_yaml(folder: Path) -> Path:
    """Our prefect.yaml with its `sync` deployment only, unscheduled (the bench starts each window)."""
    document = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    [sync] = [entry for entry in document["deployments"] if entry["name"] == "sync"]
    sync["schedules"] = []
    sync["parameters"].update(interval_seconds=INTERVAL_SECONDS, window_minutes=60)
    document["deployments"] = [sync]
    path = folder / "prefect.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


class Recovery:
    def __init__(self, center: Center, site: PrefectSite) -> None:
        self.center, self.site = center, site
        self.store = center.ctx.store

    def holder(self) -> str | None:
        lease = self.store.leases.get(LEASE_NAME)
        return lease.holder if lease is not None and lease.expires_at > datetime.now(UTC) else None

    async def state(self, run_id: str) -> str:
        return str((await self.site.flow_run(run_id))["state"]["type"])

    async def window(self, holding: bool) -> str:
        """A new window's flow run id, once it runs (and, when `holding`, holds the lease)."""
        run_id = await self.site.run_deployment("sync/sync")
        await until(lambda: self.running(run_id), f"window {run_id} runs")
        if holding:
            await until(lambda: self.holder() == f"sync/{run_id}", f"window {run_id} holds the lease")
        return run_id

    async def running(self, run_id: str) -> bool:
        run = await self.site.flow_run(run_id)
        return run["state"]["type"] == "RUNNING" and flow_run_pid(run) is not None

    async def scenario(self, number: int, waiting: bool, agent: int, status: str) -> dict[str, Any]:
        stopped = await self.window(holding=True)
        successor = await self.window(holding=False) if waiting else None
        sf, cx = self.center.stack.salesforce, self.center.stack.cxone
        user = sf.user_by_username(f"agent{agent}@example.com").id
        cx_id = int(cx.tenant.find_agent(f"agent{agent}@example.com")["agentId"])
        await until(lambda: sf.current_presence(user) is not None, "the window aligned the agent")
        pid = flow_run_pid(await self.site.flow_run(stopped))
        started = time.monotonic()
        os.kill(pid, number)  # type: ignore[arg-type]
        sf.set_presence(user, status)
        await until(lambda: cx.tenant.state(cx_id)["outStateDescription"] == CXONE_SHOWS[status], "the change reached CXone")
        recovered = time.monotonic() - started
        final = "CANCELLED" if number == signal.SIGTERM else "CRASHED"
        await until(lambda: self._ended(stopped, final), f"the stopped window ended {final}")
        took_over = True
        if successor is not None:
            try:
                await until(lambda: self.holder() == f"sync/{successor}", "the waiting window took the lease over")
            except SiteError:
                took_over = False
        return {"seconds": recovered, "ended": final, "took_over": took_over}

    async def _ended(self, run_id: str, state: str) -> bool:
        return await self.state(run_id) == state

    async def stop_all(self) -> None:
        """SIGTERM every window running (between scenarios: each starts from a free lease), until none is."""
        signalled: set[str] = set()

        async def none_running() -> bool:
            runs = await self.site.flow_runs("sync")
            for run in runs:
                if run["state"]["type"] == "RUNNING" and run["id"] not in signalled and (pid := flow_run_pid(run)):
                    os.kill(pid, signal.SIGTERM)
                    signalled.add(run["id"])
            active = any(run["state"]["type"] in ("RUNNING", "PENDING", "SCHEDULED") for run in runs)
            return not active and self.holder() is None

        await until(none_running, "every window stopped")


async def run(agents: int | None = None, quick: bool = False, **_: Any) -> Report:
    agents = agents or (200 if quick else 2000)
    ttl = lease_ttl_seconds(INTERVAL_SECONDS)
    report = Report("recovery", "agents unsynced after a sync window is stopped (kill -9 vs SIGTERM)",
                    params={"agents": agents, "interval_s": INTERVAL_SECONDS, "lease_ttl_s": ttl})
    load_before = os.getloadavg()
    started = time.monotonic()
    rows, results = [], []
    folder = Path(tempfile.mkdtemp(prefix="presence-sync-recovery-"))
    async with onboarded_center(agents, workdir=folder / "center") as center:
        env = {"PRESENCE_SYNC_HOME": str(PROJECT_ROOT), "PRESENCE_SYNC_CONFIG": str(center.config_path)}
        try:
            async with prefect_site(folder / "prefect") as site:
                await site.prefect("work-pool", "create", "presence-sync", "--type", "process")
                await site.prefect("--no-prompt", "deploy", "--all", "--prefect-file", str(deployment_yaml(folder)),
                                   cwd=PROJECT_ROOT, env=env)
                await site.start_worker("worker-1", env=env)
                recovery = Recovery(center, site)
                for index, (label, number, waiting) in enumerate(SCENARIOS):
                    agent = [i for i in range(1, agents) if i % 10 != 0][index]
                    result = await recovery.scenario(number, waiting, agent, STATUSES[index % 2])
                    await recovery.stop_all()
                    results.append((label, number, waiting, result))
                    rows.append([label, round(result["seconds"], 2), round(result["seconds"] / ttl, 2), result["ended"]])
                    report.figure(f"{signal.Signals(number).name.lower()}_{'waiting' if waiting else 'trigger'}_s",
                                  round(result["seconds"], 3), "s")
                worker_log = site.worker_log("worker-1")
        except SiteError as error:
            raise BenchError(str(error)) from None
    load_after = os.getloadavg()
    report.params["load_before"] = "/".join(f"{x:.2f}" for x in load_before)
    report.params["load_after"] = "/".join(f"{x:.2f}" for x in load_after)
    report.table(f"from the stop to the next tick that writes (baseline: the lease lifetime, {ttl:g} s)",
                 ["scenario", "seconds", "× lease lifetime", "stopped run"], rows)
    report.figure("lease_ttl_s", ttl, "s")
    clean = results[0][3]["seconds"]
    crash = max(result["seconds"] for _, number, _, result in results if number == signal.SIGKILL)
    report.target(f"a clean stop hands over within half the lease lifetime ({ttl / 2:g} s)", clean <= ttl / 2, f"{clean:.2f} s")
    report.target(f"after kill -9, agents sync again within the lease lifetime + {TARGET_CRASH_EXTRA_SECONDS:g} s",
                  crash <= ttl + TARGET_CRASH_EXTRA_SECONDS, f"slowest {crash:.2f} s")
    report.check("SIGTERM ends the run Cancelled, SIGKILL Crashed",
                 all(result["ended"] == ("CANCELLED" if number == signal.SIGTERM else "CRASHED")
                     for _, number, _, result in results))
    report.check("the waiting window takes the lease over", all(result["took_over"] for *_, result in results))
    report.check("no traceback in the worker's output (clean stops)", "Traceback" not in worker_log)
    report.note("before this change a replacement started by hand spent 20-26 s starting a temporary Prefect "
                "server before its first tick, plus the lease lifetime")
    report.seconds = time.monotonic() - started
    return report
