"""What the sync must remember between ticks and across restarts: every agent's memory (with
the writes it holds), the audit trail, poll cursors, seen Salesforce spells and joined CXone
sessions; all of one tick saved in one transaction."""

import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Engine, bindparam, delete, select

from presence_sync.models.store.bulk import BulkInsert
from presence_sync.models.store.leases import Lease, fence
from presence_sync.models.store.part import Clock, StorePart, name_family, table_of, utc_now
from presence_sync.models.store.rows import AgentStateRow, AuditRow
from presence_sync.models.store.tables import (
    AgentState,
    AgentWrite,
    Audit,
    Cursor,
    CxoneSession,
    SeenSpell,
)


class SyncState(StorePart):
    """The sync's durable state (``store.sync``).

    Usage::

        store.sync.commit_tick(agents=[AgentStateRow(agent_id=7, memory={...}, writes=[...])],
                               cursors={"cxone": poll_time}, lease=lease)
        memory = store.sync.load_agent_memory()
    """

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        super().__init__(engine, clock)
        # A tick saves up to thousands of rows a statement: see bulk.py for why not Connection.execute.
        self._save_agents = BulkInsert(self._upsert(table_of(AgentState), "agent_id"))
        self._save_writes = BulkInsert(self._upsert(table_of(AgentWrite), "agent_id", "side"))
        self._save_audit = BulkInsert(table_of(Audit).insert())
        self._save_cursors = BulkInsert(self._upsert(table_of(Cursor), "name"))
        self._save_seen = BulkInsert(
            self._insert(table_of(SeenSpell)).on_conflict_do_nothing(index_elements=["spell_id"])
        )
        self._save_sessions = BulkInsert(self._upsert(table_of(CxoneSession), "agent_id"))

    def load_agent_memory(
        self, agent_ids: Iterable[int] | None = None
    ) -> dict[int, dict[str, Any]]:
        """The engine's stored memory per agent: all agents, or those of ``agent_ids``
        (unknown ids are simply absent). One statement, however many ids.
        """
        table = table_of(AgentState)
        stmt = select(table.c.agent_id, table.c.memory)
        if agent_ids is not None:
            ids = sorted({int(agent_id) for agent_id in agent_ids})
            if not ids:
                return {}
            # Inlined integers: no bound-parameter limit (SQLite 32766, PostgreSQL 65535).
            stmt = stmt.where(
                table.c.agent_id.in_(bindparam("ids", ids, expanding=True, literal_execute=True))
            )
        with self._read() as conn:
            return {agent_id: memory for agent_id, memory in conn.execute(stmt)}

    def commit_tick(
        self,
        *,
        agents: Iterable[AgentStateRow] = (),
        audit: Iterable[AuditRow] = (),
        cursors: Mapping[str, str] | None = None,
        seen_spells: Iterable[str] = (),
        cxone_sessions: Mapping[int, str | None] | None = None,
        lease: Lease | None = None,
    ) -> None:
        """Save one tick's outcome in ONE transaction: agent memory with the writes it holds,
        audit rows, cursors, seen Salesforce spells and CXone sessions joined (None: ended,
        forgotten). Cursors thus never run ahead of the changes they cover.

        With ``lease``, the commit only happens while that lease is still ours (checked
        and row-locked in the same transaction); otherwise ``LeaseLostError`` and nothing
        is saved. At most nine statements (BEGIN included), however many agents.
        """
        now = self._clock()
        # Stamped on the memory saved here and on its writes: the writes of an earlier save of
        # the same agent no longer match, so they stop counting (see ``tables.AgentWrite``).
        save_id = secrets.randbits(63)
        # An agent's last row wins, as row-by-row upserts had it: PostgreSQL saves all rows in one
        # statement, which may not update a row twice.
        latest = {row["agent_id"]: row for row in agents}
        agent_rows = [
            {"agent_id": agent_id, "memory": row["memory"], "save_id": save_id, "updated_at": now}
            for agent_id, row in latest.items()
        ]
        write_rows = [
            {**w, "agent_id": agent_id, "save_id": save_id} for agent_id, row in latest.items() for w in row["writes"]
        ]
        audit_rows = list(audit)
        cursor_rows = [
            {"name": name, "value": value, "updated_at": now}
            for name, value in (cursors or {}).items()
        ]
        spell_rows = [{"spell_id": spell_id, "seen_at": now} for spell_id in seen_spells]
        sessions = cxone_sessions or {}
        session_rows = [
            {"agent_id": agent_id, "session_id": session_id, "updated_at": now}
            for agent_id, session_id in sessions.items()
            if session_id is not None
        ]
        ended_sessions = sorted(agent_id for agent_id, session_id in sessions.items() if session_id is None)
        with self._write() as conn:
            if lease is not None:
                fence(conn, lease)
            self._save_agents.execute(conn, agent_rows)
            self._save_writes.execute(conn, write_rows)
            self._save_audit.execute(conn, audit_rows)
            self._save_cursors.execute(conn, cursor_rows)
            self._save_seen.execute(conn, spell_rows)
            self._save_sessions.execute(conn, session_rows)
            if ended_sessions:
                table = table_of(CxoneSession)
                conn.execute(delete(table).where(table.c.agent_id.in_(ended_sessions)))

    def cxone_sessions(self) -> dict[int, str]:
        """The CXone session last joined per agent (sessions are long-lived; a stale one answers 404)."""
        table = table_of(CxoneSession)
        with self._read() as conn:
            return {int(agent_id): str(session_id) for agent_id, session_id in conn.execute(
                select(table.c.agent_id, table.c.session_id)
            )}

    def get_cursor(self, name: str) -> str | None:
        """A cursor's saved value, or None before the first tick saved it."""
        table = table_of(Cursor)
        stmt = select(table.c.value).where(table.c.name == name)
        with self._read() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    def cursor_family(self, base: str) -> dict[str, str]:
        """The cursor ``base`` and every shard's ``base:i/n``, by name (e.g. each shard's last tick)."""
        table = table_of(Cursor)
        stmt = select(table.c.name, table.c.value).where(name_family(table.c.name, base))
        with self._read() as conn:
            return {str(name): str(value) for name, value in conn.execute(stmt)}

    def seen_spells(self) -> set[str]:
        """Ids of the Salesforce spells already processed (kept until pruned)."""
        with self._read() as conn:
            return set(conn.execute(select(table_of(SeenSpell).c.spell_id)).scalars())

    def prune_seen_spells(self, older_than: datetime) -> int:
        """Forget spells seen before ``older_than``; returns how many."""
        return self._delete_before(table_of(SeenSpell).c.seen_at, older_than)

    def prune_audit(self, older_than: datetime) -> int:
        """Delete audit rows from before ``older_than``; returns how many."""
        return self._delete_before(table_of(Audit).c.at, older_than)

    def _delete_before(self, column: Column[datetime], older_than: datetime) -> int:
        with self._write() as conn:
            return conn.execute(delete(column.table).where(column < older_than)).rowcount
