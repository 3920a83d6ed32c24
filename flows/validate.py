"""The `validate` flow: the seed's "Validate Bidirectional Sync", automated for one test agent.

The validation itself is `presence_sync.tasks.validate`; the flow runs it and publishes its report
(one markdown artifact holding its table). It ends Failed when a hop failed.

    presence-sync validate examples/demo-contact-center.yaml --agent agent7@example.com
"""

from __future__ import annotations

import re
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact
from prefect.states import Completed, Failed, State

from presence_sync.flows.run_names import validate_run_name
from presence_sync.tasks.context import open_context, transports_for
from presence_sync.tasks.validate import DEFAULT_TIMEOUT_SECONDS, validate_agent, validate_with_sync


def artifact_key(agent: str) -> str:
    """Prefect artifact keys are lowercase letters, digits and dashes."""
    return "validation-" + (re.sub(r"[^a-z0-9]+", "-", agent.casefold()).strip("-") or "agent")


@flow(name="validate", flow_run_name=validate_run_name, description="Prove, for one test agent, that a change in each system arrives in the other.")
async def validate(
    config_path: str,
    agent: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    salesforce_status: str | None = None,
    cxone_state: str | None = None,
    with_sync: bool = False,
) -> State[Any]:
    """Validate bidirectional presence sync for one test agent (the seed's last section).

    Args:
        config_path: The contact center's config file (YAML), as the sync deployment uses it.
        agent: The test agent: CXone agent id, or email/username.
        timeout_seconds: How long each hop may take before it fails.
        salesforce_status: Optional DeveloperName to set in Salesforce (default: a rule row that maps both ways).
        cxone_state: Optional CXone state to set, e.g. "Unavailable: Lunch" (default: chosen from the rule).
        with_sync: Run a sync window beside the validation (when no sync deployment is running yet).
    """
    async with open_context(config_path, transports_for(config_path)) as ctx:
        validation = validate_with_sync if with_sync else validate_agent
        report = await validation(
            ctx, agent, timeout_seconds=timeout_seconds, salesforce_status=salesforce_status, cxone_state=cxone_state
        )
    key = artifact_key(agent)
    await acreate_markdown_artifact(key=key, markdown=report.markdown(), description=report.headline)
    if report.passed:
        return Completed(message=report.headline, data=report)
    return Failed(message=report.headline, data=report)
