"""The ``Store``: opens the database once and hands out its parts, one per job.

    store.setup     SetupRecords   account mapping, presence rules, agent links, onboarding steps
    store.sync      SyncState      agent memory, audit, cursors, spells, sessions (``commit_tick``)
    store.leases    Leases         who may sync now, and fencing
    store.reports   Reports        what status, audit and validate read back
    store.identity  StoreIdentity  which contact center (CXone tenant, Salesforce org) it belongs to
"""

from typing import Self

from pydantic import SecretStr
from sqlalchemy import Engine

from presence_sync.models.store.connection import (
    create_store_engine,
    normalise_store_url,
    redact,
    transaction,
)
from presence_sync.models.store.identity import StoreIdentity
from presence_sync.models.store.leases import Leases
from presence_sync.models.store.migrations import current_version, migrate
from presence_sync.models.store.part import Clock, utc_now
from presence_sync.models.store.reports import Reports
from presence_sync.models.store.setup_records import SetupRecords
from presence_sync.models.store.sync_state import SyncState


class Store:
    """The presence-sync state store on SQLite or PostgreSQL: one engine, four parts over it.

    Usage::

        with Store.open("sqlite:///.presence-sync/state.db") as store:
            store.setup.upsert_links(links, prune=True)
            store.sync.commit_tick(agents=rows, cursors={"cxone": poll_time}, lease=lease)
            counts = store.reports.write_counts()
    """

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        """Wrap an engine whose schema is already migrated; use ``Store.open`` instead."""
        self._engine = engine
        self.setup = SetupRecords(engine, clock)
        self.sync = SyncState(engine, clock)
        self.leases = Leases(engine, clock)
        self.reports = Reports(engine, clock)
        self.identity = StoreIdentity(engine, clock)

    @classmethod
    def open(cls, url: str | SecretStr, *, clock: Clock = utc_now) -> Self:
        """Open the store at ``url`` (a secret when it carries a password), creating or
        migrating its schema. Raises ``InvalidStoreUrlError``, ``StoreUnavailableError``,
        ``SchemaTooNewError`` or ``MigrationError``, each with the fix in its message.
        """
        raw = url.get_secret_value() if isinstance(url, SecretStr) else url
        engine = create_store_engine(normalise_store_url(raw))
        try:
            migrate(engine, now=clock())
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock=clock)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({redact(self._engine.url)!r})"

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and diagnostics)."""
        return self._engine

    def schema_version(self) -> int:
        """The database's schema version."""
        with transaction(self._engine, write=False) as conn:
            return current_version(conn)
