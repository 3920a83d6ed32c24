"""States, targets, rules, policy and inputs: what they accept and the errors they give."""

from __future__ import annotations

from datetime import datetime

import pytest

from presence_sync.engine import (
    AgentLink,
    AgentMemory,
    CxoneState,
    CxoneStateName,
    CxoneTarget,
    EngineError,
    MemoryFormatError,
    Observation,
    ObservationError,
    Outcome,
    Rule,
    RuleBook,
    RuleError,
    Side,
    StateError,
    SyncPolicy,
    decide,
)
from tests.engine.engine_demo import T0, TEAM_CODES, TEAM_B, demo_rule


def test_targets_are_settable_states_only():
    assert CxoneTarget.unavailable("Lunch").matches(CxoneState("Unavailable", "Lunch"))
    assert not CxoneTarget.unavailable().matches(CxoneState("Unavailable", "Lunch"))
    assert not CxoneTarget.unavailable().matches(CxoneState("Unavailable", "Refused"))
    with pytest.raises(StateError, match="can't be set through the Agent API"):
        CxoneTarget(CxoneStateName.INBOUND_CONTACT)
    with pytest.raises(StateError, match="system-managed"):
        CxoneTarget.unavailable("ACW")
    with pytest.raises(StateError, match="system-managed"):
        CxoneTarget.unavailable("refused")
    with pytest.raises(StateError, match="Available takes no unavailable code"):
        CxoneTarget(CxoneStateName.AVAILABLE, "Break")


def test_rule_validation_messages():
    with pytest.raises(RuleError, match="can't be a subscriber target"):
        Rule("R", publisher={}, subscriber={"After_Call_Work": CxoneState("Unavailable", "ACW", True)})
    with pytest.raises(RuleError, match="mapped twice"):
        Rule("R", publisher={"Unavailable: Break": "On_Break", "Unavailable:Break": "Lunch"}, subscriber={})
    with pytest.raises(RuleError, match="publisher row 'Open'"):
        Rule("R", publisher={"Open": "Available"}, subscriber={})
    with pytest.raises(RuleError, match="not a Salesforce presence status"):
        Rule("R", publisher={"Available": ""}, subscriber={})
    with pytest.raises(RuleError, match="needs a name"):
        Rule(" ", publisher={}, subscriber={})


def test_rule_codes_for_assignment_checks():
    rule = demo_rule()
    assert rule.unavailable_codes == {"Break", "Lunch", "CRM Work"}
    assert rule.missing_codes(TEAM_CODES[TEAM_B]) == {"CRM Work"}


def test_rulebook_validation_messages():
    rule = demo_rule()
    with pytest.raises(RuleError, match="team 5 is assigned rule 'Nope', which does not exist"):
        RuleBook.build([rule], teams={5: "Nope"})
    with pytest.raises(RuleError, match="two rules are named"):
        RuleBook.build([rule, rule])
    book = RuleBook.build([rule], users={9: rule.name})
    assert book.rule_for(AgentLink(9, "005", team_id=None)) is rule
    assert book.rule_for(AgentLink(8, "005", team_id=None)) is None


def test_policy_validation_and_backoff():
    with pytest.raises(EngineError, match="conflict policy 'loudest_wins' is unknown"):
        SyncPolicy(conflict="loudest_wins")
    with pytest.raises(EngineError, match="max_attempts must be at least 1"):
        SyncPolicy(max_attempts=0)
    with pytest.raises(EngineError, match="echo_timeout_seconds must be a positive"):
        SyncPolicy(echo_timeout_seconds=0)
    policy = SyncPolicy(retry_base_seconds=2, retry_cap_seconds=10)
    delays = [policy.retry_delay(n, "ps-1-a").total_seconds() for n in range(1, 8)]
    assert all(1 <= d <= 10 for d in delays)
    assert delays[0] <= 2 and delays[-1] >= 5
    assert policy.retry_delay(3, "ps-1-a") == policy.retry_delay(3, "ps-1-a")


def test_observations_are_checked():
    with pytest.raises(ObservationError, match="timezone-aware"):
        Observation(1, Side.CXONE, CxoneState("Available"), datetime(2026, 1, 1), "x")
    with pytest.raises(ObservationError, match="needs a CxoneState"):
        Observation(1, Side.CXONE, "Available", T0, "x")
    with pytest.raises(ObservationError, match="status DeveloperName or None"):
        Observation(1, Side.SALESFORCE, CxoneState("Available"), T0, "x")
    with pytest.raises(ObservationError, match="neither 'cxone' nor 'salesforce'"):
        Observation(1, "crm", None, T0, "x")
    with pytest.raises(ObservationError, match="needs a source_id"):
        Observation(1, "salesforce", None, T0, "")
    assert Observation(1, "salesforce", None, T0, "s").side is Side.SALESFORCE


def test_decide_refuses_a_naive_clock():
    with pytest.raises(ObservationError, match="now must be a timezone-aware"):
        decide(RuleBook.build([]), {}, {}, [], datetime(2026, 1, 1))


def test_damaged_memory_is_a_clear_error():
    with pytest.raises(MemoryFormatError, match="written by another presence-sync version"):
        AgentMemory.from_json({"v": 99})
    damaged = AgentMemory().to_json() | {"cxone": {"state": "OnFire"}}
    with pytest.raises(MemoryFormatError, match="clear this agent's row"):
        AgentMemory.from_json(damaged)


def test_audit_rows_are_plain_values():
    book = RuleBook.build([demo_rule()], teams={1: "Default Presence"})
    links = {7: AgentLink(7, "005A", 1, frozenset({"Break"}))}
    decision = decide(book, links, {}, [Observation(7, Side.CXONE, CxoneState("Available"), T0, "c1")], T0)
    row = decision.audit[0].to_row()
    assert row["outcome"] == Outcome.WRITE.value and row["direction"] == "cxone->salesforce"
    assert row["to_value"] == "Available_for_Chats" and row["command_id"] == decision.writes[0].command_id
