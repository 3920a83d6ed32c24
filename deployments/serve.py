"""Serve every deployment of `prefect.yaml` from this process (`presence-sync serve`).

The deployments are read from the same `prefect.yaml` that `prefect deploy` uses, so the local serve
and a work-pool setup never drift apart: same entrypoints, parameters, schedules and concurrency limits
(work pools and pull steps are ignored: served flows run here, from this checkout).

    specs = read_deployments(Path("prefect.yaml"))
    serve_deployments(specs)          # blocks; the first sync window starts now; the UI can trigger onboard
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"
SYNC_ENTRYPOINT = "flows/sync.py:sync"
_PLACEHOLDER = re.compile(r"\{\{\s*\$(\w+)\s*\}\}")


class ServeError(Exception):
    """prefect.yaml can't be served as it is; the message names the deployment and the fix."""


@dataclass(frozen=True)
class DeploymentSpec:
    """One `deployments:` entry of prefect.yaml, as far as serving it locally needs."""

    name: str
    entrypoint: str
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[dict[str, Any], ...] = ()
    concurrency_limit: int | dict[str, Any] | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    paused: bool | None = None
    triggers: tuple[dict[str, Any], ...] = ()

    @property
    def flow_file(self) -> str:
        return self.entrypoint.partition(":")[0]


