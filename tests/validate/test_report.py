"""Which rule rows validation uses, and how its report reads."""

from __future__ import annotations

from presence_sync.engine import CxoneTarget
from presence_sync.flows.validate import artifact_key
from presence_sync.tasks.validate import Cause, Diagnosis, Hop, HopResult, RoundTrip, ValidationReport, round_trips
from tests.engine.engine_demo import demo_rule

TEAM_A = frozenset({"Break", "Lunch", "CRM Work", "ACW"})
TEAM_B = frozenset({"Break", "Lunch", "ACW"})
DEMO_RULE = demo_rule()  # the demo center's "Default Presence"


def test_only_rows_that_map_both_ways_are_round_trips() -> None:
    pairs = round_trips(DEMO_RULE, TEAM_A)
    assert pairs == [
        RoundTrip("Available_for_Chats", CxoneTarget.available()),
        RoundTrip("On_Break", CxoneTarget.unavailable("Break")),
        RoundTrip("Lunch", CxoneTarget.unavailable("Lunch")),
        RoundTrip("Case_Work", CxoneTarget.unavailable("CRM Work")),
    ]
    # "Available" maps to CXone Available, which publishes Available_for_Chats: not a round trip.
    assert all(pair.status != "Available" for pair in pairs)


def test_a_team_without_the_code_has_no_round_trip_through_it() -> None:
    assert [pair.status for pair in round_trips(DEMO_RULE, TEAM_B)] == ["Available_for_Chats", "On_Break", "Lunch"]


def hop(which: Hop, passed: bool, diagnosis: Diagnosis | None = None, seconds: float | None = 1.25) -> HopResult:
    return HopResult(which, "did", "wanted", "saw", passed, seconds if passed else None, diagnosis=diagnosis)


def test_a_report_passes_only_when_both_hops_carried_their_change() -> None:
    report = ValidationReport("agent7@example.com", hops=[hop(Hop.SALESFORCE_TO_CXONE, True), hop(Hop.CXONE_TO_SALESFORCE, True)])
    assert report.passed and report.failure is None
    assert "Salesforce → CXone 1.25 s" in report.headline

    closed = Diagnosis(Cause.CONSOLE_CLOSED, "no new presence spell.", "open the console")
    report.hops[1] = hop(Hop.CXONE_TO_SALESFORCE, False, closed)
    assert not report.passed
    assert report.failure is report.hops[1]
    assert "CXone → Salesforce" in report.headline and "Salesforce console closed" in report.headline
    assert "**Fix:** open the console" in report.markdown()
    assert [row["result"] for row in report.rows()] == ["passed", "FAILED"]


def test_a_restore_problem_is_a_note_not_the_failure() -> None:
    trouble = Diagnosis(Cause.TIMEOUT, "slow.", "wait")
    report = ValidationReport(
        "7", hops=[hop(Hop.SALESFORCE_TO_CXONE, True), hop(Hop.CXONE_TO_SALESFORCE, True),
                   HopResult(Hop.RESTORE, "set back", "x", "y", False, note="Salesforce still shows On_Break", diagnosis=trouble)]
    )
    assert report.passed and report.failure is None
    assert "_Restore: Salesforce still shows On_Break_" in report.markdown()


def test_artifact_keys_are_lowercase_dashed() -> None:
    assert artifact_key("Agent7@Example.com") == "validation-agent7-example-com"
    assert artifact_key("1000007") == "validation-1000007"
    assert artifact_key("@@") == "validation-agent"
