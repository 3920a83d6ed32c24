"""Fixtures for the state-store tests: every test runs on SQLite and, when reachable, PostgreSQL.

PostgreSQL comes from ``PRESENCE_SYNC_TEST_PG_URL``; each test gets fresh schemas of its own
(``ps_<random>``, chosen through the URL's ``search_path`` option and dropped afterwards), so
tests can run in parallel under pytest-xdist against one server.
"""

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import URL, Engine, event, make_url

from presence_sync.models.store import Store
from presence_sync.models.store.connection import redact

PG_URL = os.environ.get(
    "PRESENCE_SYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

FreshUrl = Callable[[], str]


class FakeClock:
    """A clock the test moves by hand: ``clock.advance(30)``."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))


def _libpq_conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@cache
def _postgres_unreachable_reason() -> str | None:
    try:
        with psycopg.connect(_libpq_conninfo(make_url(PG_URL)), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {redact(make_url(PG_URL))}: {str(exc).strip()}"


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FreshUrl]:
    """A factory of URLs of new, empty databases on the parametrised backend."""
    if request.param == "sqlite":
        counter = iter(range(1_000_000))
        yield lambda: f"sqlite:///{tmp_path / f'state-{next(counter)}.db'}"
        return
    reason = _postgres_unreachable_reason()
    if reason:
        pytest.skip(reason)
    base = make_url(PG_URL)
    schemas: list[str] = []

    def new_schema_url() -> str:
        schema = f"ps_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_libpq_conninfo(base), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    yield new_schema_url
    if schemas:
        with psycopg.connect(_libpq_conninfo(base), autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def store_url(fresh_url: FreshUrl) -> str:
    return fresh_url()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    with Store.open(store_url, clock=clock) as opened:
        yield opened


StatementLog = Callable[[Engine], AbstractContextManager[list[str]]]


@pytest.fixture
def statement_log() -> StatementLog:
    """``with statement_log(store.engine) as sql:`` collects every statement sent to the
    database driver (an ``executemany`` counts once: it is one statement, many rows)."""

    @contextmanager
    def log(engine: Engine) -> Iterator[list[str]]:
        statements: list[str] = []

        def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", record)

    return log
