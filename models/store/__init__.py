"""The presence-sync state store: SQLModel tables on SQLite or PostgreSQL, and the ``Store``
that opens them and hands out one part per job (``store.setup``, ``store.sync``,
``store.leases``, ``store.reports``).

Usage::

    from presence_sync.models.store import Store
    with Store.open("sqlite:///.presence-sync/state.db") as store:
        store.setup.upsert_links(links, prune=True)
"""

from presence_sync.models.store.connection import normalise_store_url
from presence_sync.models.store.errors import (
    InvalidStoreUrlError,
    LeaseLostError,
    MigrationError,
    SchemaTooNewError,
    StoreConflictError,
    StoreError,
    StoreOwnedElsewhereError,
    StoreUnavailableError,
)
from presence_sync.models.store.identity import ContactCenter, StoreIdentity
from presence_sync.models.store.leases import Lease, Leases
from presence_sync.models.store.migrations import MIGRATIONS, Migration, migrate
from presence_sync.models.store.part import utc_now
from presence_sync.models.store.reports import Reports
from presence_sync.models.store.rows import AgentStateRow, AuditRow, WriteRow
from presence_sync.models.store.setup_records import LinkChanges, RuleChange, RulesChange, SetupRecords
from presence_sync.models.store.store import Store
from presence_sync.models.store.sync_state import SyncState
from presence_sync.models.store.tables import (
    AccountMapping,
    AgentLink,
    AgentState,
    AgentWrite,
    AssignmentKind,
    Audit,
    Cursor,
    CxoneSession,
    LinkedBy,
    OnboardingStep,
    PresenceRule,
    RuleAssignment,
    SeenSpell,
    StepOutcome,
    SetupRevision,
    StoreOwner,
    SyncLease,
    WriteStatus,
)

__all__ = [
    "MIGRATIONS",
    "AccountMapping",
    "AgentLink",
    "AgentState",
    "AgentStateRow",
    "AgentWrite",
    "AssignmentKind",
    "Audit",
    "AuditRow",
    "ContactCenter",
    "Cursor",
    "CxoneSession",
    "InvalidStoreUrlError",
    "Lease",
    "Leases",
    "LeaseLostError",
    "LinkChanges",
    "LinkedBy",
    "Migration",
    "MigrationError",
    "OnboardingStep",
    "PresenceRule",
    "Reports",
    "RuleAssignment",
    "RuleChange",
    "RulesChange",
    "SchemaTooNewError",
    "SeenSpell",
    "SetupRecords",
    "StepOutcome",
    "Store",
    "StoreConflictError",
    "StoreError",
    "StoreIdentity",
    "StoreOwnedElsewhereError",
    "StoreOwner",
    "StoreUnavailableError",
    "SetupRevision",
    "SyncLease",
    "SyncState",
    "WriteRow",
    "WriteStatus",
    "migrate",
    "normalise_store_url",
    "utc_now",
]
