"""Onboarding: the seed procedure's steps as idempotent, planned, recorded operations.

Each step is `plan_<step>(ctx) -> StepPlan` (reads both systems, says what would change and why) and
`apply_<step>(ctx, plan) -> StepResult` (makes exactly the planned writes). `run_steps` runs them in
the seed's order, skipping dependants of a failed step and recording outcomes in the store; the
`onboard` flow runs it with one Prefect task per step.

    async with open_context("presence-sync.yaml") as ctx:
        report = await run_steps(ctx, plan_only=True)
        print(report.needs_a_human())
"""

from presence_sync.tasks.onboarding.account_mapping import apply_account_mapping, plan_account_mapping
from presence_sync.tasks.onboarding.connected_app import SPRING_26_GUIDANCE, apply_check, plan_connected_app
from presence_sync.tasks.onboarding.cxone_users import Linking, Unlinked, apply_cxone_users, link_agents, plan_cxone_users
from presence_sync.tasks.onboarding.model import (
    REFRESH_USERS_STEPS,
    Action,
    Cause,
    FailureKind,
    OnboardingIncomplete,
    OnboardingReport,
    PlanItem,
    StepName,
    StepPlan,
    StepResult,
    Upcoming,
)
from presence_sync.tasks.onboarding.oauth_flow import PASSWORD_FLOW_RETIREMENT_WARNING, plan_oauth_flow
from presence_sync.tasks.onboarding.people import CxoneAgent, SalesforceUser
from presence_sync.tasks.onboarding.presence_rule import apply_presence_rule, plan_presence_rule
from presence_sync.tasks.onboarding.presence_statuses import apply_presence_statuses, plan_presence_statuses
from presence_sync.tasks.onboarding.profile_access import apply_profile_access, plan_profile_access
from presence_sync.tasks.onboarding.runner import STEPS, execute_plainly, execute_step, failure_of, run_steps

__all__ = [
    "PASSWORD_FLOW_RETIREMENT_WARNING",
    "REFRESH_USERS_STEPS",
    "SPRING_26_GUIDANCE",
    "STEPS",
    "Action",
    "Cause",
    "CxoneAgent",
    "FailureKind",
    "Linking",
    "OnboardingIncomplete",
    "OnboardingReport",
    "PlanItem",
    "SalesforceUser",
    "StepName",
    "StepPlan",
    "StepResult",
    "Unlinked",
    "Upcoming",
    "apply_account_mapping",
    "apply_check",
    "apply_cxone_users",
    "apply_presence_rule",
    "apply_presence_statuses",
    "apply_profile_access",
    "execute_plainly",
    "execute_step",
    "failure_of",
    "link_agents",
    "plan_account_mapping",
    "plan_connected_app",
    "plan_cxone_users",
    "plan_oauth_flow",
    "plan_presence_rule",
    "plan_presence_statuses",
    "plan_profile_access",
    "run_steps",
]
