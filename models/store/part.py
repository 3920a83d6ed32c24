"""What the parts of the store share: one engine, one clock, and short transactions on them.

Every method of a part is one short transaction with a fixed number of statements, whatever the
number of agents (bulk ``executemany`` upserts; never one query per agent). Methods are
synchronous and thread-safe; the async sync loop calls them through ``asyncio.to_thread``.
"""

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Column, ColumnElement, Connection, Engine, Insert, Select, Table, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from presence_sync.models.store.connection import transaction

Clock = Callable[[], datetime]
M = TypeVar("M", bound=SQLModel)


def utc_now() -> datetime:
    """The store's default clock."""
    return datetime.now(UTC)


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table of a SQLModel table class."""
    return model.__table__  # type: ignore[attr-defined, no-any-return]


def name_family(column: Column[str], base: str) -> ColumnElement[bool]:
    """``column`` is ``base`` or ``base:<anything>`` (a shard's lease or cursor, e.g. ``sync:2/3``)."""
    escaped = base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(column == base, column.like(f"{escaped}:%", escape="\\"))


def check_limit(limit: int) -> None:
    """Refuse a query limit that could return nothing."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")


class StorePart:
    """Base of ``SetupRecords``, ``SyncState``, ``Leases`` and ``Reports``: the engine they all
    share (opened once by ``Store``), the clock that stamps rows, and transactions on the engine.

    Usage (a part of one's own)::

        class Notes(StorePart):
            def count(self) -> int:
                with self._read() as conn:
                    return conn.execute(select(func.count()).select_from(notes)).scalar_one()
    """

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert: Callable[[Table], Any] = dialect.insert

    def _read(self) -> AbstractContextManager[Connection]:
        return transaction(self._engine, write=False)

    def _write(self) -> AbstractContextManager[Connection]:
        return transaction(self._engine, write=True)

    def _models(self, stmt: Select[tuple[M]]) -> list[M]:
        with self._read() as conn, Session(conn) as session:
            return list(session.scalars(stmt).all())

    def _upsert(self, table: Table, *key: str) -> Insert:
        """Insert, or update every other column of the row with the same ``key``."""
        stmt = self._insert(table)
        others = [column.name for column in table.columns if column.name not in key]
        return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
            index_elements=list(key), set_={name: stmt.excluded[name] for name in others}
        )
