"""No secret reaches the store or a report, and onboarding works over real loopback HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, select

from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import load_config, write_emulator_config
from presence_sync.models.store import Store
from presence_sync.tasks.onboarding.report import markdown_summary
from tests.onboarding.onboarding_support import onboard, outcomes, variant

SECRET_KEYS = ("client_secret", "password", "security_token", "access_key_secret", "jwt_private_key_pem")


def _store_text(config_path: Path) -> str:
    with Store.open(load_config(config_path).sync.store_url) as store:
        metadata = MetaData()
        metadata.reflect(store.engine)
        with store.engine.connect() as conn:
            return "\n".join(str(row) for table in metadata.tables.values() for row in conn.execute(select(table)))


async def test_no_secret_is_stored_or_reported(stack: EmulatorStack, config_path: Path) -> None:
    sf_credentials, cx_credentials = await stack.credentials()
    secrets = [credentials[key] for credentials in (sf_credentials, cx_credentials) for key in SECRET_KEYS if key in credentials]

    def wrong_password(data: dict[str, Any]) -> None:
        data["salesforce"]["auth"]["password"] = "Wrong-" + sf_credentials["password"]

    reports = [await onboard(config_path, stack), await onboard(variant(config_path, wrong_password), stack)]

    assert outcomes(reports[1])["oauth-flow"] == "failed"
    written = _store_text(config_path) + "".join(markdown_summary(report) for report in reports)
    written += "".join(repr(report) for report in reports)
    assert "Default Presence" in written and "agent1@example.com" in written
    # The dump holds what onboarding stored and reported, the failure's message included ...
    assert "authentication failure" in written
    # ... and no secret value.
    leaked = [secret for secret in secrets if secret in written]
    assert leaked == []


async def test_onboarding_over_loopback_http(tmp_path: Path) -> None:
    with EmulatorStack.serve(agents=10) as stack:
        config_path = await write_emulator_config(stack, tmp_path / "presence-sync.yaml")

        first = await onboard(config_path, stack)
        second = await onboard(config_path, stack)

    assert first.succeeded, first.needs_a_human()
    assert outcomes(first)["cxone-users"] == "created"
    assert set(outcomes(second).values()) == {"unchanged"}
