"""Schema versions of the state store and the steps between them.

``schema_version`` holds one row per applied step. ``migrate`` runs, in one transaction and
under a lock (so two processes starting together don't both create tables), every step the
database has not seen yet, and refuses a database written by a newer presence-sync.

Steps are frozen history: step 1 spells out the version-1 tables instead of creating
whatever ``tables.py`` says today, so that a later step (say, adding a column) applies the
same way to a fresh database as to an old one. To change the schema, edit ``tables.py`` and
append a step; ``tests/models/test_store_migrations.py`` fails until the two agree.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zlib import crc32

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlmodel.sql.sqltypes import UTCDateTime

from presence_sync.models.store.connection import describe_db_error, transaction
from presence_sync.models.store.errors import MigrationError, SchemaTooNewError
from presence_sync.models.store.sqltypes import BigIntId, Json


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: ``apply`` runs inside the migration transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


schema_version_table = Table(
    "schema_version",
    MetaData(),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String, nullable=False),
    Column("applied_at", UTCDateTime(), nullable=False),
)

# Held for the migration transaction on PostgreSQL; SQLite's write lock does the same job.
_MIGRATION_LOCK_KEY = crc32(b"presence-sync/state-store/migrations")


def _create_version_1(conn: Connection) -> None:
    md = MetaData()
    Table(
        "account_mapping",
        md,
        Column("cxone_tenant_id", String, primary_key=True),
        Column("cxone_access_key_user", String, nullable=False),
        Column("sf_environment", String, nullable=False),
        Column("sf_login_host", String, nullable=False),
        Column("sf_auth_flow", String, nullable=False),
        Column("sf_org_id", String),
        Column("verified_at", UTCDateTime()),
        Column("updated_at", UTCDateTime(), nullable=False),
    )
    Table(
        "presence_rule",
        md,
        Column("name", String, primary_key=True),
        Column("skip_validation", Boolean, nullable=False),
        Column("publisher_rows", Json, nullable=False),
        Column("subscriber_rows", Json, nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    )
    Table(
        "rule_assignment",
        md,
        Column("kind", String, primary_key=True),
        Column("target_id", Integer, primary_key=True, autoincrement=False),
        Column(
            "rule_name",
            String,
            ForeignKey("presence_rule.name", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("target_name", String, nullable=False),
    )
    Table(
        "agent_link",
        md,
        Column("cxone_agent_id", Integer, primary_key=True, autoincrement=False),
        Column("cxone_username", String, nullable=False),
        Column("cxone_email", String),
        Column("team_id", Integer),
        Column("team_name", String),
        Column("sf_user_id", String, nullable=False, unique=True, index=True),
        Column("sf_username", String, nullable=False),
        Column("linked_by", String, nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    )
    Table(
        "onboarding_step",
        md,
        Column("id", BigIntId, primary_key=True),
        Column("run_id", String, nullable=False, index=True),
        Column("step", String, nullable=False),
        Column("outcome", String, nullable=False),
        Column("summary", String, nullable=False),
        Column("details", Json, nullable=False),
        Column("at", UTCDateTime(), nullable=False),
    )
    Table(
        "agent_state",
        md,
        Column("agent_id", Integer, primary_key=True, autoincrement=False),
        Column("memory", Json, nullable=False),
        Column("cxone_state", String),
        Column("sf_status", String),
        Column("truth_side", String),
        Column("updated_at", UTCDateTime(), nullable=False),
    )
    Table(
        "inflight_write",
        md,
        Column("command_id", String, primary_key=True),
        Column("agent_id", Integer, nullable=False, index=True),
        Column("side", String, nullable=False),
        Column("target", String, nullable=False),
        Column("issued_at", UTCDateTime(), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", UTCDateTime()),
        Column("status", String, nullable=False, index=True),
        Column("last_error", String),
    )
    Table(
        "cursor",
        md,
        Column("name", String, primary_key=True),
        Column("value", String, nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    )
    Table(
        "seen_spell",
        md,
        Column("spell_id", String, primary_key=True),
        Column("seen_at", UTCDateTime(), nullable=False, index=True),
    )
    Table(
        "audit",
        md,
        Column("id", BigIntId, primary_key=True),
        Column("at", UTCDateTime(), nullable=False),
        Column("agent_id", Integer, nullable=False),
        Column("direction", String, nullable=False),
        Column("outcome", String, nullable=False),
        Column("from_value", String),
        Column("to_value", String),
        Column("rule_row", String),
        Column("reason", String, nullable=False),
        Column("observed_at", UTCDateTime()),
        Column("command_id", String),
        Column("latency_ms", Float),
        Column("run_id", String),
        Index("ix_audit_agent_id_at", "agent_id", "at"),
        Index("ix_audit_direction_at", "direction", "at"),
        Index("ix_audit_at", "at"),
    )
    Table(
        "sync_lease",
        md,
        Column("name", String, primary_key=True),
        Column("holder", String, nullable=False),
        Column("fencing_token", Integer, nullable=False),
        Column("acquired_at", UTCDateTime(), nullable=False),
        Column("expires_at", UTCDateTime(), nullable=False),
    )
    md.create_all(conn)


def _create_cxone_sessions(conn: Connection) -> None:
    Table(
        "cxone_session",
        MetaData(),
        Column("agent_id", Integer, primary_key=True, autoincrement=False),
        Column("session_id", String, nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    ).create(conn)


def _keep_writes_with_their_memory(conn: Connection) -> None:
    # The agent's memory (JSON) becomes its one record: the three query columns nobody read go,
    # and the in-flight writes the runner mirrored by hand become rows saved with the memory,
    # valid while their save_id is the agent's. Existing rows get save_id 0 on both sides.
    Table(
        "agent_write",
        MetaData(),
        Column("agent_id", Integer, primary_key=True, autoincrement=False),
        Column("side", String, primary_key=True),
        Column("save_id", BigInteger, nullable=False),
        Column("command_id", String, nullable=False),
        Column("target", String, nullable=False),
        Column("issued_at", UTCDateTime(), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", UTCDateTime()),
        Column("status", String, nullable=False, index=True),
        Column("last_error", String),
    ).create(conn)
    # At most one write per agent and side: the memory holds one command per side.
    conn.execute(text(
        "INSERT INTO agent_write (agent_id, side, save_id, command_id, target, issued_at, attempts, "
        "next_attempt_at, status, last_error) "
        "SELECT agent_id, side, 0, command_id, target, issued_at, attempts, next_attempt_at, status, "
        "last_error FROM inflight_write AS w WHERE NOT EXISTS (SELECT 1 FROM inflight_write AS newer "
        "WHERE newer.agent_id = w.agent_id AND newer.side = w.side AND (newer.issued_at > w.issued_at "
        "OR (newer.issued_at = w.issued_at AND newer.command_id > w.command_id)))"
    ))
    conn.execute(text("DROP TABLE inflight_write"))
    if conn.dialect.name == "postgresql":
        conn.execute(text(
            "ALTER TABLE agent_state DROP COLUMN cxone_state, DROP COLUMN sf_status, "
            "DROP COLUMN truth_side, ADD COLUMN save_id BIGINT NOT NULL DEFAULT 0"
        ))
        conn.execute(text("ALTER TABLE agent_state ALTER COLUMN save_id DROP DEFAULT"))
        return
    # SQLite before 3.35 cannot drop a column: copy the table instead.
    Table(
        "agent_state_v3",
        MetaData(),
        Column("agent_id", Integer, primary_key=True, autoincrement=False),
        Column("memory", Json, nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("save_id", BigInteger, nullable=False),
    ).create(conn)
    conn.execute(text(
        "INSERT INTO agent_state_v3 (agent_id, memory, updated_at, save_id) "
        "SELECT agent_id, memory, updated_at, 0 FROM agent_state"
    ))
    conn.execute(text("DROP TABLE agent_state"))
    conn.execute(text("ALTER TABLE agent_state_v3 RENAME TO agent_state"))


def _record_the_contact_center(conn: Connection) -> None:
    Table(
        "store_owner",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("cxone_tenant_id", String, nullable=False),
        Column("sf_org_id", String, nullable=False),
        Column("claimed_at", UTCDateTime(), nullable=False),
    ).create(conn)
    # A store onboarded before: its one account mapping says whose it is.
    mapped = conn.execute(text("SELECT cxone_tenant_id, sf_org_id FROM account_mapping")).all()
    if len(mapped) == 1 and mapped[0].sf_org_id:
        conn.execute(
            text("INSERT INTO store_owner (id, cxone_tenant_id, sf_org_id, claimed_at) VALUES (1, :t, :o, :at)"),
            {"t": mapped[0].cxone_tenant_id, "o": mapped[0].sf_org_id, "at": datetime.now(UTC)},
        )


def _several_rules(conn: Connection) -> None:
    # Several rules, each with its logout settings, owned by the config that onboarded them; the audit
    # names the rule of each decision; a revision counter tells a running sync its setup changed.
    # Rules stored before keep what they did then: a logout changed nothing on the other side (until
    # onboarding stores them again from the config), and they were all stored by onboarding.
    true = "true" if conn.dialect.name == "postgresql" else "1"
    added = (
        ("presence_rule", "on_cxone_logout", "VARCHAR NOT NULL DEFAULT 'nothing'"),
        ("presence_rule", "on_omni_logout", "VARCHAR NOT NULL DEFAULT 'nothing'"),
        ("presence_rule", "managed_by_config", f"BOOLEAN NOT NULL DEFAULT {true}"),
        ("audit", "rule_name", "VARCHAR"),
    )
    for table, column, definition in added:
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {definition}"))
    if conn.dialect.name == "postgresql":  # SQLite cannot drop a default; its rows all have values anyway
        for column in ("on_cxone_logout", "on_omni_logout", "managed_by_config"):
            conn.execute(text(f"ALTER TABLE presence_rule ALTER COLUMN {column} DROP DEFAULT"))
    Table(
        "setup_revision",
        MetaData(),
        Column("name", String, primary_key=True),
        Column("revision", BigInteger, nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    ).create(conn)


def _lease_successors(conn: Connection) -> None:
    # A run waiting for a held lease registers as its next holder, so that release hands the lease
    # straight over instead of leaving it free until the waiter's next try.
    when = UTCDateTime().compile(dialect=conn.dialect)
    conn.execute(text("ALTER TABLE sync_lease ADD COLUMN next_holder VARCHAR"))
    conn.execute(text(f"ALTER TABLE sync_lease ADD COLUMN next_until {when}"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create the onboarding and sync tables", _create_version_1),
    Migration(2, "keep CXone agent sessions from one sync window to the next", _create_cxone_sessions),
    Migration(3, "one record of an agent's memory, with the writes it holds", _keep_writes_with_their_memory),
    Migration(4, "record which contact center (CXone tenant, Salesforce org) the store belongs to",
              _record_the_contact_center),
    Migration(5, "several presence rules with logout settings, the rule in the audit, a setup revision", _several_rules),
    Migration(6, "a lease's next holder, to whom release hands it over", _lease_successors),
)


def current_version(conn: Connection) -> int:
    """The database's schema version; 0 when presence-sync never wrote to it."""
    if not conn.dialect.has_table(conn, schema_version_table.name):
        return 0
    return conn.execute(select(func.max(schema_version_table.c.version))).scalar_one() or 0


