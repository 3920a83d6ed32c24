"""Helpers for the onboarding tests: config variants, one plain run, the emulators' data writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from presence_sync.emulators.faults import is_write
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import PresenceSyncConfig, load_config
from presence_sync.tasks.context import Transports, open_context
from presence_sync.tasks.onboarding import OnboardingReport, StepResult, run_steps

AGENTS = 60  # agent50 has no Salesforce user: one agent stays unlinked

ConfigChange = Callable[[dict[str, Any]], None]


def variant(config_path: Path, change: ConfigChange, name: str = "variant.yaml") -> Path:
    """A copy of the config with `change` applied to its YAML data (same folder, so the same store)."""
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    change(data)
    path = config_path.with_name(name)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def transports_of(stack: EmulatorStack) -> Transports:
    """How a context reaches `stack`: its ASGI apps when in-process, the network when served."""
    return Transports(*stack.transports())


async def onboard(config: Path | PresenceSyncConfig, stack: EmulatorStack, *, plan_only: bool = False) -> OnboardingReport:
    """One onboarding run without Prefect, against `stack`."""
    loaded = config if isinstance(config, PresenceSyncConfig) else load_config(config)
    async with open_context(loaded, transports_of(stack)) as ctx:
        return await run_steps(ctx, plan_only=plan_only)


async def data_writes(stack: EmulatorStack) -> dict[str, int]:
    """Write requests to both systems' data APIs so far, by route (token requests are not data writes)."""
    writes: dict[str, int] = {}
    for client in (stack.salesforce_http(), stack.cxone_http()):
        async with client:
            stats = (await client.get("/__emulator/stats")).json()
        mine = {route: count for route, count in stats["requests"].items() if is_write(route)}
        assert stats["write_requests"] == sum(mine.values())  # what a reviewer reads in /__emulator/stats
        writes |= mine
    return writes


def outcomes(report: OnboardingReport) -> dict[str, str]:
    return {result.step.value: result.outcome.value for result in report.results}


def result_of(report: OnboardingReport, step: str) -> StepResult:
    return next(result for result in report.results if result.step.value == step)
