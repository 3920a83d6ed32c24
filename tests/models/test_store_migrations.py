"""Opening the store: URLs, schema creation, upgrades, refusals and failures."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Connection, Engine, MetaData, Table, inspect, select, text
from sqlmodel import SQLModel

from presence_sync.models.store import (
    MIGRATIONS,
    InvalidStoreUrlError,
    Migration,
    MigrationError,
    SchemaTooNewError,
    Store,
    StoreUnavailableError,
    WriteStatus,
    migrate,
    normalise_store_url,
)
from presence_sync.models.store.connection import create_store_engine
from presence_sync.models.store.migrations import schema_version_table
from presence_sync.models.store.tables import STORE_TABLES

if TYPE_CHECKING:
    from tests.models.conftest import FakeClock, FreshUrl

LATEST = MIGRATIONS[-1].version


def _add_note_to_cursor(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE cursor ADD COLUMN note VARCHAR"))


ADD_NOTE = Migration(LATEST + 1, "add a note to cursors", _add_note_to_cursor)


def _applied_versions(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(schema_version_table.c.version)).scalars())


def _schema(engine: Engine) -> dict[str, Any]:
    """Everything reflection sees of the store's tables, comparable across two databases."""
    inspector = inspect(engine)
    described: dict[str, Any] = {}
    for table in STORE_TABLES:
        name = table.name
        described[name] = {
            "columns": [
                (c["name"], c["type"].compile(dialect=engine.dialect), c["nullable"])
                for c in inspector.get_columns(name)
            ],
            "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(name)
            ),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], f["options"].get("ondelete"))
                for f in inspector.get_foreign_keys(name)
            ),
        }
    return described


def test_an_empty_database_gets_every_table(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())

    assert {table.name for table in STORE_TABLES} | {"schema_version"} <= tables
    assert store.schema_version() == LATEST
    assert _applied_versions(store.engine) == [step.version for step in MIGRATIONS]


def test_migrations_build_exactly_the_schema_of_tables_py(fresh_url: FreshUrl) -> None:
    with Store.open(fresh_url()) as migrated:
        from_migrations = _schema(migrated.engine)
    declared = create_store_engine(normalise_store_url(fresh_url()))
    try:
        SQLModel.metadata.create_all(declared, tables=list(STORE_TABLES))
        from_tables_py = _schema(declared)
    finally:
        declared.dispose()

    assert from_migrations == from_tables_py


def test_reopening_keeps_data_and_applies_nothing_again(store_url: str, clock: FakeClock) -> None:
    with Store.open(store_url, clock=clock) as first:
        first.sync.commit_tick(cursors={"cxone": "2026-11-25T10:00:00Z"})

    with Store.open(store_url, clock=clock) as again:
        assert again.sync.get_cursor("cxone") == "2026-11-25T10:00:00Z"
        assert _applied_versions(again.engine) == [step.version for step in MIGRATIONS]


def test_an_older_database_gets_only_the_missing_steps(store_url: str, clock: FakeClock) -> None:
    with Store.open(store_url, clock=clock) as old:
        old.sync.commit_tick(cursors={"cxone": "kept"})
        engine = old.engine

        assert migrate(engine, [*MIGRATIONS, ADD_NOTE]) == ADD_NOTE.version

        columns = {c["name"] for c in inspect(engine).get_columns("cursor")}
        assert "note" in columns
        assert _applied_versions(engine) == [*(s.version for s in MIGRATIONS), ADD_NOTE.version]
        assert old.sync.get_cursor("cxone") == "kept"


