"""The `sync` and `reconcile` flows under Prefect, the `sync` command, and a loopback smoke test."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from typer.testing import CliRunner

from presence_sync.cli.main import app
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.engine import Shard
from presence_sync.flows.reconcile import reconcile
from presence_sync.flows.sync import sync
from presence_sync.models.config import load_config, write_emulator_config
from presence_sync.tasks.context import open_context, routed
from presence_sync.tasks.onboarding import run_steps
from presence_sync.tasks.sync.runner import ReconcileReport
from presence_sync.tasks.sync.window import WindowResult, run_window
from tests.sync.support import AGENTS, World, onboarded_world


async def artifact_keys(*keys: str) -> set[str]:
    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys))))
    return {artifact.key for artifact in found if artifact.key}


@pytest.mark.prefect
async def test_the_sync_flow_runs_a_short_window_and_publishes_its_summary(prefect_harness: None, tmp_path: Path) -> None:
    world = await onboarded_world(tmp_path)
    with routed(world.config_path, world.transports()):
        state = await sync(str(world.config_path), seconds=2, interval_seconds=0.25, return_state=True)
        assert state.is_completed(), state.message
        result = await state.result()
        assert isinstance(result, WindowResult) and result.held_lease
        assert result.stats.ticks >= 2
        assert world.writes() == Counter(salesforce=AGENTS)
        assert all(world.sf(i) == "Available_for_Chats" for i in range(1, AGENTS + 1))
        assert "ticks" in (state.message or "")

        # A shard's window (the shard count changes from 1 to 2): its agents' memory carries over.
        sharded = await sync(str(world.config_path), seconds=1, interval_seconds=0.25, shard="2/2", return_state=True)
        assert sharded.is_completed(), sharded.message
        assert (await sharded.result()).shard == Shard(2, 2) and (sharded.message or "").startswith("shard 2/2: ")
        assert world.writes() == Counter(salesforce=AGENTS)

        world.pick_cx(1, "Unavailable", "Break")  # agent 1 is in shard 2/2; the reconcile covers both shards
        reconciled = await reconcile(str(world.config_path), return_state=True)
        assert reconciled.is_completed(), reconciled.message
        report = await reconciled.result()
        assert isinstance(report, ReconcileReport)
        assert [(r.target, r.result) for r in report.repairs] == [("On_Break", "ok")]
        assert report.agents_checked == AGENTS and "(shard 1/2)" in report.held_by and "(shard 2/2)" in report.held_by
    # One markdown artifact per report, its table inside; runs named for what they do.
    assert await artifact_keys("sync-window", "sync-window-summary", "reconcile", "reconcile-summary") == {
        "sync-window", "reconcile"
    }
    async with get_client() as client:
        # This test's own (other tests in this worker's Prefect API publish the same keys).
        [window], [repairs] = [
            [a for a in await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
             if a.flow_run_id == run.state_details.flow_run_id]
            for key, run in (("sync-window", state), ("reconcile", reconciled))
        ]
        names = [(await client.read_flow_run(s.state_details.flow_run_id)).name for s in (state, reconciled, sharded)]
    assert window.type == "markdown" and "| writes (incl. retries) |" in window.data
    assert repairs.type == "markdown" and "| agent | system | was | set to | rule row | result |" in repairs.data
    assert re.fullmatch(r"sync-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", names[0]), names
    assert names[1] == f"reconcile-{world.config_path.parent.name}", names
    assert re.fullmatch(r"sync 2/2-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", names[2]), names


@pytest.mark.prefect
async def test_the_sync_flow_fails_plainly_on_a_config_mistake(prefect_harness: None, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("salesforce: {}\n", encoding="utf-8")
    state = await sync(str(broken), seconds=1, return_state=True)
    assert state.is_failed()
    assert "problem" in (state.message or "") and "Traceback" not in (state.message or "")
    wrong_shard = await sync(str(broken), seconds=1, shard="3/2", return_state=True)
    assert wrong_shard.is_failed() and "shard 3/2 does not exist" in (wrong_shard.message or "")


@pytest.mark.prefect
def test_the_sync_command_runs_the_flow_in_the_foreground(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from presence_sync.cli import sync as cli_sync

    monkeypatch.setattr(cli_sync.console, "width", 200)
    world: World = asyncio.run(onboarded_world(tmp_path))
    with routed(world.config_path, world.transports()):
        result = CliRunner().invoke(app, ["sync", str(world.config_path), "--seconds", "1.5"])
    assert result.exit_code == 0, result.output
    assert "writes (incl. retries)" in result.output and "CXone → Salesforce" in result.output
    assert world.writes() == Counter(salesforce=AGENTS)


@pytest.mark.prefect
@pytest.mark.parametrize("command", ["sync", "validate"])
def test_a_wrong_consumer_secret_exits_2_with_one_clean_error(
    prefect_harness: None, tmp_path: Path, command: str, capfd: pytest.CaptureFixture[str]
) -> None:
    # The README: 2 is a problem to fix in the config, credentials or org settings; sync and validate
    # say so alike (onboard too: tests/onboarding/test_onboard_cli.py).
    world: World = asyncio.run(onboarded_world(tmp_path))

    def wrong_secret(data: dict) -> None:
        data["salesforce"]["auth"]["client_secret"] = "not-the-secret"

    config = str(world.variant(wrong_secret))
    arguments = {"sync": ["sync", config, "--seconds", "5"], "validate": ["validate", config, "--agent", "agent1@example.com"]}
    with routed(config, world.transports()):
        result = CliRunner().invoke(app, arguments[command], env={"COLUMNS": "200"})
    printed = result.output + "".join(capfd.readouterr())

    assert result.exit_code == 2, printed
    assert printed.count("The consumer secret (client_secret) is wrong") == 1, printed
    assert "Traceback" not in printed and "Finished in state" not in printed


async def test_a_window_over_real_loopback_http_carries_changes_both_ways(tmp_path: Path) -> None:
    with EmulatorStack.serve(agents=AGENTS) as stack:
        config = load_config(await write_emulator_config(stack, tmp_path / "presence-sync.yaml"))
        async with open_context(config) as ctx:
            assert (await run_steps(ctx)).succeeded
            first = await run_window(ctx, seconds=1.5, holder="loopback-1", interval_seconds=0.2)
            user = stack.salesforce.user_by_username("agent2@example.com")
            stack.salesforce.set_presence(user.id, "Lunch")
            stack.cxone.tenant.set_state(1_000_001, "Unavailable", "Break")
            second = await run_window(ctx, seconds=2.5, holder="loopback-2", interval_seconds=0.2)
        assert first.held_lease and second.held_lease
        assert stack.salesforce.current_presence(stack.salesforce.user_by_username("agent1@example.com").id) == "On_Break"
        assert stack.cxone.tenant.state(1_000_002)["outStateDescription"] == "Lunch"
        assert stack.salesforce.applier.published == AGENTS + 1  # the first sight of everyone, then agent 1
