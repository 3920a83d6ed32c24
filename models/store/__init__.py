"""The presence-sync state store: SQLModel tables on SQLite or PostgreSQL, and the ``Store``.

Usage::

    from presence_sync.models.store import Store
    with Store.open("sqlite:///.presence-sync/state.db") as store:
        store.upsert_links(links, prune=True)
"""

from presence_sync.models.store.connection import normalise_store_url
from presence_sync.models.store.errors import (
    InvalidStoreUrlError,
    LeaseLostError,
    MigrationError,
    SchemaTooNewError,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
)
from presence_sync.models.store.migrations import MIGRATIONS, Migration, migrate
from presence_sync.models.store.rows import AgentStateRow, AuditRow, InflightWriteRow
from presence_sync.models.store.store import Lease, LinkChanges, RuleChange, Store, utc_now
from presence_sync.models.store.tables import (
    AccountMapping,
    AgentLink,
    AgentState,
    AssignmentKind,
    Audit,
    Cursor,
    CxoneSession,
    InflightWrite,
    LinkedBy,
    OnboardingStep,
    PresenceRule,
    RuleAssignment,
    SeenSpell,
    StepOutcome,
    SyncLease,
    WriteStatus,
)

__all__ = [
    "MIGRATIONS",
    "AccountMapping",
    "AgentLink",
    "AgentState",
    "AgentStateRow",
    "AssignmentKind",
    "Audit",
    "AuditRow",
    "Cursor",
    "CxoneSession",
    "InflightWrite",
    "InflightWriteRow",
    "InvalidStoreUrlError",
    "Lease",
    "LeaseLostError",
    "LinkChanges",
    "LinkedBy",
    "Migration",
    "MigrationError",
    "OnboardingStep",
    "PresenceRule",
    "RuleAssignment",
    "RuleChange",
    "SchemaTooNewError",
    "SeenSpell",
    "StepOutcome",
    "Store",
    "StoreConflictError",
    "StoreError",
    "StoreUnavailableError",
    "SyncLease",
    "WriteStatus",
    "migrate",
    "normalise_store_url",
    "utc_now",
]
