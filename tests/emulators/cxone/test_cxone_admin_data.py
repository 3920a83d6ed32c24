"""apis.md C2 admin data: agents, teams, unavailable codes, pagination, filters, input errors."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from presence_sync.emulators.cxone import CxoneEmulatorOptions
from presence_sync.emulators.cxone.tenant import FIRST_AGENT_ID

AGENT_FIELDS = {
    "agentId", "userName", "firstName", "lastName", "emailAddress", "isActive", "teamId", "teamName",
    "federatedId", "lastUpdated",
}  # fmt: skip


async def test_agents_are_the_demo_center_with_every_field(api: httpx.AsyncClient) -> None:
    body = (await api.get("/agents", params={"top": 100})).json()
    assert body["totalRecords"] == 20
    agents = body["agents"]
    assert [a["agentId"] for a in agents] == list(range(FIRST_AGENT_ID, FIRST_AGENT_ID + 20))
    assert all(set(a) == AGENT_FIELDS for a in agents)  # crmUserName is absent until one is set
    first, second = agents[0], agents[1]
    assert first["userName"] == first["emailAddress"] == "agent1@example.com"
    assert (first["firstName"], first["lastName"]) == ("Agent", "1")
    assert (first["teamName"], second["teamName"]) == ("Voice Team A", "Voice Team B")
    assert "integration@example.com" not in {a["userName"] for a in agents}
    datetime.fromisoformat(body["lastPollTime"])


async def test_agents_page_with_skip_top_and_links(api: httpx.AsyncClient) -> None:
    seen: list[int] = []
    url: str | None = "/agents?top=7"
    pages = 0
    while url:
        body = (await api.get(url)).json()
        assert body["totalRecords"] == 20
        seen += [a["agentId"] for a in body["agents"]]
        url = body["_links"]["next"]
        pages += 1
    assert pages == 3
    assert seen == sorted(set(seen)) and len(seen) == 20
    middle = (await api.get("/agents", params={"skip": 7, "top": 7})).json()["_links"]
    assert "skip=7" in middle["self"] and "skip=14" in middle["next"] and "skip=0" in middle["previous"]
    first = (await api.get("/agents", params={"top": 7})).json()["_links"]
    assert first["previous"] is None
    assert first["self"].startswith("http://cxone.test/incontactapi/services/v33.0/agents?")


@pytest.mark.parametrize("options", [CxoneEmulatorOptions(agents=30, page_size=10, max_page_size=25)])
async def test_a_top_above_the_maximum_is_lowered_and_links_follow_it(api: httpx.AsyncClient) -> None:
    default = (await api.get("/agents")).json()
    capped = (await api.get("/agents", params={"top": 1000})).json()
    assert len(default["agents"]) == 10
    assert len(capped["agents"]) == 25 and capped["totalRecords"] == 30
    assert "skip=25" in capped["_links"]["next"] and "top=25" in capped["_links"]["next"]


async def test_agents_filter_on_is_active(api: httpx.AsyncClient, http: httpx.AsyncClient, ids: dict[int, int]) -> None:
    assert (await http.patch(f"/__emulator/agents/{ids[3]}", json={"isActive": False})).status_code == 200
    active = (await api.get("/agents", params={"isActive": "true"})).json()
    inactive = (await api.get("/agents", params={"isActive": "false"})).json()
    assert active["totalRecords"] == 19 and ids[3] not in {a["agentId"] for a in active["agents"]}
    assert [a["agentId"] for a in inactive["agents"]] == [ids[3]]
    assert inactive["agents"][0]["isActive"] is False


async def test_agents_updated_since_returns_changed_records_inclusively(
    api: httpx.AsyncClient, http: httpx.AsyncClient, ids: dict[int, int]
) -> None:
    poll = (await api.get("/agents")).json()["lastPollTime"]
    assert (await api.get("/agents", params={"updatedSince": poll})).json()["totalRecords"] in (0, 20)
    await http.patch(f"/__emulator/agents/{ids[5]}", json={"crmUserName": "agent5.crm@example.com"})
    changed = (await api.get("/agents", params={"updatedSince": poll})).json()
    assert [a["agentId"] for a in changed["agents"]][-1] == ids[5]
    assert changed["agents"][-1]["crmUserName"] == "agent5.crm@example.com"
    assert changed["agents"][-1]["lastUpdated"] >= poll


async def test_teams_list_with_agent_counts_and_active_filter(api: httpx.AsyncClient, http: httpx.AsyncClient) -> None:
    await http.post("/__emulator/teams", json={"teamName": "Retired", "unavailableCodes": [], "isActive": False})
    teams = (await api.get("/teams")).json()
    assert teams["totalRecords"] == 4
    by_name = {t["teamName"]: t for t in teams["teams"]}
    # Every 10th agent chats; the others alternate between the voice teams.
    counts = [by_name[name]["agentCount"] for name in ("Voice Team A", "Voice Team B", "Chat Team")]
    assert counts == [10, 8, 2]
    assert by_name["Retired"] == {**by_name["Retired"], "isActive": False, "agentCount": 0}
    active = (await api.get("/teams", params={"isActive": "true"})).json()
    assert {t["teamName"] for t in active["teams"]} == {"Voice Team A", "Voice Team B", "Chat Team"}


async def test_team_unavailable_codes_differ_between_the_demo_teams(api: httpx.AsyncClient) -> None:
    teams = {t["teamName"]: t["teamId"] for t in (await api.get("/teams")).json()["teams"]}
    a = (await api.get(f"/teams/{teams['Voice Team A']}/unavailable-codes")).json()["unavailableCodes"]
    b = (await api.get(f"/teams/{teams['Voice Team B']}/unavailable-codes")).json()["unavailableCodes"]
    assert [c["outStateName"] for c in a] == ["Break", "Lunch", "CRM Work", "ACW"]
    assert [c["outStateName"] for c in b] == ["Break", "Lunch", "ACW"]
    chat = (await api.get(f"/teams/{teams['Chat Team']}/unavailable-codes")).json()["unavailableCodes"]
    assert [c["outStateName"] for c in chat] == ["Break", "Lunch", "CRM Work", "ACW"]
    assert [c["isAcw"] for c in a] == [False, False, False, True]
    assert all(set(c) == {"outStateId", "outStateName", "isAcw", "isActive"} for c in a)


async def test_unknown_team_is_404_and_a_non_numeric_one_400(api: httpx.AsyncClient) -> None:
    unknown = await api.get("/teams/999/unavailable-codes")
    assert unknown.status_code == 404
    assert "Voice Team A" in unknown.json()["error_description"]
    garbage = await api.get("/teams/abc/unavailable-codes")
    assert garbage.status_code == 400
    assert "teamId" in garbage.json()["error_description"]


async def test_unavailable_codes_with_active_filter(api: httpx.AsyncClient, http: httpx.AsyncClient) -> None:
    await http.post("/__emulator/unavailable-codes", json={"name": "Old Code", "isActive": False})
    every = (await api.get("/unavailable-codes")).json()
    assert every["totalRecords"] == 5
    active = (await api.get("/unavailable-codes", params={"isActive": "true"})).json()
    assert [(c["name"], c["isACW"]) for c in active["unavailableCodes"]] == [
        ("Break", False), ("Lunch", False), ("CRM Work", False), ("ACW", True),
    ]  # fmt: skip
    assert all(set(c) == {"id", "name", "isActive", "isACW", "agentTimeout"} for c in active["unavailableCodes"])


@pytest.mark.parametrize(
    ("path", "params", "names"),
    [
        ("/agents", {"top": "0"}, "top"),
        ("/agents", {"skip": "-1"}, "skip"),
        ("/agents", {"isActive": "maybe"}, "isActive"),
        ("/agents", {"updatedSince": "yesterday"}, "updatedSince"),
        ("/agents/states", {"updatedSince": "2026-13-45"}, "updatedSince"),
    ],
)
async def test_bad_query_parameters_are_400_naming_the_parameter(
    api: httpx.AsyncClient, path: str, params: dict[str, str], names: str
) -> None:
    response = await api.get(path, params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert names in response.json()["error_description"]


async def test_unknown_paths_answer_in_the_cxone_error_shape(api: httpx.AsyncClient) -> None:
    response = await api.get("/no-such-thing")
    assert response.status_code == 404
    assert set(response.json()) == {"error", "error_description"}
