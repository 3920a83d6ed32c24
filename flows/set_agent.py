"""The `set` flow: a supervisor's "set this agent to X", in one system, carried to the other by the sync.

The work is `presence_sync.tasks.supervise`; the flow runs it and publishes the outcome (a markdown
artifact). It ends Failed when the request was refused or the other system did not follow in time.

    presence-sync set presence-sync.yaml --agent agent7@example.com --salesforce On_Break
"""

from __future__ import annotations

import re
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact
from prefect.states import Completed, Failed, State

from presence_sync.tasks.context import open_context, transports_for
from presence_sync.tasks.supervise import DEFAULT_TIMEOUT_SECONDS, SetOutcome, SetRequestError, set_agent as set_one


def artifact_key(agent: str) -> str:
    """Prefect artifact keys are lowercase letters, digits and dashes."""
    return "set-" + (re.sub(r"[^a-z0-9]+", "-", agent.casefold()).strip("-") or "agent")


@flow(name="set", description="A supervisor's change: set one agent in one system and let the sync carry it to the other.")
async def set_agent(
    config_path: str,
    agent: str,
    salesforce_status: str | None = None,
    cxone_state: str | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> State[Any]:
    """Set one agent in Salesforce or in CXone, and wait until the sync has the other system agree.

    Args:
        config_path: The contact center's config file (YAML), as the sync deployment uses it.
        agent: The agent: CXone agent id, or email/username.
        salesforce_status: A presence status DeveloperName to set in Salesforce (e.g. On_Break); or
        cxone_state: a CXone state to set (Available, Unavailable, "Unavailable: Lunch"). Give one of the two.
        timeout_seconds: How long the other system may take to follow.
    """
    try:
        async with open_context(config_path, transports_for(config_path)) as ctx:
            outcome = await set_one(
                ctx, agent, salesforce=salesforce_status, cxone=cxone_state, timeout_seconds=timeout_seconds
            )
    except SetRequestError as error:
        return Failed(message=f"{error} (parameters salesforce_status / cxone_state)")
    await acreate_markdown_artifact(key=artifact_key(agent), markdown=_markdown(outcome), description=outcome.headline)
    if outcome.ok:
        return Completed(message=outcome.headline, data=outcome)
    return Failed(message=outcome.headline, data=outcome)


def _markdown(outcome: SetOutcome) -> str:
    verdict = "✅ both systems agree" if outcome.ok else "❌ not done"
    lines = [
        f"# Set {outcome.agent}: {verdict}",
        "",
        f"- Rule: {outcome.rule_name or 'none'}",
        f"- Before: {outcome.before or 'not read'}",
        f"- Set: {outcome.system} {outcome.value}; expected by the rule: {outcome.expected or '-'}",
    ]
    if outcome.hop is not None:
        seconds = "" if outcome.hop.seconds is None else f" after {outcome.hop.seconds:.2f} s"
        lines.append(f"- Observed: {outcome.hop.observed}{seconds}")
    problem = outcome.problem
    if problem is not None:
        lines += ["", f"**{problem.cause}.** {problem.explanation}", "", f"**Fix:** {problem.fix}"]
    return "\n".join(lines)
