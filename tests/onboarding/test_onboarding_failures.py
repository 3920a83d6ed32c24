"""Each broken org setting or bad config value gets a message that names the cause, and stops only
the steps that depend on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from presence_sync.emulators.salesforce.emulator import OrgUpdate
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import load_config
from presence_sync.models.store import StepOutcome, Store
from presence_sync.tasks.context import open_context
from presence_sync.tasks.onboarding import (
    PASSWORD_FLOW_RETIREMENT_WARNING,
    Action,
    OnboardingReport,
    plan_connected_app,
    plan_presence_rule,
)
from tests.onboarding.onboarding_support import data_writes, onboard, outcomes, result_of, transports_of, variant

THREE_CAUSES = (
    "Wrong username, password or security token",
    "Allow OAuth Username-Password Flows",
    "MFA is enforced on this user",
)
AFTER_LOGIN = ("account-mapping", "cxone-users")


def _failure_text(report: OnboardingReport, step: str) -> str:
    result = result_of(report, step)
    return "\n".join([result.summary, *(item.reason for item in result.items if item.action is Action.FAILED)])


@pytest.mark.parametrize(
    "org_setting",
    [
        pytest.param(OrgUpdate(block_username_password_flow=True), id="flow-blocked"),
        pytest.param(OrgUpdate(mfa_users=["integration@example.com"]), id="mfa-user"),
    ],
)
async def test_a_refused_password_login_names_its_three_causes(
    stack: EmulatorStack, config_path: Path, org_setting: OrgUpdate
) -> None:
    stack.salesforce.configure_org(org_setting)

    report = await onboard(config_path, stack)

    assert outcomes(report)["connected-app"] == "unchanged"  # the app is fine; the login is not
    assert "accepted the consumer key" in result_of(report, "connected-app").summary
    oauth = _failure_text(report, "oauth-flow")
    assert all(cause in oauth for cause in THREE_CAUSES)
    assert "2027-02-20" in oauth
    # ... and where each is fixed: the config paths, and the user's MFA permission in Setup.
    assert "salesforce.auth.username (integration@example.com), salesforce.auth.password" in oauth
    assert "'Multi-Factor Authentication for API Logins'" in oauth and "Setup > Users" in oauth
    assert PASSWORD_FLOW_RETIREMENT_WARNING in result_of(report, "oauth-flow").notes
    for step in AFTER_LOGIN:
        assert result_of(report, step).summary.startswith("skipped: oauth-flow failed: password flow: ")
    assert result_of(report, "presence-rule").summary.startswith("skipped: presence-statuses failed: ")
    assert await data_writes(stack) == {}


async def test_the_retirement_warning_comes_with_every_password_flow_run(stack: EmulatorStack, config_path: Path) -> None:
    report = await onboard(config_path, stack)

    assert report.succeeded
    assert f"oauth-flow: {PASSWORD_FLOW_RETIREMENT_WARNING}" in report.needs_a_human()


async def test_a_failed_login_is_reported_once_for_all_the_steps_it_stopped(stack: EmulatorStack, config_path: Path) -> None:
    stack.salesforce.configure_org(OrgUpdate(block_username_password_flow=True))

    needs = (await onboard(config_path, stack)).needs_a_human()

    login_lines = [line for line in needs if "authentication failure" in line]
    assert len(login_lines) == 1
    assert login_lines[0].startswith("presence-statuses, oauth-flow: password flow: ")


async def test_an_unknown_consumer_key_means_the_app_is_missing(stack: EmulatorStack, config_path: Path) -> None:
    def unknown_app(data: dict[str, Any]) -> None:
        data["salesforce"]["auth"]["client_id"] = "3MVG9NoSuchApp"

    report = await onboard(variant(config_path, unknown_app), stack)

    text = _failure_text(report, "connected-app")
    assert "Spring '26" in text and "Salesforce Support" in text and "External Client App" in text
    assert "client-credentials" in text and "JWT" in text
    assert result_of(report, "oauth-flow").summary.startswith("skipped: connected-app failed: ")
    assert any("Spring '26" in note for note in result_of(report, "connected-app").notes)
    # The guidance is in the failure's own line; the note repeating it is not listed again.
    assert sum("Spring '26" in line for line in report.needs_a_human()) == 1


async def test_a_wrong_consumer_secret_is_named(stack: EmulatorStack, config_path: Path) -> None:
    def wrong_secret(data: dict[str, Any]) -> None:
        data["salesforce"]["auth"]["client_secret"] = "not-the-secret"

    report = await onboard(variant(config_path, wrong_secret), stack)

    assert outcomes(report)["connected-app"] == "failed"
    assert "consumer secret (client_secret) is wrong" in _failure_text(report, "connected-app")
    assert "not-the-secret" not in "\n".join(report.needs_a_human())


async def test_a_wrong_cxone_secret_stops_the_cxone_steps_only(stack: EmulatorStack, config_path: Path) -> None:
    def wrong_secret(data: dict[str, Any]) -> None:
        data["cxone"]["client_secret"] = "not-the-cxone-secret"

    report = await onboard(variant(config_path, wrong_secret), stack)

    assert outcomes(report) == {
        "presence-statuses": "created", "profile-access": "created", "connected-app": "unchanged",
        "oauth-flow": "unchanged", "account-mapping": "failed", "cxone-users": "skipped", "presence-rule": "skipped",
    }
    assert "cxone.client_id and cxone.client_secret" in _failure_text(report, "account-mapping")
    assert "not-the-cxone-secret" not in "\n".join(report.needs_a_human())


async def test_an_unknown_cxone_tenant_is_named(stack: EmulatorStack, config_path: Path) -> None:
    def by_discovery(data: dict[str, Any], tenant: str) -> None:
        cxone = data["cxone"]
        cxone["discovery_url"] = cxone.pop("auth_url")
        del cxone["api_url"]
        cxone["tenant_id"] = tenant

    known = (await stack.credentials())[1]["tenant_id"]
    good = await onboard(variant(config_path, lambda data: by_discovery(data, known), "discovered.yaml"), stack)
    assert good.succeeded
    assert known in result_of(good, "account-mapping").summary

    report = await onboard(variant(config_path, lambda data: by_discovery(data, "no-such-tenant"), "unknown.yaml"), stack)

    assert "does not know tenant 'no-such-tenant'" in _failure_text(report, "account-mapping")


async def test_a_missing_profile_is_named_and_the_others_still_get_access(stack: EmulatorStack, config_path: Path) -> None:
    def extra_profile(data: dict[str, Any]) -> None:
        data["profiles"].append({"name": "Contact Centre Agents", "statuses": "all"})

    report = await onboard(variant(config_path, extra_profile), stack)

    access = result_of(report, "profile-access")
    assert access.outcome is StepOutcome.FAILED
    failed = [item for item in access.items if item.action is Action.FAILED]
    assert [item.subject for item in failed] == ["profile Contact Centre Agents"]
    assert "Salesforce has no profile 'Contact Centre Agents'" in failed[0].reason
    assert "did you mean 'Contact Center Agent'?" in failed[0].reason
    assert "profiles[2].name" in failed[0].reason
    assert access.counts() == {"create": 2, "failed": 1}
    assert outcomes(report)["presence-rule"] == "created"  # it does not depend on profile access


async def test_a_status_on_a_missing_channel_fails_alone(stack: EmulatorStack, config_path: Path) -> None:
    def sms_channel(data: dict[str, Any]) -> None:
        data["statuses"].append({"label": "Available for SMS", "option": "online", "channels": ["sfdc_sms"]})

    report = await onboard(variant(config_path, sms_channel), stack)

    statuses = result_of(report, "presence-statuses")
    assert statuses.counts() == {"create": 9, "failed": 1}
    assert "Salesforce has no service channel sfdc_sms" in statuses.reason
    assert "statuses[9].channels" in statuses.reason
    assert result_of(report, "profile-access").summary.startswith("skipped: presence-statuses failed: status Available_for_SMS")


async def test_a_team_lacking_a_rule_code_is_refused_without_skip_validation(stack: EmulatorStack, config_path: Path) -> None:
    def validate_codes(data: dict[str, Any]) -> None:
        data["rules"][0]["skip_unavailable_code_validation"] = False

    report = await onboard(variant(config_path, validate_codes), stack)

    rule = result_of(report, "presence-rule")
    assert rule.outcome is StepOutcome.FAILED
    [refused] = [item for item in rule.items if item.action is Action.FAILED]
    assert refused.subject == "team Voice Team B"
    assert "lacks the rule's unavailable code(s) CRM Work" in refused.reason
    assert "skip_unavailable_code_validation" in refused.reason
    with Store.open(load_config(config_path).sync.store_url) as store:
        assert store.setup.get_rule("Default Presence") is None


async def test_rule_rows_and_assignments_must_name_what_exists(stack: EmulatorStack, config_path: Path) -> None:
    def broken_rule(data: dict[str, Any]) -> None:
        rule = data["rules"][0]
        rule["publisher"].append({"acd": "Unavailable: Training", "salesforce": "Case_Work"})
        rule["teams"] = ["Voice Team A", "Voice Team C"]
        rule["users"] = ["agent3@example.com", "nobody@example.com"]

    await onboard(config_path, stack)
    async with open_context(load_config(variant(config_path, broken_rule)), transports_of(stack)) as ctx:
        plan = await plan_presence_rule(ctx)

    failed = {item.subject: item.reason for item in plan.items if item.action is Action.FAILED}
    assert set(failed) == {"unavailable code Training", "team Voice Team C"}
    assert "CXone has no active unavailable code 'Training'" in failed["unavailable code Training"]
    assert "did you mean 'Voice Team B'?" in failed["team Voice Team C"] and "rules[0].teams[1]" in failed["team Voice Team C"]
    # A user assignment naming no agent is a warning listing them, not a failure (the agent may come later).
    assert any("no active CXone agent matches: nobody@example.com (rules[0].users[1])" in n for n in plan.notes)
    assert plan.rules == () and not plan.has_changes


async def test_a_jwt_key_that_is_not_the_apps_is_not_blamed_on_the_app(stack: EmulatorStack, config_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_file = config_path.with_name("other.key")
    key_file.write_bytes(other_key)

    def jwt_flow(data: dict[str, Any]) -> None:
        auth = data["salesforce"]["auth"]
        data["salesforce"]["auth"] = {
            "flow": "jwt", "client_id": auth["client_id"], "username": auth["username"], "private_key_file": "other.key",
        }

    async with open_context(load_config(variant(config_path, jwt_flow)), transports_of(stack)) as ctx:
        plan = await plan_connected_app(ctx)

    [item] = plan.items
    assert item.action is Action.UNCHANGED and "refused the login itself" in item.reason


def _validate_codes_for_user(user: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["rules"][0]["skip_unavailable_code_validation"] = False
        data["rules"][0]["teams"] = ["Voice Team A"]
        data["rules"][0]["users"] = [user]

    return change


async def test_a_user_whose_team_lacks_a_rule_code_is_refused_without_skip_validation(
    stack: EmulatorStack, config_path: Path
) -> None:
    team_b = stack.cxone.tenant.add_agent("Bea", "Bee", "bea@example.com", 1002, user_name="bea")
    team_a = stack.cxone.tenant.add_agent("Al", "Ay", "al@example.com", 1001, user_name="al")

    refused = await onboard(variant(config_path, _validate_codes_for_user("bea@example.com"), "bea.yaml"), stack)
    accepted = await onboard(variant(config_path, _validate_codes_for_user("al"), "al.yaml"), stack)

    rule = result_of(refused, "presence-rule")
    [item] = [item for item in rule.items if item.action is Action.FAILED]
    assert item.subject == "user bea@example.com"
    assert f"agent bea ({team_b}) is on team 'Voice Team B'" in item.reason
    assert "lacks the rule's unavailable code(s) CRM Work" in item.reason
    assert "rules[0].users[0]" in item.reason and "skip_unavailable_code_validation" in item.reason
    assert outcomes(accepted)["presence-rule"] == "created"
    with Store.open(load_config(config_path).sync.store_url) as store:
        assert {a.target_id for a in store.setup.list_rule_assignments("Default Presence")} == {1001, team_a}


async def test_with_skip_validation_a_users_missing_codes_are_a_note(stack: EmulatorStack, config_path: Path) -> None:
    stack.cxone.tenant.add_agent("Bea", "Bee", "bea@example.com", 1002, user_name="bea")

    def assign_bea(data: dict[str, Any]) -> None:
        data["rules"][0]["users"] = ["bea"]

    report = await onboard(variant(config_path, assign_bea), stack)

    rule = result_of(report, "presence-rule")
    assert rule.outcome is StepOutcome.CREATED
    assert any(
        note.startswith("user bea (") and "lacks unavailable code(s) CRM Work" in note and "Case_Work" in note
        for note in rule.notes
    )
