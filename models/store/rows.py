"""The rows a sync tick hands to ``SyncState.commit_tick``, as plain typed dicts.

A tick can carry 10,000 rows (a first reconcile of a large contact center); building a
SQLModel table object costs ~80 µs, a dict ~1 µs, so the write path takes dicts. Their
keys are the columns of the matching table in ``tables.py`` (a test keeps them in step),
except the ones the store fills in: ``updated_at``, ``save_id``, the audit row's ``id``, and a
write's ``agent_id`` (that of the agent it comes with).
"""

from datetime import datetime
from typing import Any, TypedDict

from presence_sync.models.store.tables import WriteStatus


class WriteRow(TypedDict):
    """A write the agent's memory holds on one side (see ``tables.AgentWrite``)."""

    side: str
    command_id: str
    target: str
    issued_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    status: WriteStatus
    last_error: str | None


class AgentStateRow(TypedDict):
    """One agent's memory as the engine serialised it, with the writes it holds (for reports)."""

    agent_id: int
    memory: dict[str, Any]
    writes: list[WriteRow]


class AuditRow(TypedDict):
    """One sync decision (see ``tables.Audit``)."""

    at: datetime
    agent_id: int
    direction: str
    outcome: str
    from_value: str | None
    to_value: str | None
    rule_row: str | None
    reason: str
    observed_at: datetime | None
    command_id: str | None
    latency_ms: float | None
    run_id: str | None
    rule_name: str | None
