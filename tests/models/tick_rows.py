"""Rows of a sync tick for the store tests: an agent's memory with its writes, an audit row."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from presence_sync.models.store import AgentStateRow, AuditRow, WriteRow, WriteStatus

CX_TO_SF = "cxone->salesforce"
SF_TO_CX = "salesforce->cxone"


def state(agent_id: int, tick: int = 0, writes: tuple[WriteRow, ...] = ()) -> AgentStateRow:
    return AgentStateRow(
        agent_id=agent_id,
        memory={"cxone": {"state": "Available", "at": f"10:00:{tick:02d}"}, "tick": tick},
        writes=list(writes),
    )


def audit(
    agent_id: int, at: datetime, direction: str = CX_TO_SF, outcome: str = "write"
) -> AuditRow:
    return AuditRow(
        at=at,
        agent_id=agent_id,
        direction=direction,
        outcome=outcome,
        from_value="Available",
        to_value="On_Break",
        rule_row="Unavailable: Break -> On_Break",
        reason="the agent went on break in CXone",
        observed_at=at - timedelta(milliseconds=300),
        command_id=f"{agent_id}-sf-1",
        latency_ms=300.0,
        run_id="window-1",
        rule_name="Default Presence",
    )


def write(
    command_id: str, at: datetime, status: WriteStatus = WriteStatus.PENDING, **changes: Any
) -> WriteRow:
    row = WriteRow(
        side="salesforce",
        command_id=command_id,
        target="On_Break",
        issued_at=at,
        attempts=1,
        next_attempt_at=None,
        status=status,
        last_error=None,
    )
    return row | changes  # type: ignore[return-value]


def counts(pending: int = 0, failed: int = 0, gave_up: int = 0) -> dict[WriteStatus, int]:
    return {WriteStatus.PENDING: pending, WriteStatus.FAILED: failed, WriteStatus.GAVE_UP: gave_up}