def _insert_as_version_2(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """Rows into a table as schema version 2 has it (timestamps given in UTC, as it stored them)."""
    conn.execute(Table(table, MetaData(), autoload_with=conn).insert(), rows)


def test_a_version_2_store_keeps_every_agents_memory_and_the_writes_it_holds(
    fresh_url: FreshUrl, clock: FakeClock
) -> None:
    url = fresh_url()
    t0 = clock.now
    memories = {agent: {"v": 1, "agent": agent, "cxone": {"state": "Available"}} for agent in (1, 2, 3)}
    writes = [  # as the sync mirrored its memory's commands: at most one per agent and side
        {"command_id": "1-sf-1", "agent_id": 1, "side": "salesforce", "target": "On_Break", "issued_at": t0,
         "attempts": 1, "next_attempt_at": None, "status": "pending", "last_error": None},
        {"command_id": "1-cx-2", "agent_id": 1, "side": "cxone", "target": "Unavailable: Break",
         "issued_at": t0 + timedelta(seconds=1), "attempts": 1, "next_attempt_at": None, "status": "failed",
         "last_error": "the agent is logged out"},
        {"command_id": "2-sf-1", "agent_id": 2, "side": "salesforce", "target": "Lunch",
         "issued_at": t0 + timedelta(seconds=2), "attempts": 3, "next_attempt_at": t0 + timedelta(seconds=9),
         "status": "gave_up", "last_error": "the console may be closed"},
    ]
    engine = create_store_engine(normalise_store_url(url))
    try:
        assert migrate(engine, MIGRATIONS[:2]) == 2
        with engine.begin() as conn:
            _insert_as_version_2(conn, "agent_state", [
                {"agent_id": agent, "memory": memory, "cxone_state": "Available", "sf_status": None,
                 "truth_side": "cxone", "updated_at": t0}
                for agent, memory in memories.items()
            ])
            _insert_as_version_2(conn, "inflight_write", writes)
    finally:
        engine.dispose()

    with Store.open(url, clock=clock) as upgraded:
        assert upgraded.schema_version() == LATEST
        assert upgraded.sync.load_agent_memory() == memories
        assert upgraded.reports.write_counts() == {
            WriteStatus.PENDING: 1, WriteStatus.FAILED: 1, WriteStatus.GAVE_UP: 1
        }
        listed = [w.model_dump(exclude={"save_id"}) for w in upgraded.reports.list_writes()]
        assert listed == writes
        tables = set(inspect(upgraded.engine).get_table_names())
        assert "inflight_write" not in tables
        upgraded_schema = _schema(upgraded.engine)

        upgraded.sync.commit_tick(agents=[{"agent_id": 1, "memory": {"v": 1, "settled": True}, "writes": []}])
        assert [w.command_id for w in upgraded.reports.list_writes()] == ["2-sf-1"]

    with Store.open(fresh_url()) as fresh:
        assert upgraded_schema == _schema(fresh.engine)


def test_a_version_3_store_keeps_its_rule_as_it_behaved_owned_by_the_config(fresh_url: FreshUrl, clock: FakeClock) -> None:
    url = fresh_url()
    engine = create_store_engine(normalise_store_url(url))
    try:
        assert migrate(engine, MIGRATIONS[:3]) == 3
        with engine.begin() as conn:
            _insert_as_version_2(conn, "presence_rule", [{
                "name": "Default Presence", "skip_validation": True, "updated_at": clock.now,
                "publisher_rows": [{"acd": "Available", "salesforce": "Available_for_Chats"}], "subscriber_rows": [],
            }])
            _insert_as_version_2(conn, "audit", [{
                "at": clock.now, "agent_id": 1, "direction": "cxone->salesforce", "outcome": "write",
                "reason": "rule 'Default Presence' maps CXone Available to Available_for_Chats",
            }])
    finally:
        engine.dispose()

    with Store.open(url, clock=clock) as upgraded:
        assert upgraded.schema_version() == LATEST
        [rule] = upgraded.setup.list_rules()
        # Onboarded before logouts were synced: until onboarding stores it again, a logout changes nothing.
        assert (rule.on_cxone_logout, rule.on_omni_logout, rule.managed_by_config) == ("nothing", "nothing", True)
        assert [row.rule_name for row in upgraded.reports.audit_for()] == [None]
        assert upgraded.setup.setup_revision() == 0
        upgraded_schema = _schema(upgraded.engine)

    with Store.open(fresh_url()) as fresh:
        assert upgraded_schema == _schema(fresh.engine)


def test_a_database_from_a_newer_presence_sync_is_refused(store_url: str) -> None:
    with Store.open(store_url) as store:
        migrate(store.engine, [*MIGRATIONS, ADD_NOTE])

    with pytest.raises(SchemaTooNewError) as refused:
        Store.open(store_url)

    message = str(refused.value)
    assert f"version {ADD_NOTE.version}" in message
    assert "newer presence-sync" in message
    assert "upgrade" in message


def test_a_failing_step_leaves_the_database_as_it_was(store_url: str) -> None:
    def half_done(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE half_done (id INTEGER PRIMARY KEY)"))
        conn.execute(text("ALTER TABLE no_such_table ADD COLUMN x INTEGER"))

    with Store.open(store_url) as store:
        broken = Migration(LATEST + 1, "a step that fails half-way", half_done)

        with pytest.raises(MigrationError) as failed:
            migrate(store.engine, [*MIGRATIONS, broken])

        assert f"schema step {LATEST + 1} (a step that fails half-way) failed" in str(failed.value)
        assert "Nothing was changed" in str(failed.value)
        assert store.schema_version() == LATEST
        assert "half_done" not in inspect(store.engine).get_table_names()


def test_migration_versions_must_count_up_from_one(store: Store) -> None:
    gap = Migration(LATEST + 2, "skips a version", _add_note_to_cursor)

    with pytest.raises(ValueError, match="without gaps"):
        migrate(store.engine, [*MIGRATIONS, gap])


def test_processes_starting_together_create_the_schema_once(store_url: str) -> None:
    starters = 4
    barrier = threading.Barrier(starters)
    versions: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            with Store.open(store_url) as store:
                versions.append(store.schema_version())
        except BaseException as exc:  # collected: a thread's exception would vanish
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert versions == [LATEST] * starters
    with Store.open(store_url) as store:
        assert _applied_versions(store.engine) == [step.version for step in MIGRATIONS]


# --- URLs and unreachable databases (backend-independent) --------------------------------


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://ps@db.example:5432/presence", "postgresql+psycopg"),
        ("postgres://ps@db.example/presence", "postgresql+psycopg"),
        ("postgresql+psycopg://ps@db.example/presence", "postgresql+psycopg"),
        ("sqlite:///.presence-sync/state.db", "sqlite"),
    ],
)
def test_store_urls_are_normalised(given: str, driver: str) -> None:
    assert normalise_store_url(given).drivername == driver


