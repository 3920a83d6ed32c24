"""The `onboard` and `refresh-users` flows under Prefect: task runs, artifacts, failed runs, retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId
from prefect.states import Failed

from presence_sync.connectors import InvalidCredentials, RateLimited
from presence_sync.emulators.faults import FaultSettings
from presence_sync.emulators.salesforce.emulator import OrgUpdate
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.flows.onboard import onboard
from presence_sync.flows.refresh_users import refresh_users
from presence_sync.models.config import ConfigError
from presence_sync.tasks.onboarding import OnboardingIncomplete, OnboardingReport, StepName, StepResult
from presence_sync.flows import onboard_tasks
from presence_sync.flows.onboard_tasks import STEP_RETRIES, TransientStepFailure, retry_only_transient
from tests.onboarding.onboarding_support import data_writes, outcomes, result_of

pytestmark = pytest.mark.prefect


async def _latest_artifact(key: str) -> Any:
    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key}"
    return max(found, key=lambda artifact: artifact.created)


async def _artifacts_named(key: str) -> list[Any]:
    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


async def _flow_run_name(flow_run_id: Any) -> str:
    async with get_client() as client:
        return (await client.read_flow_run(flow_run_id)).name


async def _task_run_names(flow_run_id: Any) -> list[str]:
    async with get_client() as client:
        runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted(run.name for run in runs)


async def test_the_onboard_flow_runs_one_task_per_step_and_reports_as_artifacts(
    prefect_harness: None, stack: EmulatorStack, config_path: Path
) -> None:
    state = await onboard(str(config_path), return_state=True)

    assert state.is_completed()
    report = await state.aresult()
    assert isinstance(report, OnboardingReport) and report.succeeded
    assert await _task_run_names(state.state_details.flow_run_id) == sorted(step.value for step in StepName)
    assert report.run_id == str(state.state_details.flow_run_id)

    # One artifact for the report: the table of every step's outcome, the changes, what needs a human.
    outcome = await _latest_artifact("onboarding-outcome")
    assert outcome.type == "markdown" and outcome.description == "Onboarding: 7 steps, all done"
    for result in report.results:
        assert f"| {result.step.value} | {result.outcome.value} |" in outcome.data
    assert "## What still needs a human" in outcome.data and "agent50@example.com" in outcome.data
    assert not await _artifacts_named("onboarding-outcome-summary")
    progress = await _latest_artifact("onboarding-progress")
    assert progress.data == 100.0
    assert await _flow_run_name(state.state_details.flow_run_id) == f"onboard-{config_path.parent.name}"


async def test_a_plan_run_writes_nothing_and_publishes_the_plan(
    prefect_harness: None, stack: EmulatorStack, config_path: Path
) -> None:
    state = await onboard(str(config_path), plan=True, return_state=True)
    report = await state.aresult()

    assert report.plan_only and outcomes(report)["presence-statuses"] == "planned"
    assert await data_writes(stack) == {}
    plan = await _latest_artifact("onboarding-plan")
    assert plan.type == "markdown" and plan.description == "Onboarding plan (7 steps, nothing changed)"
    assert "create status On_Break: new busy status 'On Break'" in plan.data
    assert await _flow_run_name(state.state_details.flow_run_id) == f"onboard-{config_path.parent.name}-plan"


async def test_a_failed_step_fails_the_run_with_every_result(
    prefect_harness: None, stack: EmulatorStack, config_path: Path
) -> None:
    stack.salesforce.configure_org(OrgUpdate(block_username_password_flow=True))

    with pytest.raises(OnboardingIncomplete) as raised:
        await onboard(str(config_path))

    report = raised.value.report
    assert outcomes(report)["oauth-flow"] == "failed"
    assert result_of(report, "cxone-users").summary.startswith("skipped: oauth-flow failed:")
    assert "failed presence-statuses, oauth-flow" in str(raised.value)
    state = await onboard(str(config_path), return_state=True)
    assert state.is_failed() and "onboarding is incomplete" in (state.message or "")


async def test_a_bad_config_fails_the_run_with_its_problems(prefect_harness: None, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"

    with pytest.raises(ConfigError, match="file not found"):
        await onboard(str(missing))


async def test_refresh_users_runs_the_cxone_users_step_alone(
    prefect_harness: None, stack: EmulatorStack, config_path: Path
) -> None:
    await onboard(str(config_path))
    stack.cxone.tenant.add_agent("New", "Agent", "agent1@example.com.new", 1002, user_name="agent1b")

    report = await refresh_users(str(config_path))

    [result] = report.results
    assert result.step is StepName.CXONE_USERS
    assert result.counts() == {"unchanged": 59}  # the newcomer has no Salesforce user: listed, not linked
    assert any("agent1b" in note for note in result.notes)
    assert (await _latest_artifact("refresh-users-outcome")).data


async def test_a_transient_failure_is_retried_then_reported(
    prefect_harness: None, stack: EmulatorStack, config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = StepName.CXONE_USERS
    monkeypatch.setitem(
        onboard_tasks.STEP_TASKS, step, onboard_tasks.STEP_TASKS[step].with_options(retry_delay_seconds=0)
    )
    # CXone asks to wait far longer than a connector waits: each attempt fails at once, transiently.
    stack.cxone.faults.configure(FaultSettings(rate_limit_per_s=0.0001))

    state = await refresh_users(str(config_path), return_state=True)
    report = await state.aresult(raise_on_failure=False)

    assert isinstance(report, OnboardingIncomplete)
    [result] = report.report.results
    assert "asked to wait" in result.summary and "still failing after retries" in result.summary
    async with stack.cxone_http() as client:
        requests = (await client.get("/__emulator/stats")).json()["requests"]
    assert requests == {"GET /.well-known/openid-configuration": 1 + STEP_RETRIES}
    # Each attempt ended in a Failed state of ours, not a raised error (which Prefect logs with its traceback).
    async with get_client() as client:
        [task_run] = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
        history = await client.read_task_run_states(task_run.id)
    failed = [state for state in history if state.is_failed()]
    assert failed and all((state.message or "").startswith("cxone-users: ") for state in failed)
    assert not any("encountered an exception" in (state.message or "") for state in history)


def test_only_transient_errors_are_retried() -> None:
    transient = RateLimited("wait", system="CXone", retry_after=9999)
    permanent = InvalidCredentials("wrong", system="Salesforce", status_code=400)
    reported = StepResult.failure(StepName.OAUTH_FLOW, "wrong")
    attempt = TransientStepFailure(StepResult.failure(StepName.CXONE_USERS, "CXone asked to wait"))

    assert retry_only_transient(None, None, Failed(data=attempt))  # type: ignore[arg-type]
    assert retry_only_transient(None, None, Failed(data=transient))  # type: ignore[arg-type]
    assert not retry_only_transient(None, None, Failed(data=permanent))  # type: ignore[arg-type]
    assert not retry_only_transient(None, None, Failed(data=reported))  # type: ignore[arg-type]


def test_a_transient_attempt_pickles_with_its_result() -> None:
    # Prefect may persist a failed attempt's data; it must load again (a connector error does not).
    attempt = TransientStepFailure(StepResult.failure(StepName.CXONE_USERS, "CXone asked to wait"))

    loaded = cloudpickle.loads(cloudpickle.dumps(attempt))

    assert isinstance(loaded, TransientStepFailure) and loaded.result == attempt.result
