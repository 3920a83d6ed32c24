"""The engine's memory, audit and commands as the store's rows (`Store.commit_tick` takes plain dicts).

    rows = agent_row(agent_id, memory)
    upserts, deletes = inflight_changes(saved_memory, memory)
"""

from __future__ import annotations

from collections.abc import Iterable

from presence_sync.engine import AgentMemory, AuditRecord, Command, CommandStatus
from presence_sync.engine.audit import describe
from presence_sync.models.store import AgentStateRow, AuditRow, InflightWriteRow, WriteStatus

_WRITE_STATUS = {
    CommandStatus.IN_FLIGHT: WriteStatus.PENDING,
    CommandStatus.RETRY_WAIT: WriteStatus.PENDING,
    CommandStatus.FAILED: WriteStatus.FAILED,
    CommandStatus.GAVE_UP: WriteStatus.GAVE_UP,
}


def agent_row(agent_id: int, memory: AgentMemory) -> AgentStateRow:
    return AgentStateRow(
        agent_id=agent_id,
        memory=memory.to_json(),
        cxone_state=memory.cxone_key,
        sf_status=memory.salesforce,
        truth_side=None if memory.truth_side is None else memory.truth_side.value,
    )


def audit_rows(records: Iterable[AuditRecord], run_id: str | None) -> list[AuditRow]:
    return [AuditRow(**record.to_row(), run_id=run_id) for record in records]  # type: ignore[typeddict-item]


def _commands(memory: AgentMemory | None) -> dict[str, Command]:
    if memory is None:
        return {}
    return {c.command_id: c for c in (memory.cxone_command, memory.salesforce_command) if c is not None}


def inflight_row(agent_id: int, command: Command) -> InflightWriteRow:
    return InflightWriteRow(
        command_id=command.command_id,
        agent_id=agent_id,
        side=command.side.value,
        target=describe(command.target),
        issued_at=command.issued_at,
        attempts=command.attempts,
        next_attempt_at=command.due_at if command.status is CommandStatus.RETRY_WAIT else None,
        status=_WRITE_STATUS[command.status],
        last_error=command.last_error,
    )


def inflight_changes(
    agent_id: int, saved: AgentMemory | None, current: AgentMemory
) -> tuple[list[InflightWriteRow], list[str]]:
    """Rows to upsert (commands new or changed since `saved`) and command ids to delete (settled)."""
    before, after = _commands(saved), _commands(current)
    upserts = [inflight_row(agent_id, c) for command_id, c in after.items() if before.get(command_id) != c]
    deletes = [command_id for command_id in before if command_id not in after]
    return upserts, deletes
