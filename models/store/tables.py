"""The state store's tables: what onboarding learned and what the sync must remember.

These SQLModel classes are the current schema and the row types the ``Store`` takes and
returns. A change here needs a new step in ``migrations.py``; a test checks that the
migrated schema matches these classes. No column holds a secret: credentials live in
the config (``SecretStr``) and never reach the database.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from presence_sync.models.store.sqltypes import BigIntId, EnumText, Json


class StepOutcome(StrEnum):
    """What an onboarding step did (or would do, for a plan)."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    PLANNED = "planned"
    FAILED = "failed"
    SKIPPED = "skipped"


class AssignmentKind(StrEnum):
    """What a presence rule is assigned to: a CXone team, or one agent (overrides the team's)."""

    TEAM = "team"
    USER = "user"


class LinkedBy(StrEnum):
    """How a CXone agent was matched to its Salesforce user."""

    EMAIL = "email"
    USERNAME = "username"
    OVERRIDE = "override"


class WriteStatus(StrEnum):
    """A write: waiting for its echo, failed for good, or retried until we gave up."""

    PENDING = "pending"
    FAILED = "failed"
    GAVE_UP = "gave_up"


def _agent_id_key() -> Any:
    # CXone assigns agent ids; the database must never invent one (no SERIAL on PostgreSQL).
    return Field(primary_key=True, sa_column_kwargs={"autoincrement": False})


def _stamped_by_store() -> Any:
    # Filled in by the Store when the row is written; callers leave it None.
    return Field(default=None, nullable=False)


# --- onboarding ---------------------------------------------------------------------------


class AccountMapping(SQLModel, table=True):
    """The CXone tenant <-> Salesforce org mapping of one contact center (no secret values)."""

    __tablename__ = "account_mapping"

    cxone_tenant_id: str = Field(primary_key=True)
    cxone_access_key_user: str
    sf_environment: str  # "production" | "sandbox"
    sf_login_host: str  # login/test host, or the org's My Domain
    sf_auth_flow: str  # "password" | "client_credentials" | "jwt"
    sf_org_id: str | None = None
    verified_at: datetime | None = None
    updated_at: datetime | None = _stamped_by_store()


class PresenceRule(SQLModel, table=True):
    """A presence rule as onboarding stored it; rows are ``{"acd": ..., "salesforce": ...}``, the logout
    settings as the config writes them ("Offline", "Unavailable: Lunch", "nothing", ...).

    ``managed_by_config``: onboarding stored it from the config, which therefore owns it: it is
    removed when the config no longer lists it (a rule stored otherwise is left alone).
    """

    __tablename__ = "presence_rule"

    name: str = Field(primary_key=True)
    skip_validation: bool
    publisher_rows: list[dict[str, str]] = Field(default_factory=list, sa_type=Json)
    subscriber_rows: list[dict[str, str]] = Field(default_factory=list, sa_type=Json)
    updated_at: datetime | None = _stamped_by_store()
    on_cxone_logout: str = "Offline"
    on_omni_logout: str = "Unavailable"
    managed_by_config: bool = False


class RuleAssignment(SQLModel, table=True):
    """One team or agent assigned to a rule; each target has at most one rule."""

    __tablename__ = "rule_assignment"

    kind: AssignmentKind = Field(primary_key=True, sa_type=EnumText(AssignmentKind))
    target_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    rule_name: str = Field(foreign_key="presence_rule.name", ondelete="CASCADE", index=True)
    target_name: str


class AgentLink(SQLModel, table=True):
    """A CXone agent linked to its Salesforce user (one Salesforce user per agent)."""

    __tablename__ = "agent_link"

    cxone_agent_id: int = _agent_id_key()
    cxone_username: str
    cxone_email: str | None = None
    team_id: int | None = None
    team_name: str | None = None
    sf_user_id: str = Field(unique=True, index=True)
    sf_username: str
    linked_by: LinkedBy = Field(sa_type=EnumText(LinkedBy))
    updated_at: datetime | None = _stamped_by_store()


class OnboardingStep(SQLModel, table=True):
    """The recorded outcome of one onboarding step in one run."""

    __tablename__ = "onboarding_step"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    run_id: str = Field(index=True)
    step: str
    outcome: StepOutcome = Field(sa_type=EnumText(StepOutcome))
    summary: str
    details: dict[str, Any] = Field(default_factory=dict, sa_type=Json)
    at: datetime | None = _stamped_by_store()


# --- sync ----------------------------------------------------------------------------------


