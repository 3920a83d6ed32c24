"""Validation of one agent (the seed's "Validate Bidirectional Sync", automated), as plain async code.

For the agent (CXone agent id, or email/username): record both current states; set a Salesforce
status through the presence applier (a `Presence_Sync_Command__e` for that user) and wait for the
mapped CXone state; set a CXone state through the Agent API and wait for the mapped Salesforce
status; restore both; time each hop. The statuses come from a rule row that maps both ways (e.g.
On_Break <-> Unavailable: Break). A failed hop is named with its likely cause and the fix. The
`validate` flow (presence_sync.flows.validate) runs it and publishes the report.

    async with open_context("contact-center.yaml") as ctx:
        report = await validate_agent(ctx, "agent7@example.com", timeout_seconds=20)
        report.passed, report.failure
"""

from presence_sync.tasks.validate.report import Cause, Diagnosis, Hop, HopResult, ValidationError, ValidationReport
from presence_sync.tasks.validate.run import DEFAULT_TIMEOUT_SECONDS, validate_agent
from presence_sync.tasks.validate.trips import RoundTrip, round_trips
from presence_sync.tasks.validate.with_sync import validate_with_sync

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "Cause",
    "Diagnosis",
    "Hop",
    "HopResult",
    "RoundTrip",
    "ValidationError",
    "ValidationReport",
    "round_trips",
    "validate_agent",
    "validate_with_sync",
]
