"""Every deployment of the project's prefect.yaml, run the way a worker runs it.

The deployments are built from prefect.yaml (`deployments.serve`), registered with the Prefect test
harness, given flow runs with the parameters an operator would type into the UI's form, and executed
by a Prefect `Runner`: each flow run in a subprocess of its own that loads the flow from its
entrypoint, against the emulators on loopback. Schedules are left out (the scheduler must not add
runs of its own); `test_serve.py` checks them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.runner import Runner
from prefect.states import Cancelling, Scheduled
from prefect.types._datetime import now as prefect_now

from presence_sync.deployments.serve import PREFECT_YAML, PROJECT_ROOT, ServeError, read_deployments, runner_deployments
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import load_config, write_emulator_config
from presence_sync.tasks.sync.status import sync_activity
from presence_sync.tasks.context import open_store

AGENTS = 6
TEST_AGENT = "agent1@example.com"
SET_AGENT = "agent2@example.com"


async def run_deployments(deployments: dict[str, Any], runs: list[tuple[str, dict[str, Any], float]]) -> dict[str, Any]:
    """Start a flow run of each (deployment, parameters, delay in seconds) and let a Runner execute them
    (in subprocesses, concurrently); returns the finished flow runs by deployment name."""
    runner = Runner(name="presence-sync-test", query_seconds=1, prefetch_seconds=30)
    ids = {}
    for name in {name for name, _, _ in runs}:
        ids[name] = await runner.aadd_deployment(deployments[name])
    async with get_client() as client:
        started = {}
        for name, parameters, delay in runs:
            state = Scheduled(scheduled_time=prefect_now("UTC") + timedelta(seconds=delay))
            flow_run = await client.create_flow_run_from_deployment(ids[name], parameters=parameters, state=state)
            started[name] = flow_run.id
        await runner.start(run_once=True)
        return {name: await client.read_flow_run(run_id) for name, run_id in started.items()}


@pytest.mark.prefect
async def test_every_deployment_runs_from_its_entrypoint_in_a_worker_subprocess(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorStack.serve(agents=AGENTS, seed=5) as stack:
        config_path = await write_emulator_config(stack, tmp_path / "presence-sync.yaml")
        monkeypatch.setenv("PRESENCE_SYNC_CONFIG", str(config_path))
        monkeypatch.chdir(PROJECT_ROOT)
        specs = read_deployments(PREFECT_YAML)
        assert {spec.name for spec in specs} == {"onboard", "refresh-users", "sync", "reconcile", "validate", "set"}
        assert all(spec.parameters["config_path"] == str(config_path) for spec in specs)
        deployments = {}
        for deployment in await asyncio.to_thread(runner_deployments, specs):  # sync API: no loop there
            deployment.schedules = []
            deployments[deployment.name] = deployment

        onboarded = await run_deployments(deployments, [("onboard", {"plan": False}, 0)])
        assert onboarded["onboard"].state.is_completed(), onboarded["onboard"].state.message
        assert stack.salesforce.current_presence(stack.salesforce.user_by_username(TEST_AGENT).id) is None

        # A sync window runs; once it holds the lease, validate proves both hops for the test agent,
        # a supervisor sets another agent, reconcile asks the window for a pass, and refresh-users
        # re-links the agents.
        store = open_store(load_config(config_path))
        try:
            # The window outlasts what runs beside it, however slowly their processes start; then it is
            # cancelled as from the UI (the runner sends its process SIGTERM) and ends Cancelled, its lease free.
            window = asyncio.create_task(
                run_deployments(deployments, [("sync", {"seconds": 900, "interval_seconds": 0.5}, 0)])
            )
            assert await until(lambda: (sync_activity(store).holder or "").startswith("sync/"), timeout=60, unless=window)
            sync_run_id = (sync_activity(store).holder or "").removeprefix("sync/")
            beside = await run_deployments(
                deployments,
                [
                    ("validate", {"agent": TEST_AGENT, "timeout_seconds": 10}, 0),
                    ("set", {"agent": SET_AGENT, "salesforce_status": "Lunch", "timeout_seconds": 20}, 0),
                    ("reconcile", {}, 0),
                    ("refresh-users", {}, 0),
                ],
            )
            async with get_client() as client:  # the UI's Cancel: the runner sends the run's process SIGTERM
                await client.set_flow_run_state(UUID(sync_run_id), Cancelling())
            stopped = (await window)["sync"]
            assert stopped.state.is_cancelled(), stopped.state  # our message, or the runner's own once it saw the exit
            assert sync_activity(store).holder is None  # handed over at once
            finished = beside
            for name, flow_run in finished.items():
                assert flow_run.state.is_completed(), f"{name}: {flow_run.state.name}: {flow_run.state.message}"
            assert "passed" in (finished["validate"].state.message or "")
            assert "both systems agree" in (finished["set"].state.message or "")
            set_agent_id = stack.cxone.tenant.find_agent(SET_AGENT)["agentId"]
            assert stack.cxone.tenant.state(set_agent_id)["outStateDescription"] == "Lunch"
            assert "reconciled" in (finished["reconcile"].state.message or "")
            assert len(store.setup.load_links()) == AGENTS - AGENTS // 50
        finally:
            store.close()


async def until(check: Callable[[], bool], *, timeout: float, unless: asyncio.Task[Any]) -> bool:
    """Wait for `check` (polling) while `unless` still runs."""
    for _ in range(int(timeout * 10)):
        if check():
            return True
        if unless.done():
            await unless  # its error, if it failed
            return check()
        await asyncio.sleep(0.1)
    return False


def test_a_placeholder_whose_variable_is_not_set_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRESENCE_SYNC_CONFIG", raising=False)
    with pytest.raises(ServeError, match=r"PRESENCE_SYNC_CONFIG is not set; export PRESENCE_SYNC_CONFIG="):
        read_deployments(PREFECT_YAML)
