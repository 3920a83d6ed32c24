"""apis.md C3: joining an agent's session, setting its state from a server, forcing a logout."""

from __future__ import annotations

import httpx
import pytest

from presence_sync.emulators.cxone import CxoneEmulator


async def _join(api: httpx.AsyncClient, agent_id: int) -> httpx.Response:
    return await api.post("/agent-sessions/join", json={"asAgentId": agent_id})


async def _session(api: httpx.AsyncClient, agent_id: int) -> str:
    response = await _join(api, agent_id)
    assert response.status_code == 202, response.text
    return response.json()["sessionId"]


async def _set(api: httpx.AsyncClient, session_id: str, state: str, reason: str | None = None) -> httpx.Response:
    body = {"state": state} | ({"reason": reason} if reason is not None else {})
    return await api.post(f"/agent-sessions/{session_id}/state", json=body)


async def test_join_answers_the_agents_running_session(
    api: httpx.AsyncClient, emulator: CxoneEmulator, ids: dict[int, int]
) -> None:
    first = await _session(api, ids[1])
    assert first == emulator.tenant.session_of(ids[1])
    assert await _session(api, ids[1]) == first  # joining again: same long-lived session


async def test_setting_available_and_unavailable_with_a_code(
    api: httpx.AsyncClient, emulator: CxoneEmulator, ids: dict[int, int]
) -> None:
    session = await _session(api, ids[1])
    response = await _set(api, session, "Unavailable", "CRM Work")
    assert response.status_code == 202
    state = emulator.tenant.state(ids[1])
    assert (state["agentStateName"], state["outStateDescription"]) == ("Unavailable", "CRM Work")
    assert (await _set(api, session, "Available")).status_code == 202
    assert emulator.tenant.state(ids[1])["agentStateName"] == "Available"
    assert (await _set(api, session, "Unavailable")).status_code == 202
    assert emulator.tenant.state(ids[1])["outStateDescription"] == ""


@pytest.mark.parametrize(
    ("agent", "state", "reason", "named"),
    [
        (2, "Unavailable", "CRM Work", "Voice Team B"),  # Team B has no CRM Work
        (1, "Unavailable", "ACW", "system-managed"),
        (1, "Unavailable", "Refused", "system-managed"),
        (1, "Unavailable", "Coffee", "Coffee"),
        (1, "Busy", None, "Available"),
        (1, "Available", "Break", "reason"),
    ],
)
async def test_a_state_the_agent_may_not_take_is_400_and_changes_nothing(
    api: httpx.AsyncClient,
    emulator: CxoneEmulator,
    ids: dict[int, int],
    agent: int,
    state: str,
    reason: str | None,
    named: str,
) -> None:
    session = await _session(api, ids[agent])
    before = emulator.tenant.state(ids[agent])
    response = await _set(api, session, state, reason)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert named in response.json()["error_description"]
    assert emulator.tenant.state(ids[agent]) == before


async def test_join_refuses_logged_out_unknown_and_malformed(
    api: httpx.AsyncClient, http: httpx.AsyncClient, ids: dict[int, int]
) -> None:
    await http.put(f"/__emulator/agents/{ids[3]}/session", json={"open": False})
    logged_out = await _join(api, ids[3])
    assert logged_out.status_code == 409
    assert "log in" in logged_out.json()["error_description"]
    assert (await _join(api, 42)).status_code == 404
    no_id = await api.post("/agent-sessions/join", json={})
    assert no_id.status_code == 400
    assert "asAgentId" in no_id.json()["error_description"]
    assert (await api.post("/agent-sessions/join", json={"asAgentId": "abc"})).status_code == 400


async def test_a_session_ended_by_logout_is_404_and_a_new_login_gives_a_new_one(
    api: httpx.AsyncClient, http: httpx.AsyncClient, emulator: CxoneEmulator, ids: dict[int, int]
) -> None:
    old = await _session(api, ids[5])
    assert (await api.post(f"/agents/{ids[5]}/logout")).status_code == 202
    assert emulator.tenant.state(ids[5])["agentStateName"] == "LoggedOut"
    assert (await api.post(f"/agents/{ids[5]}/logout")).status_code == 202  # already out: nothing to do
    ended = await _set(api, old, "Available")
    assert ended.status_code == 404
    assert "join" in ended.json()["error_description"]
    assert (await _join(api, ids[5])).status_code == 409
    await http.put(f"/__emulator/agents/{ids[5]}/session", json={"open": True})
    assert await _session(api, ids[5]) != old
    assert (await api.post("/agents/42/logout")).status_code == 404


async def test_a_state_set_during_a_contact_is_accepted_and_applied_after_it(
    api: httpx.AsyncClient, http: httpx.AsyncClient, emulator: CxoneEmulator, ids: dict[int, int]
) -> None:
    session = await _session(api, ids[1])
    for action in ("offer", "accept"):
        await http.post(f"/__emulator/agents/{ids[1]}/contact", json={"action": action})
    assert (await _set(api, session, "Unavailable", "Break")).status_code == 202
    assert emulator.tenant.state(ids[1])["agentStateName"] == "InboundContact"
    emulator.tenant.contact(ids[1], "end")
    assert emulator.tenant.state(ids[1])["isACW"] is True
    emulator.tenant.contact(ids[1], "end_acw")
    assert emulator.tenant.state(ids[1])["outStateDescription"] == "Break"


async def test_a_key_limited_to_some_teams_gets_403_for_other_agents(
    api: httpx.AsyncClient, http: httpx.AsyncClient, ids: dict[int, int]
) -> None:
    team_a = (await api.get("/agents", params={"top": 1})).json()["agents"][0]["teamId"]
    policy = (await http.put("/__emulator/credentials", json={"agent_scope_team_ids": [team_a]})).json()
    assert policy["agent_scope_team_ids"] == [team_a]
    assert (await _join(api, ids[1])).status_code == 202
    forbidden = await _join(api, ids[2])
    assert forbidden.status_code == 403
    assert forbidden.json()["error"] == "forbidden"
    assert (await api.post(f"/agents/{ids[2]}/logout")).status_code == 403
    await http.put("/__emulator/credentials", json={"agent_scope_team_ids": None})
    assert (await _join(api, ids[2])).status_code == 202


async def test_agent_api_writes_are_counted_by_route_template(
    api: httpx.AsyncClient, http: httpx.AsyncClient, ids: dict[int, int]
) -> None:
    session = await _session(api, ids[1])
    await _set(api, session, "Unavailable", "Break")
    await _set(api, session, "Available")
    stats = (await http.get("/__emulator/stats")).json()
    requests = stats["requests"]
    assert requests["POST /incontactapi/services/{version}/agent-sessions/join"] == 1
    assert requests["POST /incontactapi/services/{version}/agent-sessions/{sessionId}/state"] == 2
    assert requests["POST /auth/token"] == 1
    assert stats["write_requests"] == 3  # the join and two states; logging in writes nothing
