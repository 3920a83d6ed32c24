"""The engine's memory and audit as the store's rows (`SyncState.commit_tick` takes plain dicts).

    row = agent_row(agent_id, memory)     # the memory's JSON, with the writes it holds
"""

from __future__ import annotations

from collections.abc import Iterable

from presence_sync.engine import AgentMemory, AuditRecord, Command, CommandStatus
from presence_sync.engine.audit import describe
from presence_sync.models.store import AgentStateRow, AuditRow, WriteRow, WriteStatus

_WRITE_STATUS = {
    CommandStatus.IN_FLIGHT: WriteStatus.PENDING,
    CommandStatus.RETRY_WAIT: WriteStatus.PENDING,
    CommandStatus.FAILED: WriteStatus.FAILED,
    CommandStatus.GAVE_UP: WriteStatus.GAVE_UP,
}


def agent_row(agent_id: int, memory: AgentMemory) -> AgentStateRow:
    commands = (memory.cxone_command, memory.salesforce_command)
    return AgentStateRow(
        agent_id=agent_id,
        memory=memory.to_json(),
        writes=[_write_row(command) for command in commands if command is not None],
    )


def audit_rows(records: Iterable[AuditRecord], run_id: str | None) -> list[AuditRow]:
    return [AuditRow(**record.to_row(), run_id=run_id) for record in records]  # type: ignore[typeddict-item]


def _write_row(command: Command) -> WriteRow:
    return WriteRow(
        side=command.side.value,
        command_id=command.command_id,
        target=describe(command.target),
        issued_at=command.issued_at,
        attempts=command.attempts,
        next_attempt_at=command.due_at if command.status is CommandStatus.RETRY_WAIT else None,
        status=_WRITE_STATUS[command.status],
        last_error=command.last_error,
    )
