"""The `onboard` flow: every step of the seed procedure, in its order, idempotent, with a plan mode.

    report = await onboard("presence-sync.yaml", plan=True)    # what would change; writes nothing

While it runs, a progress artifact moves step by step; at the end one markdown artifact holds the
report: every step's outcome (a table), its changes and what still needs a human (`onboarding-outcome`,
or `onboarding-plan` for a plan). When a step failed, the run ends Failed
and calling the flow raises `OnboardingIncomplete`, whose `report` has every step's result.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact, acreate_progress_artifact, aupdate_progress_artifact
from prefect.runtime import flow_run
from prefect.states import Failed, State

from presence_sync.flows.run_names import onboard_run_name
from presence_sync.models.config import ConfigError, load_config
from presence_sync.models.secrets import preload_prefect_secrets
from presence_sync.models.store import StoreError
from presence_sync.tasks.context import open_context, transports_for
from presence_sync.tasks.onboarding import OnboardingIncomplete, OnboardingReport, StepName, StepResult, run_steps
from presence_sync.flows.onboard_tasks import execute_as_task
from presence_sync.tasks.onboarding.report import markdown_summary, title


@flow(name="onboard", flow_run_name=onboard_run_name)
async def onboard(config_path: str, plan: bool = False) -> OnboardingReport:
    """Set up presence sync as the config describes: statuses, profile access, login checks, account
    mapping, agent links and the presence rule. With `plan`, only say what would change.

    Args:
        config_path: the contact center's config file (YAML), as the worker sees it.
        plan: true to list what each step would change without changing anything.
    """
    return await run_onboarding(config_path, plan=plan, steps=tuple(StepName), artifact_key="onboarding")


async def run_onboarding(
    config_path: str, *, plan: bool, steps: Sequence[StepName], artifact_key: str, what: str = "Onboarding"
) -> Any:
    """The body both onboarding flows share: the report, or a Failed state carrying the reason.

    A config or store problem ends the run Failed with its message (no traceback: it is the admin's to fix).
    """
    try:
        config = load_config(config_path)
        preload_prefect_secrets(config)
        async with open_context(config, transports_for(config_path)) as ctx:
            progress = await acreate_progress_artifact(
                0.0, key=f"{artifact_key}-progress", description=f"{what}: starting"
            )

            async def show_progress(result: StepResult, done: int, total: int) -> None:
                description = f"{what}: {result.step} {result.outcome.value} ({done} of {total})"
                await aupdate_progress_artifact(progress, 100.0 * done / total, description=description)

            report = await run_steps(
                ctx, steps, plan_only=plan, run_id=_run_id(), execute=execute_as_task, on_result=show_progress
            )
    except (ConfigError, StoreError) as error:
        return Failed(message=str(error), data=error)
    await _publish(report, artifact_key, what)
    return report if report.succeeded else _incomplete(report)


async def _publish(report: OnboardingReport, artifact_key: str, what: str) -> None:
    kind = "plan" if report.plan_only else "outcome"
    await acreate_markdown_artifact(
        markdown_summary(report, what), key=f"{artifact_key}-{kind}", description=title(report, what)
    )


def _incomplete(report: OnboardingReport) -> State[Any]:
    incomplete = OnboardingIncomplete(report)
    return Failed(message=str(incomplete), data=incomplete)


def _run_id() -> str:
    return str(flow_run.id or uuid.uuid4())
