"""Running the steps in the seed's order: plan, apply, record; a failed step skips its dependants.

Plain async, no Prefect: the `onboard` flow passes an executor that runs each step as a Prefect task.

    async with open_context("presence-sync.yaml") as ctx:
        report = await run_steps(ctx, plan_only=True)
        [result.outcome for result in report.results]      # [PLANNED, PLANNED, UNCHANGED, ...]
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from presence_sync.connectors import ConnectorError
from presence_sync.models.config import ConfigError
from presence_sync.models.store import OnboardingStep, Store, StoreError
from presence_sync.tasks.context import Context
from presence_sync.tasks.onboarding.account_mapping import apply_account_mapping, plan_account_mapping
from presence_sync.tasks.onboarding.connected_app import apply_check, plan_connected_app
from presence_sync.tasks.onboarding.cxone_users import apply_cxone_users, plan_cxone_users
from presence_sync.tasks.onboarding.model import Action, FailureKind, OnboardingReport, StepName, StepPlan, StepResult, Upcoming
from presence_sync.tasks.onboarding.oauth_flow import plan_oauth_flow
from presence_sync.tasks.onboarding.presence_rule import apply_presence_rule, plan_presence_rule
from presence_sync.tasks.onboarding.presence_statuses import apply_presence_statuses, plan_presence_statuses
from presence_sync.tasks.onboarding.profile_access import apply_profile_access, plan_profile_access

USER_ERRORS: tuple[type[Exception], ...] = (ConnectorError, StoreError, ConfigError)
"""Failures whose message tells an admin what to fix (as opposed to bugs)."""

_STORED_ITEMS = 100  # per step in the store's `details`; the counts cover the rest


@dataclass(frozen=True)
class StepDefinition:
    name: StepName
    plan: Callable[[Context, Upcoming], Awaitable[StepPlan]]
    apply: Callable[[Context, Any], Awaitable[StepResult]]
    depends_on: tuple[StepName, ...] = ()


STEPS: tuple[StepDefinition, ...] = (
    StepDefinition(StepName.PRESENCE_STATUSES, plan_presence_statuses, apply_presence_statuses),
    StepDefinition(StepName.PROFILE_ACCESS, plan_profile_access, apply_profile_access, (StepName.PRESENCE_STATUSES,)),
    StepDefinition(StepName.CONNECTED_APP, plan_connected_app, apply_check),
    StepDefinition(StepName.OAUTH_FLOW, plan_oauth_flow, apply_check, (StepName.CONNECTED_APP,)),
    StepDefinition(StepName.ACCOUNT_MAPPING, plan_account_mapping, apply_account_mapping, (StepName.OAUTH_FLOW,)),
    StepDefinition(StepName.CXONE_USERS, plan_cxone_users, apply_cxone_users, (StepName.ACCOUNT_MAPPING,)),
    StepDefinition(
        StepName.PRESENCE_RULE,
        plan_presence_rule,
        apply_presence_rule,
        (StepName.PRESENCE_STATUSES, StepName.ACCOUNT_MAPPING),
    ),
)
STEP_BY_NAME = {definition.name: definition for definition in STEPS}

StepExecutor = Callable[[Context, StepName, bool, Upcoming], Awaitable[StepResult]]
"""Runs one step: (ctx, step, plan_only, upcoming) -> its result, failures included."""

ResultListener = Callable[[StepResult, int, int], Awaitable[None]]
"""Told about each result as it comes: (result, steps done, steps in the run)."""


async def execute_step(ctx: Context, step: StepName, *, plan_only: bool, upcoming: Upcoming) -> StepResult:
    """Plan one step and, unless `plan_only`, apply its plan. Errors propagate."""
    definition = STEP_BY_NAME[step]
    plan = await definition.plan(ctx, upcoming)
    return plan.preview() if plan_only else await definition.apply(ctx, plan)


def failure_of(step: StepName, error: BaseException) -> StepResult:
    """The failed result for an error that ended a step."""
    if isinstance(error, ConnectorError) and error.transient:
        reason = f"{error} (still failing after retries: run onboarding again once {error.system} answers)"
        return StepResult.failure(step, reason, FailureKind.TRANSIENT)
    if isinstance(error, USER_ERRORS):
        return StepResult.failure(step, str(error), FailureKind.TO_FIX)
    reason = (
        f"unexpected error ({type(error).__name__}: {error}) -> this is a presence-sync bug: please report it "
        "with this run's logs"
    )
    return StepResult.failure(step, reason, FailureKind.BUG)


async def execute_plainly(ctx: Context, step: StepName, plan_only: bool, upcoming: Upcoming) -> StepResult:
    """The executor without Prefect: any error becomes the step's failed result."""
    try:
        return await execute_step(ctx, step, plan_only=plan_only, upcoming=upcoming)
    except Exception as error:  # every failure is reported as the step's outcome, never lost
        return failure_of(step, error)


async def run_steps(
    ctx: Context,
    steps: Sequence[StepName] = tuple(StepName),
    *,
    plan_only: bool = False,
    run_id: str | None = None,
    execute: StepExecutor = execute_plainly,
    on_result: ResultListener | None = None,
) -> OnboardingReport:
    """Run `steps` in the seed's order and record each outcome (except in a plan run, which writes nothing).

    A step whose dependency failed (or was skipped) is skipped with the root cause; dependencies
    outside `steps` count as done (e.g. `refresh-users` runs cxone-users alone).
    """
    run_id = run_id or uuid.uuid4().hex
    ordered = [definition.name for definition in STEPS if definition.name in steps]
    blocked: dict[StepName, tuple[StepName, str]] = {}
    results: list[StepResult] = []
    for done, step in enumerate(ordered, start=1):
        causes = [blocked[dependency] for dependency in STEP_BY_NAME[step].depends_on if dependency in blocked]
        cause = causes[0] if causes else None
        if cause is not None:
            result = StepResult.skipped(step, *cause)
            blocked[step] = cause
        else:
            upcoming = {earlier.step: earlier for earlier in results} if plan_only else {}
            result = await execute(ctx, step, plan_only, upcoming)
            if result.failed:
                blocked[step] = (step, result.reason)
        if not plan_only:
            await asyncio.to_thread(record_step, ctx.store, run_id, result)
        results.append(result)
        if on_result is not None:
            await on_result(result, done, len(ordered))
    return OnboardingReport(run_id=run_id, plan_only=plan_only, results=tuple(results))


def record_step(store: Store, run_id: str, result: StepResult) -> OnboardingStep:
    """Record one step's outcome (no secrets: item texts are the connectors' redacted messages)."""
    shown = [item for item in result.items if item.action is not Action.UNCHANGED][:_STORED_ITEMS]
    details = {
        "counts": result.counts(),
        "items": [{"subject": i.subject, "action": i.action.value, "reason": i.reason} for i in shown],
        "notes": list(result.notes[:_STORED_ITEMS]),
    }
    step = OnboardingStep(
        run_id=run_id, step=result.step.value, outcome=result.outcome, summary=result.summary, details=details
    )
    return store.setup.record_step(step)
