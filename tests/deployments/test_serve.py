"""`presence-sync serve` reads prefect.yaml's deployments and builds the same ones locally."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from presence_sync.deployments.serve import PROJECT_ROOT, ServeError, read_deployments, runner_deployments, to_schedule

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