@pytest.mark.parametrize(
    ("given", "complaint", "fix"),
    [
        ("mysql://admin:hunter2@db/presence", "'mysql' databases are not supported", "sqlite:///"),
        ("postgresql+asyncpg://admin:hunter2@db/pres", "driver 'asyncpg' is not", "postgresql://"),
        ("sqlite://", "in-memory SQLite database", "sqlite:///path"),
        ("sqlite:///:memory:", "in-memory SQLite database", "sqlite:///path"),
        ("just some words hunter2", "is not a database URL", "postgresql://"),
    ],
)
def test_unusable_store_urls_are_refused_with_the_fix(given: str, complaint: str, fix: str) -> None:
    with pytest.raises(InvalidStoreUrlError) as refused:
        Store.open(given)

    message = str(refused.value)
    assert complaint in message
    assert fix in message
    assert "hunter2" not in message


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_postgres_is_reported_without_its_password() -> None:
    url = SecretStr(f"postgresql://admin:hunter2@127.0.0.1:{_free_port()}/presence")

    with pytest.raises(StoreUnavailableError) as unreachable:
        Store.open(url)

    message = str(unreachable.value)
    assert "127.0.0.1" in message
    assert "PostgreSQL server is up" in message
    assert "hunter2" not in message


def test_the_store_repr_hides_the_password() -> None:
    engine = create_store_engine(normalise_store_url("postgresql://admin:hunter2@db/presence"))
    try:
        shown = repr(Store(engine))
    finally:
        engine.dispose()

    assert "hunter2" not in shown
    assert "admin:***@db" in shown


def test_a_file_that_is_not_a_database_is_reported(tmp_path: Path) -> None:
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("shopping list: milk, eggs\n" * 100)

    with pytest.raises(StoreUnavailableError, match="file is not a database"):
        Store.open(f"sqlite:///{not_a_db}")


def test_a_sqlite_folder_that_cannot_be_created_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    with pytest.raises(StoreUnavailableError, match="cannot create the folder"):
        Store.open(f"sqlite:///{blocker / 'state' / 'state.db'}")
