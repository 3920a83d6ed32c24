"""Smoke test over real HTTP: the emulator under uvicorn on loopback, driven like a client would."""

from __future__ import annotations

import base64

import httpx

from presence_sync.emulators.server import RunningServer


def test_a_client_discovers_logs_in_reads_and_sets_a_state_over_http(loopback_server: RunningServer) -> None:
    with httpx.Client(base_url=loopback_server.url, timeout=10) as http:
        creds = http.get("/__emulator/credentials").json()
        config = http.get("/.well-known/cxone-configuration", params={"tenantId": creds["tenant_id"]}).json()
        assert config["auth_endpoint"] == config["api_endpoint"] == loopback_server.url
        token_url = http.get(f"{config['auth_endpoint']}/.well-known/openid-configuration").json()["token_endpoint"]
        basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
        tokens = http.post(
            token_url,
            data={"grant_type": "password", "username": creds["access_key_id"], "password": creds["access_key_secret"]},
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        ).json()
        api = f"{config['api_endpoint']}/incontactapi/services/v33.0"
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        first = http.get(f"{api}/agents/states", headers=auth).json()
        agent = http.get(f"{api}/agents", params={"top": 1}, headers=auth).json()["agents"][0]
        session = http.post(f"{api}/agent-sessions/join", json={"asAgentId": agent["agentId"]}, headers=auth)
        assert session.status_code == 202
        changed = http.post(
            f"{api}/agent-sessions/{session.json()['sessionId']}/state",
            json={"state": "Unavailable", "reason": "Lunch"},
            headers=auth,
        )
        assert changed.status_code == 202
        delta = http.get(f"{api}/agents/states", params={"updatedSince": first["lastPollTime"]}, headers=auth).json()
        mine = [s for s in delta["agentStates"] if s["agentId"] == agent["agentId"]]
        assert [(s["agentStateName"], s["outStateDescription"]) for s in mine] == [("Unavailable", "Lunch")]
