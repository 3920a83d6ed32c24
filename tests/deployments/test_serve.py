"""`presence-sync serve` reads prefect.yaml's deployments and builds the same ones locally."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from presence_sync.deployments.serve import (
    PROJECT_ROOT,
    ServeError,
    read_deployments,
    runner_deployments,
    serve_now,
    starts_at_serve,
    to_schedule,
)
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import write_emulator_config

PREFECT_YAML = """
name: presence-sync
deployments:
  - name: onboard
    entrypoint: flows/onboard.py:onboard
    description: Set up presence sync from a config.
    parameters: {config_path: examples/demo-contact-center.yaml}
    tags: [presence-sync]
  - name: refresh-users
    entrypoint: flows/refresh_users.py:refresh_users
    parameters: {config_path: examples/demo-contact-center.yaml}
    schedules:
      - cron: "*/30 * * * *"
        timezone: UTC
      - interval: 600
    concurrency_limit: 1
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prefect.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_every_deployment_with_its_settings(tmp_path: Path) -> None:
    specs = read_deployments(write(tmp_path, PREFECT_YAML))
    assert [spec.name for spec in specs] == ["onboard", "refresh-users"]
    onboard, refresh = specs
    assert onboard.parameters == {"config_path": "examples/demo-contact-center.yaml"}
    assert onboard.schedules == () and onboard.tags == ("presence-sync",)
    assert refresh.concurrency_limit == 1 and len(refresh.schedules) == 2


def test_builds_runner_deployments_from_the_project_flows(tmp_path: Path) -> None:
    built = runner_deployments(read_deployments(write(tmp_path, PREFECT_YAML)), PROJECT_ROOT)
    by_name = {deployment.name: deployment for deployment in built}
    assert set(by_name) == {"onboard", "refresh-users"}
    refresh = by_name["refresh-users"]
    assert refresh.parameters == {"config_path": "examples/demo-contact-center.yaml"}
    assert len(refresh.schedules) == 2
    assert refresh.entrypoint.endswith("flows/refresh_users.py:refresh_users")
    assert by_name["onboard"].description == "Set up presence sync from a config."


def test_schedules_become_prefect_schedules() -> None:
    assert to_schedule({"cron": "0 * * * *", "timezone": "UTC"}, "x").cron == "0 * * * *"
    assert to_schedule({"interval": 600}, "x").interval == timedelta(seconds=600)
    with pytest.raises(ServeError, match="cron:, interval:"):
        to_schedule({"every": "day"}, "sync")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\n", "declares no deployments"),
        ("deployments:\n  - name: sync\n", r"needs entrypoint: <file>\.py:<flow function>"),
        ("deployments:\n  - entrypoint: flows/sync.py:sync\n", "has no name"),
        ("deployments: [\n", "not valid YAML"),
        ("deployments:\n  - {name: a, entrypoint: 'a.py:a', schedules: daily}\n", "schedules must be a list"),
    ],
)
def test_a_broken_prefect_yaml_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ServeError, match=message):
        read_deployments(write(tmp_path, text))


def test_a_missing_file_or_flow_is_named(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="not found"):
        read_deployments(tmp_path / "prefect.yaml")
    specs = read_deployments(write(tmp_path, "deployments:\n  - {name: gone, entrypoint: 'flows/gone.py:gone'}\n"))
    with pytest.raises(ServeError, match="gone.py does not exist"):
        runner_deployments(specs, PROJECT_ROOT)


SERVED_SYNC = """
deployments:
  - name: sync
    entrypoint: flows/sync.py:sync
    parameters: {config_path: "{{ $PRESENCE_SYNC_CONFIG }}", seconds: 3, interval_seconds: 0.5}
    schedules:
      - interval: 600
    triggers:
      - {enabled: true, expect: [prefect.flow-run.Crashed], match_related: {prefect.resource.name: sync}}
  - name: onboard
    entrypoint: flows/onboard.py:onboard
    parameters: {config_path: "{{ $PRESENCE_SYNC_CONFIG }}"}
"""


@pytest.mark.prefect
async def test_serving_starts_the_first_sync_window_at_once_not_an_interval_later(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client

    with EmulatorStack.serve(agents=4, seed=2) as stack:
        config_path = await write_emulator_config(stack, tmp_path / "presence-sync.yaml")
        monkeypatch.setenv("PRESENCE_SYNC_CONFIG", str(config_path))
        specs = read_deployments(write(tmp_path, SERVED_SYNC))
        assert [spec.name for spec in specs if starts_at_serve(spec)] == ["sync"]
        deployments = await asyncio.to_thread(runner_deployments, specs, PROJECT_ROOT)
        monkeypatch.chdir(PROJECT_ROOT)
        # run_once: the runner executes the runs due now, then returns (the schedule's first is 600 s away).
        await serve_now(deployments, ["sync"], run_once=True, query_seconds=1)
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("sync/sync")
            runs = [run for run in await client.read_flow_runs() if run.deployment_id == deployment.id]
            automations = await client.read_automations()
    # The schedule's own grid may happen to fall due during the test too: only the run serve started counts.
    started = [run for run in runs if run.tags == ["serve-start"]]
    assert [run.state.type.value for run in started] == ["COMPLETED"]
    assert "ticks" in (started[0].state.message or "")
    assert any("prefect.flow-run.Crashed" in automation.trigger.expect for automation in automations)
