"""apis.md C2 real-time states: the state machine (agent clicks, contacts, sessions) and the deltas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from presence_sync.emulators.cxone import CxoneEmulator
from presence_sync.emulators.cxone.errors import Conflict, NotFound
from presence_sync.emulators.cxone.tenant import ChangeLog
from presence_sync.emulators.faults import iso_z

STATE_FIELDS = {
    "agentId", "agentStateId", "agentStateName", "outStateId", "outStateDescription", "isACW", "startDate",
    "lastUpdateTime", "teamId", "userName",
}  # fmt: skip


async def _contact(http: httpx.AsyncClient, agent_id: int, action: str) -> httpx.Response:
    return await http.post(f"/__emulator/agents/{agent_id}/contact", json={"action": action})


async def _click(http: httpx.AsyncClient, agent_id: int, state: str, reason: str | None = None) -> httpx.Response:
    return await http.put(f"/__emulator/agents/{agent_id}/state", json={"state": state, "reason": reason})


def _codes(emulator: CxoneEmulator) -> dict[str, int]:
    return {c["name"]: c["id"] for c in emulator.tenant.codes_page(0, 100).records}


async def test_every_seeded_agent_is_logged_in_and_available(api: httpx.AsyncClient) -> None:
    body = (await api.get("/agents/states", params={"top": 100})).json()
    assert body["totalRecords"] == 20
    for state in body["agentStates"]:
        assert set(state) == STATE_FIELDS  # no contactId outside a contact
        assert (state["agentStateId"], state["agentStateName"]) == (1, "Available")
        assert (state["outStateId"], state["outStateDescription"], state["isACW"]) == (0, "", False)


async def test_a_delta_is_inclusive_of_its_millisecond_and_coalesces_per_agent(
    api: httpx.AsyncClient, http: httpx.AsyncClient, ids: dict[int, int], frozen: Any
) -> None:
    poll = (await api.get("/agents/states")).json()["lastPollTime"]
    assert poll == iso_z(frozen.at)
    # A change in the very millisecond of lastPollTime must not be lost by the next delta.
    await _click(http, ids[3], "Unavailable", "Break")
    frozen.tick(5)
    await _click(http, ids[5], "Unavailable", "Break")
    frozen.tick(5)
    await _click(http, ids[5], "Unavailable", "Lunch")
    delta = (await api.get("/agents/states", params={"updatedSince": poll})).json()
    assert delta["totalRecords"] == 2
    assert [(s["agentId"], s["outStateDescription"]) for s in delta["agentStates"]] == [
        (ids[3], "Break"),
        (ids[5], "Lunch"),
    ]
    assert delta["agentStates"][1]["startDate"] == delta["agentStates"][1]["lastUpdateTime"] == iso_z(frozen.at)
    # The client sends lastPollTime back: what it saw is repeated only within that same millisecond.
    again = (await api.get("/agents/states", params={"updatedSince": delta["lastPollTime"]})).json()
    assert [s["agentId"] for s in again["agentStates"]] == [ids[5]]
    frozen.tick(1)
    quiet = (await api.get("/agents/states", params={"updatedSince": iso_z(frozen.at)})).json()
    assert (quiet["totalRecords"], quiet["agentStates"], quiet["_links"]["next"]) == (0, [], None)


async def test_a_delta_pages_with_the_same_updated_since(
    api: httpx.AsyncClient, emulator: CxoneEmulator, ids: dict[int, int], frozen: Any
) -> None:
    since = iso_z(frozen.at)
    for i in range(1, 11):
        frozen.tick()
        emulator.tenant.set_state(ids[i], "Unavailable", "Break")
    first = (await api.get("/agents/states", params={"updatedSince": since, "top": 4})).json()
    assert first["totalRecords"] == 10
    seen = [s["agentId"] for s in first["agentStates"]]
    url = first["_links"]["next"]
    while url:
        page = (await api.get(url)).json()
        seen += [s["agentId"] for s in page["agentStates"]]
        url = page["_links"]["next"]
    assert seen == [ids[i] for i in range(1, 11)]


async def test_asking_for_the_current_state_changes_nothing(
    api: httpx.AsyncClient, http: httpx.AsyncClient, ids: dict[int, int], frozen: Any
) -> None:
    await _click(http, ids[1], "Unavailable", "Break")
    since = iso_z(frozen.at)
    frozen.tick(100)
    before = (await _click(http, ids[1], "Unavailable", "Break")).json()
    assert before["startDate"] < iso_z(frozen.at)
    frozen.tick(1)
    delta = (await api.get("/agents/states", params={"updatedSince": iso_z(frozen.at)})).json()
    assert delta["totalRecords"] == 0
    assert (await api.get("/agents/states", params={"updatedSince": since})).json()["totalRecords"] == 1


async def test_unavailable_with_a_code_and_the_system_default(
    http: httpx.AsyncClient, emulator: CxoneEmulator, ids: dict[int, int]
) -> None:
    coded = (await _click(http, ids[1], "Unavailable", "CRM Work")).json()
    assert (coded["agentStateId"], coded["agentStateName"]) == (2, "Unavailable")
    assert (coded["outStateId"], coded["outStateDescription"], coded["isACW"]) == (
        _codes(emulator)["CRM Work"],
        "CRM Work",
        False,
    )
    default = (await _click(http, ids[1], "Unavailable")).json()
    assert (default["agentStateName"], default["outStateId"], default["outStateDescription"]) == ("Unavailable", 0, "")
    back = (await _click(http, ids[1], "Available")).json()
    assert back["agentStateName"] == "Available"


async def test_an_inbound_contact_goes_through_acw_back_to_the_state_before(
    http: httpx.AsyncClient, emulator: CxoneEmulator, ids: dict[int, int]
) -> None:
    agent = ids[2]
    offered = (await _contact(http, agent, "offer")).json()
    assert offered["agentStateName"] == "Available"  # ringing does not change the state
    on_call = (await _contact(http, agent, "accept")).json()
    assert (on_call["agentStateId"], on_call["agentStateName"]) == (3, "InboundContact")
    assert isinstance(on_call["contactId"], int)
    acw = (await _contact(http, agent, "end")).json()
    assert (acw["agentStateName"], acw["isACW"], acw["outStateDescription"]) == ("Unavailable", True, "ACW")
    assert acw["outStateId"] == _codes(emulator)["ACW"]
    assert "contactId" not in acw
    done = (await _contact(http, agent, "end_acw")).json()
    assert (done["agentStateName"], done["isACW"]) == ("Available", False)


async def test_a_refused_contact_leaves_the_agent_unavailable_refused(http: httpx.AsyncClient, ids: dict[int, int]) -> None:
    await _contact(http, ids[1], "offer")
    refused = (await _contact(http, ids[1], "refuse")).json()
    assert (refused["agentStateName"], refused["outStateDescription"], refused["isACW"]) == (
        "Unavailable",
        "Refused",
        False,
    )
    assert (await _click(http, ids[1], "Available")).json()["agentStateName"] == "Available"


async def test_an_outbound_call_from_a_break_returns_to_the_break(http: httpx.AsyncClient, ids: dict[int, int]) -> None:
    await _click(http, ids[1], "Unavailable", "Break")
    dialing = (await _contact(http, ids[1], "dial")).json()
    assert (dialing["agentStateId"], dialing["agentStateName"]) == (4, "OutboundContact")
    await _contact(http, ids[1], "end")
    after = (await _contact(http, ids[1], "end_acw")).json()
    assert (after["agentStateName"], after["outStateDescription"]) == ("Unavailable", "Break")


async def test_without_an_acw_code_a_contact_ends_straight_into_the_previous_state(
    http: httpx.AsyncClient, emulator: CxoneEmulator
) -> None:
    team = (await http.post("/__emulator/teams", json={"teamName": "Chat", "unavailableCodes": ["Break"]})).json()
    new = {"firstName": "Ann", "lastName": "Lee", "emailAddress": "ann@example.com", "teamId": team["teamId"]}
    agent = (await http.post("/__emulator/agents", json=new)).json()["agentId"]
    await http.put(f"/__emulator/agents/{agent}/session", json={"open": True})
    await _click(http, agent, "Available")
    await _contact(http, agent, "offer")
    await _contact(http, agent, "accept")
    ended = (await _contact(http, agent, "end")).json()
    assert (ended["agentStateName"], ended["isACW"]) == ("Available", False)


async def test_a_state_picked_during_a_contact_waits_for_the_contact_and_acw(
    http: httpx.AsyncClient, ids: dict[int, int]
) -> None:
    await _contact(http, ids[1], "offer")
    await _contact(http, ids[1], "accept")
    during = (await _click(http, ids[1], "Unavailable", "Lunch")).json()
    assert during["agentStateName"] == "InboundContact"
    assert (await _contact(http, ids[1], "end")).json()["isACW"] is True
    after = (await _contact(http, ids[1], "end_acw")).json()
    assert (after["agentStateName"], after["outStateDescription"]) == ("Unavailable", "Lunch")


async def test_a_state_picked_during_acw_ends_it_at_once(http: httpx.AsyncClient, ids: dict[int, int]) -> None:
    await _contact(http, ids[1], "offer")
    await _contact(http, ids[1], "accept")
    await _contact(http, ids[1], "end")
    now = (await _click(http, ids[1], "Unavailable", "Break")).json()
    assert (now["outStateDescription"], now["isACW"]) == ("Break", False)
    late = await _contact(http, ids[1], "end_acw")
    assert late.status_code == 409


@pytest.mark.parametrize(
    ("setup", "action", "status"),
    [
        ([], "accept", 409),  # nothing offered
        ([], "refuse", 409),
        ([], "end", 409),  # not on a contact
        ([], "end_acw", 409),  # not in ACW
        (["offer"], "offer", 409),  # already ringing
        (["offer", "accept"], "dial", 409),
        ([], "transfer", 400),
    ],
)
async def test_contact_actions_out_of_order_are_refused(
    http: httpx.AsyncClient, ids: dict[int, int], setup: list[str], action: str, status: int
) -> None:
    for step in setup:
        assert (await _contact(http, ids[1], step)).status_code == 200
    before = (await http.get(f"/__emulator/agents/{ids[1]}/state")).json()
    response = await _contact(http, ids[1], action)
    assert response.status_code == status
    assert response.json()["error_description"]
    assert (await http.get(f"/__emulator/agents/{ids[1]}/state")).json() == before


async def test_an_offer_is_withdrawn_when_the_agent_leaves_available(http: httpx.AsyncClient, ids: dict[int, int]) -> None:
    await _contact(http, ids[1], "offer")
    await _click(http, ids[1], "Unavailable", "Break")
    assert (await _contact(http, ids[1], "accept")).status_code == 409
    not_available = await _contact(http, ids[1], "offer")
    assert not_available.status_code == 409
    assert "Available" in not_available.json()["error_description"]


async def test_sessions_log_in_unavailable_with_a_new_id_and_log_out(
    http: httpx.AsyncClient, emulator: CxoneEmulator, ids: dict[int, int]
) -> None:
    first = emulator.tenant.session_of(ids[4])
    closed = (await http.put(f"/__emulator/agents/{ids[4]}/session", json={"open": False})).json()
    assert closed["sessionId"] is None
    assert (closed["state"]["agentStateId"], closed["state"]["agentStateName"]) == (0, "LoggedOut")
    assert (await _click(http, ids[4], "Available")).status_code == 409
    assert (await _contact(http, ids[4], "offer")).status_code == 409
    opened = (await http.put(f"/__emulator/agents/{ids[4]}/session", json={"open": True})).json()
    assert opened["sessionId"] not in (None, first)
    assert (opened["state"]["agentStateName"], opened["state"]["outStateDescription"]) == ("Unavailable", "")
    again = (await http.put(f"/__emulator/agents/{ids[4]}/session", json={"open": True})).json()
    assert again["sessionId"] == opened["sessionId"]


async def test_an_inactive_agent_cannot_log_in_and_deactivation_logs_out(
    http: httpx.AsyncClient, ids: dict[int, int]
) -> None:
    record = (await http.patch(f"/__emulator/agents/{ids[6]}", json={"isActive": False})).json()
    assert record["isActive"] is False
    assert (await http.get(f"/__emulator/agents/{ids[6]}/state")).json()["agentStateName"] == "LoggedOut"
    refused = await http.put(f"/__emulator/agents/{ids[6]}/session", json={"open": True})
    assert refused.status_code == 409
    assert "inactive" in refused.json()["error_description"]


async def test_moving_an_agent_to_another_team_shows_in_the_state_delta(
    api: httpx.AsyncClient, http: httpx.AsyncClient, ids: dict[int, int], frozen: Any
) -> None:
    teams = {t["teamName"]: t["teamId"] for t in (await api.get("/teams")).json()["teams"]}
    start = (await http.get(f"/__emulator/agents/{ids[1]}/state")).json()["startDate"]
    frozen.tick(10)
    since = iso_z(frozen.at)
    await http.patch(f"/__emulator/agents/{ids[1]}", json={"teamId": teams["Voice Team B"]})
    delta = (await api.get("/agents/states", params={"updatedSince": since})).json()["agentStates"]
    assert [(s["agentId"], s["teamId"], s["startDate"]) for s in delta] == [(ids[1], teams["Voice Team B"], start)]
    counts = {t["teamName"]: t["agentCount"] for t in (await api.get("/teams")).json()["teams"]}
    assert counts == {"Voice Team A": 9, "Voice Team B": 9, "Chat Team": 2}


async def test_the_python_api_raises_typed_errors(emulator: CxoneEmulator, ids: dict[int, int]) -> None:
    tenant = emulator.tenant
    assert tenant.find_agent("AGENT1@example.com")["agentId"] == ids[1]
    with pytest.raises(NotFound, match="nobody@example.com"):
        tenant.find_agent("nobody@example.com")
    with pytest.raises(Conflict) as refused:
        tenant.contact(ids[1], "end")
    assert refused.value.status == 409
    tenant.contact(ids[1], "offer")
    state = tenant.contact(ids[1], "accept")
    assert tenant.state(ids[1]) == state and state["agentStateName"] == "InboundContact"


def test_the_change_log_keeps_each_key_once_at_its_latest_change() -> None:
    log = ChangeLog()
    t = [datetime.fromisoformat(f"2026-01-01T00:00:0{s}+00:00") for s in range(5)]
    log.touch(1, t[0])
    log.touch(2, t[1])
    log.touch(1, t[2])
    log.touch(3, t[2])
    assert log.since(t[0]) == [2, 1, 3]
    assert log.since(t[2]) == [1, 3]
    assert log.since(t[3]) == []
