"""The rows a sync tick hands to ``Store.commit_tick``, as plain typed dicts.

A tick can carry 10,000 rows (a first reconcile of a large contact center); building a
SQLModel table object costs ~80 µs, a dict ~1 µs, so the write path takes dicts. Their
keys are the columns of the matching table in ``tables.py`` (a test keeps them in step),
except the ones the store fills in: ``updated_at`` and the audit row's ``id``.
"""

from datetime import datetime
from typing import Any, TypedDict

from presence_sync.models.store.tables import WriteStatus


class AgentStateRow(TypedDict):
    """One agent's memory, as the engine serialised it, plus its plain query columns."""

    agent_id: int
    memory: dict[str, Any]
    cxone_state: str | None
    sf_status: str | None
    truth_side: str | None


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


class InflightWriteRow(TypedDict):
    """An issued write, upserted by ``command_id`` (see ``tables.InflightWrite``)."""

    command_id: str
    agent_id: int
    side: str
    target: str
    issued_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    status: WriteStatus
    last_error: str | None
