"""Several presence rules: onboarding creates, updates and removes them (only the config's own), idempotently,
and its plan shows each rule and assignment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import load_config
from presence_sync.models.store import AssignmentKind, PresenceRule, StepOutcome, Store
from presence_sync.tasks.onboarding import Action
from tests.onboarding.onboarding_support import onboard, outcomes, result_of, variant


def _store(config_path: Path) -> Store:
    return Store.open(load_config(config_path).sync.store_url)


def _items(report: Any) -> dict[str, tuple[Action, str]]:
    return {item.subject: (item.action, item.reason) for item in result_of(report, "presence-rule").items}


async def test_both_rules_are_created_with_their_teams_then_a_second_run_changes_nothing(
    stack: EmulatorStack, config_path: Path
) -> None:
    first = await onboard(config_path, stack)
    again = await onboard(config_path, stack)

    items = _items(first)
    assert {subject: action for subject, (action, _) in items.items()} == {
        "rule Default Presence": Action.CREATE, "rule Chat Presence": Action.CREATE,
        "team Voice Team A": Action.CREATE, "team Voice Team B": Action.CREATE, "team Chat Team": Action.CREATE,
    }
    assert "CXone logout -> nothing, Omni logout -> Unavailable" in items["rule Chat Presence"][1]
    assert "assign rule 'Chat Presence'" in items["team Chat Team"][1]
    assert result_of(first, "presence-rule").summary == "5 rule parts: 5 created"
    assert outcomes(again)["presence-rule"] == "unchanged"
    assert {action for action, _ in _items(again).values()} == {Action.UNCHANGED}
    with _store(config_path) as store:
        assert [(r.name, r.skip_validation, r.on_cxone_logout, r.managed_by_config) for r in store.setup.list_rules()] == [
            ("Chat Presence", False, "nothing", True), ("Default Presence", True, "Offline", True),
        ]
        by_team = {a.target_name: a.rule_name for a in store.setup.list_rule_assignments()}
        assert by_team == {"Voice Team A": "Default Presence", "Voice Team B": "Default Presence", "Chat Team": "Chat Presence"}


async def test_a_rule_the_config_dropped_is_removed_and_one_it_never_owned_is_left_alone(
    stack: EmulatorStack, config_path: Path
) -> None:
    await onboard(config_path, stack)
    with _store(config_path) as store:
        store.setup.replace_rule(PresenceRule(name="Legacy", skip_validation=True), users={999: "someone"})

    def one_rule(data: dict[str, Any]) -> None:
        data["rule"] = data.pop("rules")[0]  # the one-rule form
        data["rule"]["on_omni_logout"] = "LoggedOut"
        data["rule"]["users"] = ["agent10@example.com"]  # the chat agent now follows the voice rule

    plan = await onboard(variant(config_path, one_rule), stack, plan_only=True)
    items = _items(plan)
    assert items["rule Chat Presence"] == (Action.REMOVE, "no longer in the config")
    assert items["team Chat Team"] == (Action.REMOVE, "with rule 'Chat Presence'")
    assert items["rule Default Presence"][0] is Action.UPDATE and "on omni logout changed" in items["rule Default Presence"][1]
    assert items["user agent10@example.com"][0] is Action.CREATE
    assert "rule Legacy" not in items

    report = await onboard(variant(config_path, one_rule), stack)
    assert result_of(report, "presence-rule").outcome is StepOutcome.UPDATED
    with _store(config_path) as store:
        assert [rule.name for rule in store.setup.list_rules()] == ["Default Presence", "Legacy"]
        assigned = {(a.kind, a.target_name): a.rule_name for a in store.setup.list_rule_assignments()}
        assert assigned == {
            (AssignmentKind.TEAM, "Voice Team A"): "Default Presence",
            (AssignmentKind.TEAM, "Voice Team B"): "Default Presence",
            (AssignmentKind.USER, "agent10@example.com"): "Default Presence",
            (AssignmentKind.USER, "someone"): "Legacy",
        }
    assert outcomes(await onboard(variant(config_path, one_rule), stack))["presence-rule"] == "unchanged"


async def test_one_agent_assigned_to_two_rules_under_two_names_is_refused(stack: EmulatorStack, config_path: Path) -> None:
    agent_id = stack.cxone.tenant.find_agent("agent7@example.com")["agentId"]

    def twice(data: dict[str, Any]) -> None:
        data["rules"][0]["users"] = ["agent7@example.com"]
        data["rules"][1]["users"] = [agent_id]

    report = await onboard(variant(config_path, twice), stack)

    rule = result_of(report, "presence-rule")
    assert rule.outcome is StepOutcome.FAILED
    [item] = [item for item in rule.items if item.action is Action.FAILED]
    assert item.subject == "user agent7@example.com"
    assert "rules[1].users[0] and rules[0].users[0] name the same agent" in item.reason
    assert "rules 'Default Presence' and 'Chat Presence'" in item.reason and "assign it to one rule only" in item.reason
    assert "no rule was stored" in " ".join(rule.notes)
    with _store(config_path) as store:
        assert store.setup.list_rules() == []


async def test_unknown_users_are_listed_in_a_warning_and_the_rules_are_still_stored(
    stack: EmulatorStack, config_path: Path
) -> None:
    def strangers(data: dict[str, Any]) -> None:
        data["rules"][1]["users"] = ["nobody@example.com", "agent3@example.com", 424242]

    report = await onboard(variant(config_path, strangers), stack)

    rule = result_of(report, "presence-rule")
    assert rule.outcome is StepOutcome.CREATED
    [warning] = [note for note in rule.notes if "no active CXone agent matches" in note]
    assert "nobody@example.com (rules[1].users[0]), 424242 (rules[1].users[2])" in warning
    with _store(config_path) as store:
        users = [a.target_name for a in store.setup.list_rule_assignments("Chat Presence") if a.kind is AssignmentKind.USER]
        assert users == ["agent3@example.com"]


async def test_skip_validation_is_checked_per_rule(stack: EmulatorStack, config_path: Path) -> None:
    def chat_rule_on_team_b(data: dict[str, Any]) -> None:
        data["rules"][0]["teams"] = ["Voice Team A"]
        data["rules"][1]["teams"] = ["Chat Team", "Voice Team B"]  # Team B lacks CRM Work; Chat checks codes

    report = await onboard(variant(config_path, chat_rule_on_team_b), stack)

    [item] = [item for item in result_of(report, "presence-rule").items if item.action is Action.FAILED]
    assert item.subject == "team Voice Team B"
    assert "lacks the rule's unavailable code(s) CRM Work (rule 'Chat Presence')" in item.reason
    assert "rules[1].skip_unavailable_code_validation: true" in item.reason
