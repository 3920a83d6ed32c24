"""The onboarding steps as Prefect tasks: one task per step, retried only on transient connector errors.

A retry re-plans before applying, so it never repeats a write that already happened. A step that
fails for a reason an admin must fix ends its task run Failed (with the reason, no traceback) and
returns its result to the flow; a transient failure ends each attempt Failed with a
`TransientStepFailure`, which Prefect retries and, once retries are exhausted, the flow reports.

    report = await run_steps(ctx, plan_only=plan, execute=execute_as_task)   # inside a flow
"""

from __future__ import annotations

from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import Failed, State
from prefect.tasks import exponential_backoff
from prefect.utilities.annotations import quote

from presence_sync.connectors import HostUnreachable, is_transient
from presence_sync.tasks.context import Context
from presence_sync.tasks.onboarding.model import StepName, StepResult, Upcoming
from presence_sync.tasks.onboarding.runner import USER_ERRORS, execute_step, failure_of

STEP_RETRIES = 3
STEP_RETRY_BACKOFF_SECONDS = 2.0
STEP_RETRY_JITTER = 0.5


class TransientStepFailure(Exception):
    """A step's attempt that failed transiently, as its task state's data: the failed result it would
    report, in a form that pickles (so a persisted task result reloads), marked for a retry."""

    def __init__(self, result: StepResult) -> None:
        super().__init__(result.summary)
        self.result = result

    def __reduce__(self) -> tuple[type[TransientStepFailure], tuple[StepResult]]:
        return (TransientStepFailure, (self.result,))


def retry_only_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect `retry_condition_fn`: retry timeouts, 5xx and rate limits, nothing an admin must fix."""
    data = state.data
    return isinstance(data, TransientStepFailure) or (isinstance(data, BaseException) and is_transient(data))


@task(
    cache_policy=NO_CACHE,  # steps read live systems: never reuse an earlier answer
    retries=STEP_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=STEP_RETRY_BACKOFF_SECONDS),
    retry_jitter_factor=STEP_RETRY_JITTER,
    retry_condition_fn=retry_only_transient,
)
async def onboarding_step(ctx: Context, step: StepName, plan_only: bool, upcoming: Upcoming) -> StepResult | State[Any]:
    """Plan (and unless `plan_only`, apply) one onboarding step."""
    try:
        result = await execute_step(ctx, step, plan_only=plan_only, upcoming=upcoming)
    except USER_ERRORS as error:
        # A host that never answered and failed a quick probe is a URL to fix, not a blip to wait out.
        if is_transient(error) and not isinstance(error, HostUnreachable):
            # A Failed state (not a raised error): Prefect retries it with backoff (retry_only_transient)
            # and logs one line per attempt instead of a traceback.
            return Failed(message=f"{step}: {error}", data=TransientStepFailure(failure_of(step, error)))
        result = failure_of(step, error)
    if result.failed:
        return Failed(message=f"{step}: {result.reason}", data=result)
    return result


STEP_TASKS: dict[StepName, Task[..., Any]] = {
    step: onboarding_step.with_options(name=step.value, task_run_name=step.value) for step in StepName
}


async def execute_as_task(ctx: Context, step: StepName, plan_only: bool, upcoming: Upcoming) -> StepResult:
    """The flow's step executor: the step's task run, its failure (after retries) as a failed result."""
    state = await STEP_TASKS[step](quote(ctx), step, plan_only, quote(upcoming), return_state=True)
    value = await state.aresult(raise_on_failure=False)
    if isinstance(value, TransientStepFailure):
        return value.result
    return value if isinstance(value, StepResult) else failure_of(step, value)
