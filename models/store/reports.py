"""What ``status``, ``audit`` and ``validate`` read back: the audit trail, echo latencies, and
the writes agents' memory holds. Read-only, a few indexed queries however many agents."""

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Join, and_, func, select
from sqlmodel import col

from presence_sync.models.store.part import StorePart, check_limit, table_of
from presence_sync.models.store.tables import AgentState, AgentWrite, Audit, WriteStatus

_NEWEST_FIRST = (col(Audit.at).desc(), col(Audit.id).desc())


class Reports(StorePart):
    """Queries for reports (``store.reports``).

    Usage::

        counts = store.reports.write_counts()        # {WriteStatus.PENDING: 3, ...}
        story = store.reports.audit_for(agent_id=7, since=an_hour_ago)
    """

    def write_counts(self) -> dict[WriteStatus, int]:
        """How many writes agents' memory holds, per status: pending, failed and given up."""
        writes = table_of(AgentWrite)
        stmt = select(writes.c.status, func.count()).select_from(_held_writes()).group_by(writes.c.status)
        with self._read() as conn:
            counts = {status: count for status, count in conn.execute(stmt)}
        return {status: counts.get(status, 0) for status in WriteStatus}

    def list_writes(self, status: WriteStatus | None = None, limit: int = 100) -> list[AgentWrite]:
        """Writes agents' memory holds (of one status), oldest first."""
        check_limit(limit)
        stmt = select(AgentWrite).select_from(_held_writes())
        if status is not None:
            stmt = stmt.where(AgentWrite.status == status)
        return self._models(stmt.order_by(AgentWrite.issued_at, AgentWrite.command_id).limit(limit))

    def last_audit(self, direction: str) -> Audit | None:
        """The newest audit row of one direction (e.g. ``"cxone->salesforce"``), or None."""
        stmt = select(Audit).where(Audit.direction == direction)
        return next(iter(self._models(stmt.order_by(*_NEWEST_FIRST).limit(1))), None)

    def echo_latencies(self, direction: str, since: datetime, limit: int = 1000) -> list[float]:
        """Latencies (ms) of the newest echoes of one direction from ``since`` on: how long a
        change took to show on the other side. At most ``limit``, newest first."""
        check_limit(limit)
        table = table_of(Audit)
        stmt = select(table.c.latency_ms).where(*_timed_echoes(direction, since))
        with self._read() as conn:
            return [float(value) for value in conn.execute(stmt.order_by(table.c.at.desc()).limit(limit)).scalars()]

    def echo_latencies_by_agent(
        self, direction: str, since: datetime, limit: int = 1000
    ) -> list[tuple[int, float]]:
        """Like ``echo_latencies``, with each echo's agent: (agent id, ms), newest first (to split the
        lag by shard of agents, which SQL can't compute)."""
        check_limit(limit)
        table = table_of(Audit)
        stmt = select(table.c.agent_id, table.c.latency_ms).where(*_timed_echoes(direction, since))
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(table.c.at.desc()).limit(limit))
            return [(int(agent_id), float(latency)) for agent_id, latency in rows]

    def count_echoes(self, direction: str, since: datetime) -> int:
        """How many of our writes of one direction showed on the other side from ``since`` on (their echoes,
        initial alignments included; only echoes of human changes are timed)."""
        stmt = select(func.count()).select_from(table_of(Audit)).where(*_echoes(direction, since))
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def audit_for(
        self, agent_id: int | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[Audit]:
        """Audit rows, newest first: of one agent and/or from ``since`` on, at most ``limit``."""
        check_limit(limit)
        stmt = select(Audit)
        if agent_id is not None:
            stmt = stmt.where(Audit.agent_id == agent_id)
        if since is not None:
            stmt = stmt.where(Audit.at >= since)
        return self._models(stmt.order_by(*_NEWEST_FIRST).limit(limit))


def _held_writes() -> Join:
    """The write rows saved with their agent's current memory (see ``tables.AgentWrite``)."""
    writes, states = table_of(AgentWrite), table_of(AgentState)
    return writes.join(
        states, and_(states.c.agent_id == writes.c.agent_id, states.c.save_id == writes.c.save_id)
    )


def _echoes(direction: str, since: datetime) -> tuple[ColumnElement[Any], ...]:
    table = table_of(Audit)
    return (table.c.direction == direction, table.c.at >= since, table.c.outcome == "echo")


def _timed_echoes(direction: str, since: datetime) -> tuple[ColumnElement[Any], ...]:
    """Echoes of human changes (an initial alignment's echo has no latency)."""
    return (*_echoes(direction, since), table_of(Audit).c.latency_ms.is_not(None))
