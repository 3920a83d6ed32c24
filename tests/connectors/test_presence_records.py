"""The connectors' typed records of what an agent shows now: CXone agent states and Salesforce spells."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from presence_sync.connectors import CxoneAgentState, PresenceSpell, RecordError, Records, cxone_state_from_api

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0.replace(second=int(seconds), microsecond=int(seconds % 1 * 1_000_000))


@pytest.mark.parametrize(
    ("api", "key", "settable", "contact"),
    [
        ({"agentStateId": 1, "agentStateName": "Available"}, "Available", True, False),
        (
            {"agentStateName": "Unavailable", "outStateDescription": "Break", "isACW": False},
            "Unavailable:Break",
            True,
            False,
        ),
        ({"agentStateName": "Unavailable", "outStateDescription": ""}, "Unavailable", True, False),
        ({"agentStateName": "Unavailable", "outStateDescription": "Unavailable"}, "Unavailable", True, False),
        ({"agentStateName": "Unavailable", "outStateDescription": "ACW", "isACW": True}, "ACW", False, True),
        ({"agentStateName": "Unavailable", "outStateDescription": "Refused"}, "Refused", False, False),
        ({"agentStateId": 3}, "InboundContact", False, True),
        ({"agentStateName": "Dialer"}, "Dialer", False, True),
        ({"agentStateName": "LoggedOut", "outStateDescription": "Break"}, "LoggedOut", False, False),
        ({"agentStateId": 8}, "LoggedIn", False, False),
    ],
)
def test_cxone_state_from_the_api_shape(api, key, settable, contact):
    state = cxone_state_from_api(api)
    assert (state.key, state.is_settable, state.is_contact) == (key, settable, contact)
    assert (state.as_target() is not None) == settable


def test_cxone_state_errors_name_the_problem():
    with pytest.raises(RecordError, match="unknown CXone agent state 'OnFire'"):
        cxone_state_from_api({"agentStateName": "OnFire"})
    with pytest.raises(RecordError, match="neither 'agentStateName' nor 'agentStateId'"):
        cxone_state_from_api({"outStateDescription": "Break"})


def test_a_salesforce_query_row_reads_both_timestamp_formats() -> None:
    spell = PresenceSpell.from_record({
        "Id": "0Hn1", "UserId": "005A", "ServicePresenceStatus": {"DeveloperName": "Lunch"},
        "StatusStartDate": "2026-01-05T09:00:01.000+0000", "StatusEndDate": "2026-01-05T09:00:02.000Z",
        "IsCurrentState": False,
    })
    assert (spell.start, spell.end, spell.latest) == (at(1), at(2), at(2))


def test_an_agent_state_record_is_typed_and_named_by_its_spell() -> None:
    record = CxoneAgentState.from_api({
        "agentId": 7, "agentStateId": 2, "agentStateName": "Unavailable", "outStateId": 4,
        "outStateDescription": "Break", "isACW": False, "startDate": "2026-01-05T09:00:01.250Z",
    })
    assert (record.agent_id, record.state.key, record.since) == (7, "Unavailable:Break", at(1.25))
    assert record.source_id == "cx:7:2:4:2026-01-05T09:00:01.250Z"


def test_records_that_can_not_be_read_are_skipped_and_said() -> None:
    good = {"agentId": 7, "agentStateName": "Available", "startDate": "2026-01-05T09:00:01.000Z"}
    read = Records.read(
        [good, {"agentId": 8, "agentStateName": "OnFire", "startDate": "2026-01-05T09:00:01.000Z"},
         {"agentId": 9, "agentStateName": "Available", "startDate": "yesterday"}],
        CxoneAgentState.from_api,
    )
    assert [record.agent_id for record in read.records] == [7]
    assert len(read.problems) == 2
    assert "unknown CXone agent state 'OnFire'" in read.problems[0]
    assert "agent 9's startDate is not a timestamp" in read.problems[1]
