"""The CXone emulator's `/__emulator/` controls: reset, faults, stats, credentials, seeding more."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from presence_sync.emulators.cxone import CxoneEmulatorOptions, create_app

API = "/incontactapi/services/v33.0"


async def test_credentials_are_the_seeded_fake_ones(http: httpx.AsyncClient, emulator: Any) -> None:
    creds = (await http.get("/__emulator/credentials")).json()
    assert creds["tenant_id"] == emulator.options.tenant_id
    assert creds["access_key_user"] == "integration@example.com"
    assert {"client_id", "client_secret", "access_key_id", "access_key_secret"} <= creds.keys()
    assert creds["client_approved"] and creds["access_key_active"] and creds["access_key_user_active"]


async def test_reset_restores_the_seeded_center_and_clears_faults_and_stats(
    api: httpx.AsyncClient, http: httpx.AsyncClient, ids: dict[int, int]
) -> None:
    await http.put(f"/__emulator/agents/{ids[1]}/state", json={"state": "Unavailable", "reason": "Break"})
    await http.post("/__emulator/teams", json={"teamName": "Extra"})
    await http.put("/__emulator/credentials", json={"access_key_active": False})
    await http.put("/__emulator/faults", json={"error_rate": 1.0})
    assert (await api.get("/teams")).status_code == 503
    assert (await http.post("/__emulator/reset", json={"seed": 5})).status_code == 200
    stats = (await http.get("/__emulator/stats")).json()
    assert stats["total_requests"] == 0 and stats["errors_injected"] == {}
    teams = (await api.get("/teams")).json()  # tokens issued before the reset still work
    assert [t["teamName"] for t in teams["teams"]] == ["Voice Team A", "Voice Team B", "Chat Team"]
    states = (await api.get("/agents/states")).json()["agentStates"]
    assert {s["agentStateName"] for s in states} == {"Available"}
    assert (await http.get("/__emulator/credentials")).json()["access_key_active"] is True


async def test_reset_without_a_body_works(http: httpx.AsyncClient) -> None:
    assert (await http.post("/__emulator/reset")).status_code == 200


async def _statuses(seed: int, count: int = 40) -> list[int]:
    app = create_app(CxoneEmulatorOptions(agents=2, seed=seed))
    tenant_id = app.state.emulator.options.tenant_id
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as http:
        await http.put("/__emulator/faults", json={"error_rate": 0.5, "error_status": 503})
        return [
            (await http.get("/.well-known/cxone-configuration", params={"tenantId": tenant_id})).status_code
            for _ in range(count)
        ]


async def test_faults_are_deterministic_for_a_seed() -> None:
    first, again, other = await _statuses(3), await _statuses(3), await _statuses(4)
    assert first == again
    assert first != other
    assert {200, 503} == set(first)


async def test_injected_errors_look_like_cxone_errors_and_spare_the_controls(
    api: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    await http.put("/__emulator/faults", json={"error_rate": 1.0, "error_status": 503})
    response = await api.get("/agents")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "service_unavailable"
    assert (await http.get("/__emulator/stats")).status_code == 200
    stats = (await http.get("/__emulator/stats")).json()
    assert stats["errors_injected"] == {"status_503": 1}
    assert stats["requests"] == {"GET /incontactapi/services/{version}/agents": 1, "POST /auth/token": 1}


async def test_rate_limit_answers_429_with_retry_after(api: httpx.AsyncClient, http: httpx.AsyncClient) -> None:
    await http.put("/__emulator/faults", json={"rate_limit_per_s": 1})
    statuses = [(await api.get("/teams")) for _ in range(3)]
    limited = [r for r in statuses if r.status_code == 429]
    assert statuses[0].status_code == 200 and limited
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json()["error"] == "too_many_requests"


async def test_a_dropped_connection_reaches_the_client_as_a_protocol_error(
    api: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    await http.put("/__emulator/faults", json={"drop_rate": 1.0})
    with pytest.raises(httpx.RemoteProtocolError):
        await api.get("/teams")


async def test_bad_fault_settings_are_400(http: httpx.AsyncClient) -> None:
    response = await http.put("/__emulator/faults", json={"error_rate": 2})
    assert response.status_code == 400
    assert "error_rate" in response.json()["error_description"]


async def test_new_codes_teams_and_agents_appear_in_the_api(api: httpx.AsyncClient, http: httpx.AsyncClient) -> None:
    code = await http.post("/__emulator/unavailable-codes", json={"name": "Training", "isACW": False})
    assert code.status_code == 201
    team = (await http.post("/__emulator/teams", json={"teamName": "Email", "unavailableCodes": ["Training", "ACW"]})).json()
    body = {
        "firstName": "Bo", "lastName": "Ng", "emailAddress": "bo@example.com", "teamId": team["teamId"],
        "crmUserName": "bo@crm.example.com",
    }  # fmt: skip
    created = await http.post("/__emulator/agents", json=body)
    assert created.status_code == 201
    agent_id = created.json()["agentId"]
    agents = (await api.get("/agents", params={"top": 100})).json()
    bo = next(a for a in agents["agents"] if a["agentId"] == agent_id)
    assert (bo["userName"], bo["teamName"], bo["crmUserName"]) == ("bo@example.com", "Email", "bo@crm.example.com")
    codes = (await api.get(f"/teams/{team['teamId']}/unavailable-codes")).json()["unavailableCodes"]
    assert [c["outStateName"] for c in codes] == ["Training", "ACW"]
    state = (await http.get(f"/__emulator/agents/{agent_id}/state")).json()
    assert state["agentStateName"] == "LoggedOut"  # a new agent has not logged in yet


@pytest.mark.parametrize(
    ("path", "body", "status", "named"),
    [
        ("/__emulator/unavailable-codes", {"name": "Break"}, 409, "Break"),
        ("/__emulator/unavailable-codes", {"name": "  "}, 400, "name"),
        ("/__emulator/teams", {"teamName": "Voice Team A"}, 409, "Voice Team A"),
        ("/__emulator/teams", {"teamName": "New", "unavailableCodes": ["Nap"]}, 400, "Nap"),
        ("/__emulator/agents", {"firstName": "A", "lastName": "B", "emailAddress": "agent1@example.com",
                                "teamId": 1001}, 409, "agent1@example.com"),  # fmt: skip
        ("/__emulator/agents", {"firstName": "A", "lastName": "B", "emailAddress": "x@example.com",
                                "teamId": 77}, 400, "77"),  # fmt: skip
        ("/__emulator/agents", {"firstName": "A", "lastName": "B", "emailAddress": "not-an-email",
                                "teamId": 1001}, 400, "not-an-email"),  # fmt: skip
        ("/__emulator/agents", {"firstName": "A"}, 400, "lastName"),
        ("/__emulator/teams", {"teamName": "T", "colour": "red"}, 400, "colour"),
    ],
)
async def test_bad_control_input_is_refused_with_a_reason(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], status: int, named: str
) -> None:
    response = await http.post(path, json=body)
    assert response.status_code == status
    assert named in response.json()["error_description"]


async def test_controls_on_an_unknown_agent_are_404(http: httpx.AsyncClient) -> None:
    for response in (
        await http.put("/__emulator/agents/5/session", json={"open": True}),
        await http.put("/__emulator/agents/5/state", json={"state": "Available"}),
        await http.post("/__emulator/agents/5/contact", json={"action": "offer"}),
        await http.patch("/__emulator/agents/5", json={"isActive": True}),
    ):
        assert response.status_code == 404
        assert "5" in response.json()["error_description"]
