"""Flow-run names that say what a run does, for the Prefect UI's run list (Prefect's default is random).

    @flow(name="onboard", flow_run_name=onboard_run_name)   # "onboard-acme-center", "onboard-acme-center-plan"

Each is called by Prefect inside the run, with nothing passed: it reads the run's parameters from
`prefect.runtime`. The contact center is named by its config file ("acme-center.yaml" -> "acme-center"),
or by its folder when the file has a generic name ("centers/acme/presence-sync.yaml" -> "acme").
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from prefect.runtime import flow_run

_GENERIC_STEMS = frozenset({"presence-sync", "config", "configuration", "settings"})


def center_name(config_path: str) -> str:
    """The contact center's short name, from its config file's path."""
    path = PurePath(config_path)
    stem = path.stem
    if stem.lower() in _GENERIC_STEMS and path.parent.name:
        return path.parent.name
    return stem or "config"


def onboard_run_name() -> str:
    return _with_plan(f"onboard-{center_name(_parameter('config_path'))}")


def refresh_users_run_name() -> str:
    return _with_plan(f"refresh-users-{center_name(_parameter('config_path'))}")


def sync_run_name() -> str:
    """`sync-<window start>`, e.g. `sync-2026-12-04T12:50:03Z` (scheduled start, else now; UTC); a shard's
    says which: `sync 2/3-2026-12-04T12:50:03Z`."""
    start = flow_run.scheduled_start_time or datetime.now(UTC)
    return f"sync{_shard()}-{start.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def reconcile_run_name() -> str:
    return f"reconcile{_shard()}-{center_name(_parameter('config_path'))}"


def validate_run_name() -> str:
    return f"validate-{_parameter('agent') or 'agent'}"


def demo_run_name() -> str:
    return f"demo-{_parameter('agents') or ''}-agents-seed-{_parameter('seed') or 0}"


def _parameter(name: str) -> Any:
    return (flow_run.parameters or {}).get(name) or ""


def _shard() -> str:
    """" 2/3" for a shard's run; "" for the unsharded sync (and a shard the flow will refuse anyway)."""
    text = str(_parameter("shard")).strip()
    return f" {text.replace(' ', '')}" if text and text.replace(" ", "") != "1/1" else ""


def _with_plan(name: str) -> str:
    return f"{name}-plan" if _parameter("plan") else name
