"""The CXone state vocabulary and the rule-row syntax: rule text <-> `AcdState` <-> the engine key, in one place."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence_sync.engine import (
    PREVIOUS_STATE,
    AcdState,
    AcdStateSyntaxError,
    CxoneState,
    CxoneStateName,
    CxoneTarget,
    StateError,
    display,
    parse_publisher_row,
    parse_subscriber_target,
)
from presence_sync.engine.states import AcdKind


@pytest.mark.parametrize(
    ("text", "kind", "code"),
    [
        ("Available", CxoneStateName.AVAILABLE, None),
        (" available ", CxoneStateName.AVAILABLE, None),
        ("Unavailable", CxoneStateName.UNAVAILABLE, None),
        ("Unavailable: Break", CxoneStateName.UNAVAILABLE, "Break"),
        ("unavailable:CRM Work", CxoneStateName.UNAVAILABLE, "CRM Work"),
        ("Inbound Contact", CxoneStateName.INBOUND_CONTACT, None),
        ("OutboundContact", CxoneStateName.OUTBOUND_CONTACT, None),
        ("acw", CxoneStateName.ACW, None),
        ("LoggedOut", CxoneStateName.LOGGED_OUT, None),
        ("Refused", CxoneStateName.REFUSED, None),
        ("Previous State", PREVIOUS_STATE, None),
        ("previous_state", PREVIOUS_STATE, None),
    ],
)
def test_acd_state_syntax_is_parsed_in_one_place(text: str, kind: AcdKind, code: str | None) -> None:
    assert AcdState.parse(text) == AcdState(kind, code)


@pytest.mark.parametrize("text", ["Busy", "Available: Break", "Unavailable:  ", "Unavailable: refused", ""])
def test_acd_state_parser_refuses_with_a_fix(text: str) -> None:
    with pytest.raises(AcdStateSyntaxError) as caught:
        AcdState.parse(text)

    assert caught.value.problem and caught.value.fix


_codes = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30).map(str.strip).filter(
    lambda code: code and _not_a_keyword(code)
)


def _not_a_keyword(code: str) -> bool:
    try:
        return AcdState.parse(code).kind not in (CxoneStateName.ACW, CxoneStateName.REFUSED)
    except AcdStateSyntaxError:
        return True


@given(_codes)
def test_acd_state_text_round_trips(code: str) -> None:
    state = AcdState(CxoneStateName.UNAVAILABLE, code)

    assert AcdState.parse(str(state)) == state


def test_subscriber_targets_and_system_states_are_classified() -> None:
    assert AcdState.parse("Previous State").is_subscriber_target
    assert AcdState.parse("Unavailable: Lunch").is_subscriber_target
    assert AcdState.parse("ACW").is_system_managed and not AcdState.parse("ACW").is_subscriber_target
    assert AcdState.parse("Dialer").is_contact and not AcdState.parse("Dialer").is_subscriber_target


def test_rule_text_parsing():
    assert parse_publisher_row("Unavailable: CRM Work").key == "Unavailable:CRM Work"
    assert parse_publisher_row(" acw ").key == "ACW"
    assert parse_publisher_row("Unavailable").key == "Unavailable"
    assert parse_subscriber_target("Previous State") is PREVIOUS_STATE
    assert parse_subscriber_target("Unavailable: Break") == CxoneTarget.unavailable("Break")
    assert parse_subscriber_target("available") == CxoneTarget.available()
    with pytest.raises(StateError, match="'ACW' is system-managed and can't be a subscriber target"):
        parse_subscriber_target("ACW")
    with pytest.raises(StateError, match="not a CXone state a publisher row can map"):
        parse_publisher_row("Open")
    with pytest.raises(StateError, match="not a subscriber target"):
        parse_subscriber_target("InboundContact")


@pytest.mark.parametrize(
    ("text", "key"),
    [("Available", "Available"), ("Unavailable", "Unavailable"), ("Unavailable: CRM Work", "Unavailable:CRM Work"),
     ("acw", "ACW"), ("Refused", "Refused"), ("InboundContact", "InboundContact"), ("LoggedOut", "LoggedOut")],
)
def test_publisher_rows_become_the_engines_keys(text: str, key: str) -> None:
    assert AcdState.parse(text).publisher_key() == key


def test_subscriber_rows_become_the_engines_targets() -> None:
    assert AcdState.parse("Available").subscriber_target() == CxoneTarget.available()
    assert AcdState.parse("Unavailable").subscriber_target() == CxoneTarget.unavailable()
    assert AcdState.parse("Unavailable: Lunch").subscriber_target() == CxoneTarget.unavailable("Lunch")
    assert AcdState.parse("Previous State").subscriber_target() is PREVIOUS_STATE
    with pytest.raises(AcdStateSyntaxError, match="can't be a subscriber target"):
        AcdState.parse("InboundContact").subscriber_target()


@pytest.mark.parametrize(
    ("shown", "text"),
    [
        (CxoneState("Unavailable", "Break"), "Unavailable: Break"),
        (CxoneState("Unavailable", "ACW", is_acw=True), "ACW"),
        (CxoneState("Unavailable", "Refused"), "Refused"),
        (CxoneState("Unavailable"), "Unavailable"),
        (CxoneState("InboundContact"), "InboundContact"),
        (CxoneTarget.unavailable("Lunch"), "Unavailable: Lunch"),
        (PREVIOUS_STATE, "Previous State"),
    ],
)
def test_what_cxone_shows_has_one_spelling_in_each_form(shown: CxoneState | CxoneTarget, text: str) -> None:
    assert str(shown.rule_state) == text
    assert AcdState.parse(text).key == shown.key
    # People read a state as the config writes it (issue 14), never the engine key.
    assert display(shown) == text
