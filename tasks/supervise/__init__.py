"""A supervisor's "set this agent to X": set the agent in one system, let the sync carry it to the other,
wait until both agree by the agent's rule, and say how it went (plain async code; the `set` flow runs it).

    async with open_context("contact-center.yaml") as ctx:
        outcome = await set_agent(ctx, "agent7@example.com", salesforce="On_Break")
        outcome.ok, outcome.headline
"""

from presence_sync.tasks.supervise.set_agent import DEFAULT_TIMEOUT_SECONDS, SetOutcome, SetRequestError, set_agent

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "SetOutcome", "SetRequestError", "set_agent"]
