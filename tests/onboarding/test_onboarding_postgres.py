"""Onboarding with its state store on PostgreSQL (sync.store_url), in a schema of its own per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import make_url

from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import load_config
from presence_sync.models.store import StepOutcome, Store
from tests.onboarding.onboarding_support import AGENTS, onboard, outcomes, variant

pytestmark = pytest.mark.postgres

PG_URL = os.environ.get("PRESENCE_SYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _conninfo() -> str:
    return make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def pg_store_url() -> Iterator[str]:
    """The URL of an empty schema (`ps_onboard_<random>`, dropped afterwards), so xdist workers never meet."""
    try:
        admin = psycopg.connect(_conninfo(), autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        pytest.skip(f"PostgreSQL not reachable: {str(error).strip()}")
    schema = f"ps_onboard_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
            yield url.render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def test_onboarding_keeps_its_state_in_postgresql(
    stack: EmulatorStack, config_path: Path, pg_store_url: str
) -> None:
    def on_postgres(data: dict[str, Any]) -> None:
        data["sync"]["store_url"] = pg_store_url

    config = variant(config_path, on_postgres, "postgres.yaml")
    assert load_config(config).sync.store_url.get_secret_value().startswith("postgresql")

    first = await onboard(config, stack)
    second = await onboard(config, stack)

    assert first.succeeded, first.needs_a_human()
    assert outcomes(first)["presence-rule"] == "created" and set(outcomes(second).values()) == {"unchanged"}
    with Store.open(pg_store_url) as store:
        assert store.engine.dialect.name == "postgresql"
        assert len(store.setup.load_links()) == AGENTS - 1
        assert store.setup.get_rule("Default Presence") is not None
        assert len(store.setup.list_rule_assignments("Default Presence")) == 2
        assert {step.outcome for step in store.setup.list_steps(second.run_id)} == {StepOutcome.UNCHANGED}
    assert not (config_path.parent / ".presence-sync").exists()  # nothing went to the default SQLite file
