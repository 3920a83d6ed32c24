"""Turning ``sync.store_url`` into a configured SQLAlchemy engine, and transactions on it.

SQLite (the default) runs in WAL mode with foreign keys on and a busy timeout; SQLAlchemy
emits BEGIN itself so that reads and DDL are transactional too, and write transactions
start with BEGIN IMMEDIATE so that two writers queue up instead of failing on a stale
snapshot. PostgreSQL goes through psycopg 3.
"""

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, IntegrityError

from presence_sync.models.store.errors import (
    InvalidStoreUrlError,
    StoreConflictError,
    StoreUnavailableError,
)

SQLITE_BUSY_TIMEOUT_S = 30.0
SQLITE_WAL_CHECKPOINT_PAGES = 10_000
POSTGRES_CONNECT_TIMEOUT_S = 10
_URL_HELP = "use sqlite:///path/to/state.db or postgresql://user@host:5432/database"
_WRITE_OPTION = "presence_sync_write"
_UNAVAILABLE_HINTS = {
    "sqlite": "Check sync.store_url, that the file is a presence-sync SQLite database in a "
    "writable folder, and that no other process keeps it locked",
    "postgresql": "Check sync.store_url, that the PostgreSQL server is up and reachable from "
    "here, and that this user may connect and create tables",
}


def normalise_store_url(url: str) -> URL:
    """Parse and check a store URL; plain ``postgresql://`` becomes ``postgresql+psycopg://``.

    Usage: ``normalise_store_url("postgresql://ps@db/presence")``. Raises
    ``InvalidStoreUrlError`` naming what is wrong (never echoing a password).
    """
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise InvalidStoreUrlError(
            f"sync.store_url is not a database URL: {_URL_HELP}"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")  # no dialect lookup: 'postgres' has none
    shown = redact(parsed)
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise InvalidStoreUrlError(
                f"sync.store_url {shown}: the SQLite driver {driver!r} is not supported; "
                "write sqlite:///path/to/state.db"
            )
        if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
            raise InvalidStoreUrlError(
                f"sync.store_url {shown} is an in-memory SQLite database, which forgets "
                "everything when presence-sync stops; give a file: sqlite:///path/to/state.db"
            )
        return parsed
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise InvalidStoreUrlError(
                f"sync.store_url {shown}: the PostgreSQL driver {driver!r} is not supported; "
                "write postgresql://... (or postgresql+psycopg://...)"
            )
        return parsed.set(drivername="postgresql+psycopg")
    raise InvalidStoreUrlError(
        f"sync.store_url {shown}: {backend!r} databases are not supported; {_URL_HELP}"
    )


def redact(url: URL) -> str:
    """The URL as text with its password masked, for messages and reprs."""
    return url.render_as_string(hide_password=True)


def _json_text(value: Any) -> str:
    # A burst saves thousands of agents' memory a second: orjson writes a row ~10x faster than json.dumps
    # (~15 µs each). Only our own data goes through here; keys that are not strings are written as strings,
    # as json.dumps does.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# The JSON columns' (de)serialisers, on either store.
_JSON = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def create_store_engine(url: URL) -> Engine:
    """An engine for a URL from ``normalise_store_url`` (creates a SQLite file's folder)."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args, **_JSON)


def _sqlite_engine(url: URL) -> Engine:
    folder = Path(url.database or "").parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailableError(
            f"cannot create the folder {str(folder)!r} for the SQLite store {redact(url)}: "
            f"{exc.strerror}. Point sync.store_url at a writable location"
        ) from exc
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        **_JSON,
    )
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 module (which skips it before SELECT and DDL).
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA foreign_keys=ON")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
    _ensure_wal(dbapi_connection)
    # A burst saves ~1,000 agents' memory a commit, more than SQLite's default 1,000-page WAL: every commit
    # then copied the log back into the database (and synced both). Every ~10,000 pages (40 MB of log),
    # twenty 1,000-agent commits took 0.79 s instead of 1.09-1.21 s.
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_CHECKPOINT_PAGES}")


def _ensure_wal(dbapi_connection: sqlite3.Connection) -> None:
    # WAL is a property of the file. Switching to it needs the file to itself and ignores
    # the busy timeout, so processes creating a new store together wait their turn here.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _begin_sqlite_transaction(conn: Connection) -> None:
    write = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """One transaction, committed on success, rolled back on any exception.

    Usage: ``with transaction(engine, write=True) as conn: conn.execute(...)``. Database
    failures come out as ``StoreUnavailableError`` or ``StoreConflictError``.
    """
    try:
        with engine.connect() as conn:
            if write:
                conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn
    except IntegrityError as exc:
        raise StoreConflictError(
            f"the state store refused a write that would break its consistency: "
            f"{describe_db_error(exc)}"
        ) from exc
    except DatabaseError as exc:  # unreachable, locked, not a database, no permission
        raise StoreUnavailableError(
            f"the state store at {redact(engine.url)} cannot be used: {describe_db_error(exc)}. "
            + _UNAVAILABLE_HINTS[engine.dialect.name]
        ) from exc


def describe_db_error(exc: DBAPIError) -> str:
    """The driver's own first line, without SQLAlchemy's SQL and parameter dump."""
    lines = str(exc.orig).strip().splitlines()
    return lines[0] if lines else type(exc.orig).__name__