def migrate(
    engine: Engine, migrations: Sequence[Migration] = MIGRATIONS, *, now: datetime | None = None
) -> int:
    """Bring the database up to the newest schema this code knows; return its version.

    Usage: ``migrate(create_engine("sqlite:///state.db"))`` -> ``1``. Raises
    ``SchemaTooNewError`` for a database written by a newer presence-sync and
    ``MigrationError`` when a step fails (the database is then left as it was).
    """
    _check_sequence(migrations)
    known = migrations[-1].version
    applied_at = now or datetime.now(UTC)
    with transaction(engine, write=True) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(CAST(:key AS BIGINT))"),
                {"key": _MIGRATION_LOCK_KEY},
            )
        schema_version_table.create(conn, checkfirst=True)
        version = current_version(conn)
        if version > known:
            raise SchemaTooNewError(
                f"this database is at schema version {version}, written by a newer presence-sync "
                f"(this one knows up to version {known}); upgrade presence-sync to use it"
            )
        for step in migrations[version:]:
            _apply(conn, step, applied_at)
    return max(version, known)


def _apply(conn: Connection, step: Migration, applied_at: datetime) -> None:
    try:
        step.apply(conn)
    except DBAPIError as exc:
        raise MigrationError(
            f"schema step {step.version} ({step.description}) failed: "
            f"{describe_db_error(exc)}. Nothing was changed; if the database "
            "holds tables that presence-sync did not create, point sync.store_url at an "
            "empty database"
        ) from exc
    conn.execute(
        insert(schema_version_table),
        {"version": step.version, "description": step.description, "applied_at": applied_at},
    )


def _check_sequence(migrations: Sequence[Migration]) -> None:
    versions = [step.version for step in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must run 1, 2, 3, ... without gaps; got {versions}")
