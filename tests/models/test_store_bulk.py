"""BulkInsert stores exactly what Connection.execute stores, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, delete, select, text

from presence_sync.models.store import Store
from presence_sync.models.store.bulk import BulkInsert
from presence_sync.models.store.part import table_of
from presence_sync.models.store.tables import AgentState, AgentWrite, Audit, WriteStatus

if TYPE_CHECKING:
    from tests.models.conftest import StatementLog

PARIS = timezone(timedelta(hours=1))
NOW = datetime(2026, 12, 5, 3, 0, 0, 123456, tzinfo=UTC)


def _raw(conn: Connection, table: Table, order_by: str) -> list[tuple[Any, ...]]:
    """The rows as the driver returns them, no column type between (SQLite's text as it is stored);
    not the surrogate key, which a sequence numbers on."""
    columns = ", ".join(column.name for column in table.columns if column.name != "id")
    return [tuple(row) for row in conn.exec_driver_sql(f"SELECT {columns} FROM {table.name} ORDER BY {order_by}")]


def _both_ways(store: Store, stmt: Any, table: Table, rows: list[dict[str, Any]], order_by: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(stmt, rows)
        expected = _raw(conn, table, order_by)
        conn.execute(delete(table))
        BulkInsert(stmt).execute(conn, rows)
        assert _raw(conn, table, order_by) == expected
        assert len(expected) == len(rows)


def test_agent_rows_are_stored_the_same(store: Store) -> None:
    upsert = store.sync._upsert(table_of(AgentState), "agent_id")
    rows = [
        {"agent_id": 7, "memory": {"cxone": {"state": "Available"}, "issued": 3, "é": ["ü", None]}, "save_id": 2**62, "updated_at": NOW},
        {"agent_id": 8, "memory": {}, "save_id": 1, "updated_at": NOW.astimezone(PARIS)},
        {"agent_id": 9, "memory": {"deep": {"a": [1, 2.5, True]}}, "save_id": 5, "updated_at": NOW + timedelta(microseconds=1)},
    ]
    _both_ways(store, upsert, table_of(AgentState), rows, "agent_id")


def test_write_and_audit_rows_are_stored_the_same(store: Store) -> None:
    writes = [
        {"agent_id": a, "side": side, "save_id": a, "command_id": f"c{a}{side}", "target": "On_Break",
         "issued_at": NOW, "attempts": a % 3 + 1, "next_attempt_at": None if a % 2 else NOW.astimezone(PARIS),
         "status": WriteStatus.PENDING if a % 2 else "gave_up", "last_error": None if a % 2 else "HTTP 503"}
        for a in range(1, 40) for side in ("cxone", "salesforce")
    ]
    _both_ways(store, store.sync._upsert(table_of(AgentWrite), "agent_id", "side"), table_of(AgentWrite), writes,
               "agent_id, side")
    audit = [
        {"at": NOW, "agent_id": a, "direction": "cxone->salesforce", "outcome": "write", "from_value": None,
         "to_value": "On_Break", "rule_row": "Break -> On_Break", "reason": "CXone changed", "observed_at":
         NOW - timedelta(seconds=a), "command_id": f"c{a}", "latency_ms": a * 1.5 if a % 3 else None,
         "run_id": "run", "rule_name": None}
        for a in range(1, 40)
    ]
    _both_ways(store, table_of(Audit).insert(), table_of(Audit), audit, "agent_id")


def test_an_upsert_updates_what_it_finds(store: Store) -> None:
    upsert = BulkInsert(store.sync._upsert(table_of(AgentState), "agent_id"))
    table = table_of(AgentState)
    with store.engine.begin() as conn:
        upsert.execute(conn, [{"agent_id": 1, "memory": {"v": 1}, "save_id": 1, "updated_at": NOW}])
        upsert.execute(conn, [{"agent_id": 1, "memory": {"v": 2}, "save_id": 2, "updated_at": NOW},
                              {"agent_id": 2, "memory": {"v": 3}, "save_id": 2, "updated_at": NOW}])
        stored = {row.agent_id: (row.memory, row.save_id) for row in conn.execute(select(table))}
    assert stored == {1: ({"v": 2}, 2), 2: ({"v": 3}, 2)}


def test_columns_with_defaults_of_their_own_are_left_to_sqlalchemy(store: Store) -> None:
    # A Python-side default is computed per row by SQLAlchemy's execution; BulkInsert gives it back.
    table = Table("bulk_defaults", MetaData(), Column("id", Integer, primary_key=True),
                  Column("label", String, default="unlabelled"))
    with store.engine.begin() as conn:
        table.create(conn)
        BulkInsert(table.insert()).execute(conn, [{"id": 1}, {"id": 2}])
        labels = [row.label for row in conn.execute(select(table).order_by(table.c.id))]
        conn.execute(text("DROP TABLE bulk_defaults"))
    assert labels == ["unlabelled", "unlabelled"]


def test_many_rows_are_one_statement_and_none_is_none(store: Store, statement_log: StatementLog) -> None:
    insert = BulkInsert(table_of(Audit).insert())
    row = {"at": NOW, "agent_id": 1, "direction": "cxone->salesforce", "outcome": "write", "reason": "r"}
    with store.engine.begin() as conn, statement_log(store.engine) as sql:
        insert.execute(conn, [])
        assert sql == []
        insert.execute(conn, [{**row, "agent_id": a} for a in range(500)])
    assert len(sql) == 1


def test_text_an_array_would_quote_is_stored_as_it_is(store: Store) -> None:
    # On PostgreSQL every column of the rows goes as one array parameter: no value may read as another.
    awkward = ['say "hi", {x}', "back\\slash", "NULL", "", " padded ", "é, ü; 🎧", "{}", "line\nbreak", "a,b"]
    audit = [
        {"at": NOW, "agent_id": a, "direction": "cxone->salesforce", "outcome": "write", "from_value": text_,
         "to_value": None, "rule_row": text_, "reason": text_, "observed_at": None, "command_id": None,
         "latency_ms": None, "run_id": text_, "rule_name": text_}
        for a, text_ in enumerate(awkward)
    ]
    _both_ways(store, table_of(Audit).insert(), table_of(Audit), audit, "agent_id")
    with store.engine.connect() as conn:
        stored = [row.reason for row in conn.execute(select(table_of(Audit)).order_by(table_of(Audit).c.agent_id))]
    assert stored == awkward
