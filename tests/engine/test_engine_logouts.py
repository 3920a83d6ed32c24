"""Logouts on either side, as each rule says (issue 10): defaults, the other settings, echoes, contacts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from presence_sync.engine import (
    OMNI_OFFLINE,
    UNKNOWN_SINCE,
    CxoneState,
    CxoneTarget,
    Observation,
    Outcome,
    RuleBook,
    RuleError,
    Side,
    StateError,
    parse_on_cxone_logout,
    parse_on_omni_logout,
)
from presence_sync.engine.states import AcdStateSyntaxError
from tests.engine.engine_demo import (
    AGENT_A,
    AGENT_B,
    TEAM_A,
    TEAM_B,
    Harness,
    acw,
    available,
    demo_rule,
    outcomes,
    state,
    targets,
    unavailable,
)
from tests.engine.test_engine_seed_behaviours import settled


def harness(**logouts: object) -> Harness:
    rule = replace(demo_rule(), **logouts)
    return Harness(rulebook=RuleBook.build([rule], teams={TEAM_A: rule.name, TEAM_B: rule.name}))


def test_by_default_a_cxone_logout_logs_the_agent_out_of_omni_and_its_echo_stays_quiet():
    h = harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    logout = h.step(h.cx(AGENT_A, state("LoggedOut")))
    assert targets(logout) == [(AGENT_A, Side.SALESFORCE, OMNI_OFFLINE)]
    assert logout.audit[0].to_value == "Offline"
    assert logout.audit[0].rule_row == "logout: CXone LoggedOut -> Offline"
    assert "logs them out of Omni-Channel" in logout.audit[0].reason

    echo = h.step(h.sf(AGENT_A, None))  # the applier's statusId "0" ended the presence spell
    assert echo.writes == [] and outcomes(echo) == [Outcome.ECHO]
    assert all(h.step().writes == [] for _ in range(3))


def test_a_cxone_logout_may_set_a_status_instead_or_nothing():
    busy = harness(on_cxone_logout="On_Break")
    settled(busy, AGENT_A, available(), "Available_for_Chats")
    assert targets(busy.step(busy.cx(AGENT_A, state("LoggedOut")))) == [(AGENT_A, Side.SALESFORCE, "On_Break")]

    quiet = harness(on_cxone_logout=None)
    settled(quiet, AGENT_A, available(), "Available_for_Chats")
    decision = quiet.step(quiet.cx(AGENT_A, state("LoggedOut")))
    assert decision.writes == [] and outcomes(decision) == [Outcome.LOGGED_OUT]


def test_by_default_an_omni_logout_puts_cxone_in_the_default_unavailable_and_its_echo_stays_quiet():
    h = harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    logout = h.step(h.sf(AGENT_A, None))
    assert targets(logout) == [(AGENT_A, Side.CXONE, "Unavailable")]
    assert logout.audit[0].from_value == "Offline"
    assert logout.audit[0].rule_row == "logout: Omni-Channel Offline -> Unavailable"

    echo = h.step(h.cx(AGENT_A, unavailable()))
    assert echo.writes == [] and outcomes(echo) == [Outcome.ECHO]
    assert all(h.step().writes == [] for _ in range(3))


def test_an_omni_logout_may_set_an_unavailable_code_end_the_session_or_do_nothing():
    lunch = harness(on_omni_logout=CxoneTarget.unavailable("Lunch"))
    settled(lunch, AGENT_A, available(), "Available_for_Chats")
    assert targets(lunch.step(lunch.sf(AGENT_A, None))) == [(AGENT_A, Side.CXONE, "Unavailable:Lunch")]

    session = harness(on_omni_logout=CxoneTarget.logged_out())
    settled(session, AGENT_A, available(), "Available_for_Chats")
    ended = session.step(session.sf(AGENT_A, None))
    assert targets(ended) == [(AGENT_A, Side.CXONE, "LoggedOut")]
    assert "ends their CXone session" in ended.audit[0].reason
    # CXone logged out by our write: the echo, not a person's logout to carry back.
    echo = session.step(session.cx(AGENT_A, state("LoggedOut")))
    assert echo.writes == [] and outcomes(echo) == [Outcome.ECHO]

    quiet = harness(on_omni_logout=None)
    settled(quiet, AGENT_A, available(), "Available_for_Chats")
    decision = quiet.step(quiet.sf(AGENT_A, None))
    assert decision.writes == [] and outcomes(decision) == [Outcome.LOGGED_OUT]


def test_an_omni_logout_code_the_team_lacks_follows_skip_validation():
    lenient = harness(on_omni_logout=CxoneTarget.unavailable("CRM Work"))
    settled(lenient, AGENT_B, available(), "Available_for_Chats")  # Team B has no CRM Work
    assert targets(lenient.step(lenient.sf(AGENT_B, None))) == [(AGENT_B, Side.CXONE, "Unavailable")]

    strict = harness(on_omni_logout=CxoneTarget.unavailable("CRM Work"), skip_unavailable_code_validation=False)
    settled(strict, AGENT_B, available(), "Available_for_Chats")
    decision = strict.step(strict.sf(AGENT_B, None))
    assert decision.writes == [] and outcomes(decision) == [Outcome.UNMAPPED]


def test_an_omni_logout_during_a_call_is_applied_when_the_contact_ends():
    h = harness(on_omni_logout=CxoneTarget.logged_out())
    settled(h, AGENT_A, available(), "Available_for_Chats")
    h.step(h.cx(AGENT_A, state("InboundContact")))
    deferred = h.step(h.sf(AGENT_A, None))
    assert deferred.writes == [] and outcomes(deferred) == [Outcome.DEFERRED]
    # Never a logout while on the call, however long it lasts; and Salesforce stays logged out.
    assert all(h.step().writes == [] for _ in range(3))
    ended = h.step(h.cx(AGENT_A, available()))  # CXone's own move back at the end of the call
    assert targets(ended) == [(AGENT_A, Side.CXONE, "LoggedOut")]
    assert "the contact ended" in ended.audit[0].reason


def test_an_omni_logout_during_after_call_work_waits_for_its_end():
    h = harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    h.step(h.cx(AGENT_A, state("InboundContact")))
    h.step(h.cx(AGENT_A, acw()))
    assert h.step(h.sf(AGENT_A, None)).writes == []
    ended = h.step(h.cx(AGENT_A, available()))
    assert targets(ended) == [(AGENT_A, Side.CXONE, "Unavailable")]
    assert h.step(h.cx(AGENT_A, unavailable())).writes == []  # its echo


def test_an_omni_logout_seen_before_the_call_it_was_made_in_still_waits_for_the_call_to_end():
    h = harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    logout = h.step(h.sf(AGENT_A, None, seconds=10), seconds=11)
    [write] = logout.writes
    late_call = h.step(h.cx(AGENT_A, state("InboundContact"), seconds=9), seconds=12)  # began before the logout
    assert late_call.writes == []
    assert h.memory[AGENT_A].deferred is not None and h.memory[AGENT_A].deferred.status is None
    assert targets(h.step(h.cx(AGENT_A, available()), seconds=30)) == [(AGENT_A, Side.CXONE, "Unavailable")]
    assert write.target == CxoneTarget.unavailable()


def test_a_cxone_logout_on_a_call_drops_a_request_waiting_for_its_end():
    h = harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    h.step(h.cx(AGENT_A, state("InboundContact")))
    assert outcomes(h.step(h.sf(AGENT_A, "On_Break"))) == [Outcome.DEFERRED]
    logout = h.step(h.cx(AGENT_A, state("LoggedOut")))
    assert targets(logout) == [(AGENT_A, Side.SALESFORCE, OMNI_OFFLINE)]
    assert h.memory[AGENT_A].deferred is None


def test_a_logout_the_sync_found_but_did_not_see_happen_changes_nothing_in_cxone():
    h = harness()
    never = Observation(AGENT_A, Side.SALESFORCE, None, UNKNOWN_SINCE, "005A:no-spell")
    first = h.step(never)
    assert first.writes == []
    assert "since before the sync first looked" in first.audit[0].reason


def test_logging_back_in_is_a_change_like_any_other():
    h = harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    h.step(h.cx(AGENT_A, state("LoggedOut")))
    h.step(h.sf(AGENT_A, None))  # the echo of our Omni logout
    back = h.step(h.cx(AGENT_A, unavailable()))  # CXone starts a session in its default Unavailable
    assert back.writes == [] and outcomes(back) == [Outcome.UNMAPPED]  # no row for it: Salesforce stays offline
    ready = h.step(h.cx(AGENT_A, available()))
    assert targets(ready) == [(AGENT_A, Side.SALESFORCE, "Available_for_Chats")]

    h.step(h.sf(AGENT_A, "Available_for_Chats"))  # its echo
    h.step(h.sf(AGENT_A, None))
    h.step(h.cx(AGENT_A, unavailable()))  # the echo of the default Unavailable
    omni_back = h.step(h.sf(AGENT_A, "On_Break"))
    assert targets(omni_back) == [(AGENT_A, Side.CXONE, "Unavailable:Break")]


def test_logout_settings_are_checked_and_read_as_the_config_writes_them():
    assert parse_on_cxone_logout(" offline ") == OMNI_OFFLINE
    assert parse_on_cxone_logout("On_Break") == "On_Break"
    assert parse_on_cxone_logout("Nothing") is None
    assert parse_on_omni_logout("unavailable") == CxoneTarget.unavailable()
    assert parse_on_omni_logout("Unavailable: Lunch") == CxoneTarget.unavailable("Lunch")
    assert parse_on_omni_logout("LoggedOut") == CxoneTarget.logged_out()
    assert parse_on_omni_logout("nothing") is None
    with pytest.raises(AcdStateSyntaxError, match="can't follow a logout of Omni-Channel"):
        parse_on_omni_logout("Available")
    with pytest.raises(StateError, match="empty"):
        parse_on_cxone_logout("  ")
    with pytest.raises(RuleError, match="can't follow a logout of Omni-Channel"):
        replace(demo_rule(), on_omni_logout=CxoneTarget.available())
    with pytest.raises(RuleError, match="on_cxone_logout"):
        replace(demo_rule(), on_cxone_logout=" ")
    assert "Lunch" in replace(demo_rule(), on_omni_logout=CxoneTarget.unavailable("Lunch")).unavailable_codes


def test_a_logged_out_target_is_not_a_state_to_set():
    target = CxoneTarget.logged_out()
    assert target.is_logout and target.matches(CxoneState("LoggedOut"))
    assert not target.matches(CxoneState("Unavailable"))
    with pytest.raises(StateError, match="end the session"):
        target.to_api()
    with pytest.raises(StateError):
        CxoneTarget("InboundContact")