class AgentState(SQLModel, table=True):
    """The engine's memory of one agent, as the engine serialised it: the one record of it.

    ``save_id`` is stamped by the store on every save of the memory (one id per commit); the
    rows of ``AgentWrite`` saved from this memory carry the same id.
    """

    __tablename__ = "agent_state"

    agent_id: int = _agent_id_key()
    memory: dict[str, Any] = Field(default_factory=dict, sa_type=Json)
    updated_at: datetime | None = _stamped_by_store()
    save_id: int | None = Field(default=None, nullable=False, sa_type=BigInteger)


class AgentWrite(SQLModel, table=True):
    """A write an agent's memory holds on one side: waiting for its echo (pending), or failed
    (failed, gave_up). Reports read these rows instead of every agent's memory.

    The store writes them with the memory they come from, in the same transaction, and a
    row counts only while its ``save_id`` is its agent's ``AgentState.save_id``: a write the
    memory no longer holds drops out when the memory is next saved, with no statement of its
    own. At most one row per agent and side, so stale rows never pile up.
    """

    __tablename__ = "agent_write"

    agent_id: int = _agent_id_key()
    side: str = Field(primary_key=True)  # the system written to: "cxone" | "salesforce"
    save_id: int = Field(sa_type=BigInteger)
    command_id: str
    target: str
    issued_at: datetime
    attempts: int = 1
    next_attempt_at: datetime | None = None
    status: WriteStatus = Field(
        default=WriteStatus.PENDING, sa_type=EnumText(WriteStatus), index=True
    )
    last_error: str | None = None


class Cursor(SQLModel, table=True):
    """A poll position (CXone ``lastPollTime``, the Salesforce spell watermark)."""

    __tablename__ = "cursor"

    name: str = Field(primary_key=True)
    value: str
    updated_at: datetime | None = _stamped_by_store()


class SeenSpell(SQLModel, table=True):
    """A Salesforce presence spell already processed (de-duplicates the poll overlap)."""

    __tablename__ = "seen_spell"

    spell_id: str = Field(primary_key=True)
    seen_at: datetime = Field(index=True)


class CxoneSession(SQLModel, table=True):
    """The CXone agent session last joined for an agent: reused by the next window (no join request)."""

    __tablename__ = "cxone_session"

    agent_id: int = _agent_id_key()
    session_id: str
    updated_at: datetime | None = _stamped_by_store()


class Audit(SQLModel, table=True):
    """One sync decision: what was observed, what we did about it, and why."""

    __tablename__ = "audit"
    __table_args__ = (
        Index("ix_audit_agent_id_at", "agent_id", "at"),
        Index("ix_audit_direction_at", "direction", "at"),
        Index("ix_audit_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    at: datetime
    agent_id: int
    direction: str  # "cxone->salesforce" | "salesforce->cxone"
    outcome: str  # the engine's vocabulary: write, echo, unmapped, conflict, failed, ...
    from_value: str | None = None
    to_value: str | None = None
    rule_row: str | None = None
    reason: str
    observed_at: datetime | None = None
    command_id: str | None = None  # the write this decision issued or matched as its echo
    latency_ms: float | None = None
    run_id: str | None = None
    rule_name: str | None = None  # the presence rule that decided (None: the agent had none)


class SetupRevision(SQLModel, table=True):
    """How many times the setup the sync reads at start (rules, assignments, links) has changed: a
    running sync compares it now and then and reloads when it moved. One row, ``name`` "setup"."""

    __tablename__ = "setup_revision"

    name: str = Field(primary_key=True)
    revision: int = Field(sa_type=BigInteger)
    updated_at: datetime


class SyncLease(SQLModel, table=True):
    """Who may sync a set of agents right now; the fencing token grows on every acquisition."""

    __tablename__ = "sync_lease"

    name: str = Field(primary_key=True)
    holder: str
    fencing_token: int
    acquired_at: datetime
    expires_at: datetime
    next_holder: str | None = None  # a run waiting for the lease: release hands it straight over
    next_until: datetime | None = None  # the waiter's registration lapses then unless it asks again


class StoreOwner(SQLModel, table=True):
    """The contact center the store belongs to (one row): see ``identity.py``."""

    __tablename__ = "store_owner"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    cxone_tenant_id: str
    sf_org_id: str
    claimed_at: datetime


STORE_TABLES = tuple(
    model.__table__  # type: ignore[attr-defined]
    for model in (
        AccountMapping,
        PresenceRule,
        RuleAssignment,
        AgentLink,
        OnboardingStep,
        AgentState,
        AgentWrite,
        Cursor,
        SeenSpell,
        Audit,
        SyncLease,
        CxoneSession,
        StoreOwner,
        SetupRevision,
    )
)