def read_deployments(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    """The deployments declared in `path`; raises ServeError naming what is wrong.

    Example:
        [spec.entrypoint for spec in read_deployments()]   # ['flows/onboard.py:onboard', ...]
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ServeError(f"{path} not found: run `presence-sync serve` from the project's folder, or pass --prefect-yaml") from None
    except yaml.YAMLError as error:
        raise ServeError(f"{path} is not valid YAML: {error}") from None
    entries = (document or {}).get("deployments") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ServeError(f"{path} declares no deployments: add a `deployments:` list (see deployments/README.md)")
    return [_spec(entry, index, path) for index, entry in enumerate(entries)]


def _spec(entry: Any, index: int, path: Path) -> DeploymentSpec:
    where = f"{path.name}: deployments[{index}]"
    if not isinstance(entry, dict):
        raise ServeError(f"{where} is not a mapping; give it name: and entrypoint:")
    name, entrypoint = entry.get("name"), entry.get("entrypoint")
    if not isinstance(name, str) or not name:
        raise ServeError(f"{where} has no name:")
    if not isinstance(entrypoint, str) or ":" not in entrypoint:
        raise ServeError(f"{where} ({name}) needs entrypoint: <file>.py:<flow function>, e.g. flows/validate.py:validate")
    schedules = entry.get("schedules") or []
    if not isinstance(schedules, list) or not all(isinstance(s, dict) for s in schedules):
        raise ServeError(f"{where} ({name}): schedules must be a list of mappings (cron:, interval: or rrule:)")
    return DeploymentSpec(
        name=name,
        entrypoint=entrypoint,
        parameters=_resolve_environment(dict(entry.get("parameters") or {}), where, name),
        schedules=tuple(schedules),
        concurrency_limit=entry.get("concurrency_limit"),
        description=entry.get("description"),
        tags=tuple(entry.get("tags") or ()),
        paused=entry.get("paused"),
        triggers=tuple(entry.get("triggers") or ()),
    )


def _resolve_environment(parameters: dict[str, Any], where: str, name: str) -> dict[str, Any]:
    """`{{ $VAR }}` placeholders filled from the environment, as `prefect deploy` fills them."""
    from prefect.utilities.templating import apply_values

    resolved = apply_values(parameters, os.environ, remove_notset=False)
    for key, value in resolved.items():
        if isinstance(value, str) and (match := _PLACEHOLDER.search(value)):
            raise ServeError(
                f"{where} ({name}): parameter {key} is {value!r}, but {match.group(1)} is not set; "
                f"export {match.group(1)}=<value> (for config_path: the contact center's config file, "
                "as this process sees it) and serve again"
            )
    return resolved


def to_schedule(spec: dict[str, Any], deployment: str) -> Any:
    """A prefect.yaml schedule (`cron:`, `interval:` seconds, or `rrule:`) as a Prefect Schedule."""
    from prefect.schedules import Cron, Interval, RRule

    common = {key: spec[key] for key in ("timezone", "active", "parameters", "slug") if key in spec}
    if "cron" in spec:
        return Cron(spec["cron"], day_or=spec.get("day_or", True), **common)
    if "interval" in spec:
        anchor = spec.get("anchor_date")
        if isinstance(anchor, str):
            anchor = datetime.fromisoformat(anchor)
        return Interval(timedelta(seconds=float(spec["interval"])), anchor_date=anchor, **common)
    if "rrule" in spec:
        return RRule(spec["rrule"], **common)
    raise ServeError(f"deployment {deployment}: a schedule needs cron:, interval: (seconds) or rrule:; got {sorted(spec)}")


def _trigger(spec: Any, deployment: str) -> Any:
    """A prefect.yaml trigger (an event that runs the deployment, e.g. a crashed sync window) for serving."""
    from prefect.events import DeploymentEventTrigger
    from pydantic import ValidationError

    try:
        return DeploymentEventTrigger.model_validate(spec)
    except ValidationError as error:
        raise ServeError(f"deployment {deployment}: a trigger is not valid ({error.errors()[0]['msg']}); "
                         "see Prefect's deployment triggers (expect:, match:, match_related:)") from None


def runner_deployments(specs: list[DeploymentSpec], root: Path = PROJECT_ROOT) -> list[Any]:
    """Prefect RunnerDeployments for `specs`, loading each flow from its entrypoint under `root`."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.flows import load_flow_from_entrypoint

    built = []
    for spec in specs:
        if not (root / spec.flow_file).is_file():
            raise ServeError(f"deployment {spec.name}: {root / spec.flow_file} does not exist (entrypoint {spec.entrypoint})")
        flow = load_flow_from_entrypoint(str(root / spec.flow_file) + ":" + spec.entrypoint.partition(":")[2])
        limit = spec.concurrency_limit
        built.append(
            flow.to_deployment(
                name=spec.name,
                parameters=spec.parameters,
                schedules=[to_schedule(schedule, spec.name) for schedule in spec.schedules],
                concurrency_limit=ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else limit,
                description=spec.description,
                tags=list(spec.tags),
                paused=spec.paused,
                triggers=[_trigger(trigger, spec.name) for trigger in spec.triggers],
            )
        )
    return built


def starts_at_serve(spec: DeploymentSpec) -> bool:
    """A scheduled deployment of the sync flow: its first window starts with serving, not an interval later
    (an interval schedule's runs fall on its anchor's grid, up to a whole interval away)."""
    return spec.entrypoint == SYNC_ENTRYPOINT and bool(spec.schedules)


def serve_deployments(specs: list[DeploymentSpec], root: Path = PROJECT_ROOT) -> None:
    """Serve `specs` until interrupted (Ctrl+C pauses their schedules and stops); a run of each sync
    deployment starts at once (`starts_at_serve`).

    Works from `root`: served runs load their flow by the entrypoint, which Prefect records relative
    to the working directory, exactly as `prefect deploy` does from the project's folder.
    """
    from prefect.exceptions import TerminationSignal

    os.chdir(root)
    deployments = runner_deployments(specs, root)
    try:
        asyncio.run(serve_now(deployments, [spec.name for spec in specs if starts_at_serve(spec)]))
    except (KeyboardInterrupt, TerminationSignal):
        pass  # the runner paused the schedules on its way out


async def serve_now(deployments: list[Any], start_now: list[str], *, run_once: bool = False, **runner_options: Any) -> None:
    """Prefect's `serve` for `deployments`, plus a run of each deployment named in `start_now` right away.

    Example:
        await serve_now(runner_deployments(specs), ["sync"])   # the first sync window starts now
    """
    from prefect.client.orchestration import get_client
    from prefect.runner import Runner
    from prefect.states import Scheduled

    runner = Runner(pause_on_shutdown=True, **runner_options)
    ids = {deployment.name: await runner.aadd_deployment(deployment) for deployment in deployments}
    async with get_client() as client:
        for name in start_now:
            await client.create_flow_run_from_deployment(ids[name], state=Scheduled(), tags=["serve-start"])
    await runner.start(run_once=run_once)
