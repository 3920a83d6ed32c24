"""The `refresh-users` flow: the onboarding's CXone users step alone, for a schedule.

It fetches agents and teams again and re-links them to Salesforce users (new agents linked, departed
ones unlinked, the unlinked listed), exactly as onboarding does.

    report = await refresh_users("presence-sync.yaml")
"""

from __future__ import annotations

from prefect import flow

from presence_sync.flows.onboard import run_onboarding
from presence_sync.flows.run_names import refresh_users_run_name
from presence_sync.tasks.onboarding import REFRESH_USERS_STEPS, OnboardingReport


@flow(name="refresh-users", flow_run_name=refresh_users_run_name)
async def refresh_users(config_path: str, plan: bool = False) -> OnboardingReport:
    """Refresh the CXone agents and their links to Salesforce users ("Get NiCE CXone Users").

    Args:
        config_path: the contact center's config file (YAML), as the worker sees it.
        plan: true to list what would change without changing anything.
    """
    return await run_onboarding(
        config_path, plan=plan, steps=REFRESH_USERS_STEPS, artifact_key="refresh-users", what="Refresh users"
    )
