"""The `/__emulator/` controls: reset, faults (deterministic per seed), stats, credentials, org, users."""

from __future__ import annotations

from typing import Any

import httpx

from presence_sync.emulators.salesforce import SalesforceEmulator, SalesforceEmulatorOptions, create_app
from sf_emulator_support import DATA, LOGIN_URL, MY_DOMAIN_URL, password_form, query


async def test_credentials_name_the_hosts_as_seen_from_the_request(http: httpx.AsyncClient) -> None:
    creds = (await http.get(f"{LOGIN_URL}/__emulator/credentials")).json()
    assert {"client_id", "client_secret", "username", "password", "security_token", "my_domain_host",
            "jwt_private_key_pem", "jwt_public_key_pem", "run_as_username"} <= set(creds)
    assert creds["my_domain_host"] == "localhost:8000" and creds["login_host"] == "127.0.0.1:8000"
    assert creds["username"] == creds["run_as_username"] == "integration@example.com"
    assert creds["jwt_private_key_pem"].startswith("-----BEGIN PRIVATE KEY-----")
    public = (await http.get("https://login.salesforce.com/__emulator/credentials")).json()
    assert public["my_domain_host"] == "presence-demo.my.salesforce.com"


async def test_the_same_seed_yields_the_same_org() -> None:
    async def credentials(seed: int) -> dict[str, Any]:
        app = create_app(SalesforceEmulatorOptions(agents=2, seed=seed))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=MY_DOMAIN_URL) as http:
            return (await http.get("/__emulator/credentials")).json()  # type: ignore[no-any-return]

    first, again, other = await credentials(5), await credentials(5), await credentials(6)
    assert first == again
    assert first["client_secret"] != other["client_secret"] and first["org_id"] != other["org_id"]


async def test_reset_reseeds_and_clears_stats_and_sessions(
    http: httpx.AsyncClient, api: httpx.AsyncClient, emulator: SalesforceEmulator, creds: dict[str, str]
) -> None:
    await api.post("/sobjects/ServicePresenceStatus", json={"DeveloperName": "Lunch", "MasterLabel": "Lunch"})
    assert (await http.post("/__emulator/reset")).json() == {"seed": 7}
    assert (await api.get("/limits")).status_code == 401  # sessions are gone with the old org
    stats = (await http.get("/__emulator/stats")).json()
    assert stats["requests"] == {"GET /services/data/{version}/limits": 1}
    assert emulator.org.status_by_developer_name("Lunch") is None
    assert (await http.get("/__emulator/credentials")).json() == creds

    reseeded = await http.post("/__emulator/reset", json={"seed": 8})
    assert reseeded.json() == {"seed": 8}
    assert (await http.get("/__emulator/credentials")).json()["client_secret"] != creds["client_secret"]


async def test_stats_count_requests_by_route_template(http: httpx.AsyncClient) -> None:
    creds = (await http.get("/__emulator/credentials")).json()
    token = (await http.post("/services/oauth2/token", data=password_form(creds))).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    for _ in range(3):
        await http.get(f"{DATA}/query", params={"q": "SELECT Id FROM User LIMIT 1"}, headers=auth)
    status = {"DeveloperName": "X", "MasterLabel": "X"}
    await http.post(f"{DATA}/sobjects/ServicePresenceStatus/", json=status, headers=auth)
    await http.delete(f"{DATA}/sobjects/ServicePresenceStatus/0N5000000000000", headers=auth)

    stats = (await http.get("/__emulator/stats")).json()
    assert stats["requests"] == {
        "DELETE /services/data/{version}/sobjects/{sobject}/{record_id}": 1,
        "GET /services/data/{version}/query": 3,
        "POST /services/data/{version}/sobjects/{sobject}": 1,
        "POST /services/oauth2/token": 1,
    }
    assert stats["total_requests"] == 6 and stats["write_requests"] == 2  # the token request is a login, not a write
    assert stats["api_usage"] == {"used": 5, "limit": 5_000_000}
    assert stats["clock"].endswith("Z")


async def test_injected_errors_look_like_salesforce_errors_and_spare_the_controls(http: httpx.AsyncClient) -> None:
    await http.put("/__emulator/faults", json={"error_rate": 1.0, "error_status": 503})
    failed = await http.get(f"{DATA}/limits")
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "1"
    assert failed.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert (await http.get("/__emulator/stats")).json()["errors_injected"] == {"status_503": 1}

    await http.put("/__emulator/faults", json={"rate_limit_per_s": 0.001})
    limited = await http.get(f"{DATA}/limits")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


async def test_faults_are_deterministic_for_a_seed() -> None:
    async def outcomes(seed: int) -> list[int]:
        app = create_app(SalesforceEmulatorOptions(agents=2, seed=seed))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=LOGIN_URL) as http:
            creds = (await http.get("/__emulator/credentials")).json()
            token = (await http.post("/services/oauth2/token", data=password_form(creds))).json()
            await http.put("/__emulator/faults", json={"error_rate": 0.4, "error_status": 500})
            auth = {"Authorization": f"Bearer {token['access_token']}"}
            return [(await http.get(f"{DATA}/limits", headers=auth)).status_code for _ in range(30)]

    first, again, other = await outcomes(3), await outcomes(3), await outcomes(4)
    assert first == again
    assert {200, 500} <= set(first)
    assert first != other


async def test_dropped_connections_still_apply_the_request_when_dropped_after(
    api: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    await http.put("/__emulator/faults", json={"drop_rate": 1.0})
    outcomes = []
    for n in range(8):
        try:
            await api.post("/sobjects/ServicePresenceStatus", json={"DeveloperName": f"S{n}", "MasterLabel": "S"})
            outcomes.append("answered")
        except httpx.RemoteProtocolError:
            outcomes.append("dropped")
    await http.put("/__emulator/faults", json={})
    stored = (await query(api, "SELECT COUNT() FROM ServicePresenceStatus"))["totalSize"]
    injected = (await http.get("/__emulator/stats")).json()["errors_injected"]
    assert outcomes == ["dropped"] * 8
    assert stored == injected.get("drop_after", 0) and sum(injected.values()) == 8


async def test_org_settings_control(http: httpx.AsyncClient, emulator: SalesforceEmulator) -> None:
    assert (await http.get("/__emulator/org")).json() == {
        "block_username_password_flow": False, "api_daily_limit": 5_000_000, "mfa_users": [],
        "connected_app_creation_enabled": False}
    changed = await http.put("/__emulator/org", json={"connected_app_creation_enabled": True, "api_daily_limit": 10,
                                                       "mfa_users": ["A@example.com"]})
    assert changed.json() == {"block_username_password_flow": False, "api_daily_limit": 10,
                              "mfa_users": ["a@example.com"], "connected_app_creation_enabled": True}
    assert emulator.budget.limit == 10
    typo = await http.put("/__emulator/org", json={"api_daily_limt": 5})
    assert typo.status_code == 422 and "api_daily_limt" in typo.text


async def test_users_profiles_and_channels_can_be_added(http: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    profile = await http.post("/__emulator/profiles", json={"name": "Night Shift"})
    assert profile.status_code == 201 and profile.json()["id"].startswith("00e")
    user = await http.post("/__emulator/users", json={"username": "night1@example.com", "email": "night1@example.com",
                                                       "name": "Night One", "profile": "Night Shift"})
    assert user.status_code == 201 and user.json()["id"].startswith("005")
    channel = await http.post("/__emulator/channels", json={"developer_name": "sfdc_sms", "label": "SMS",
                                                             "related_entity": "MessagingSession"})
    assert channel.status_code == 201 and channel.json()["id"].startswith("0N9")

    [row] = (await query(api, "SELECT Username, FirstName, LastName, IsActive, Profile.Name FROM User "
                              "WHERE Username = 'night1@example.com'"))["records"]
    assert (row["FirstName"], row["LastName"], row["IsActive"]) == ("Night", "One", True)
    assert row["Profile"]["Name"] == "Night Shift"
    owned = (await query(api, f"SELECT Id FROM PermissionSet WHERE ProfileId = '{profile.json()['id']}'"))["records"]
    assert len(owned) == 1
    view = (await http.get(f"/__emulator/users/{user.json()['id']}")).json()
    assert view["console"] == {"open": True, "apply_delay_ms": 0} and view["presence"] is None

    duplicate = await http.post("/__emulator/users", json={"username": "NIGHT1@example.com", "email": "x@example.com",
                                                            "name": "X", "profile": "Night Shift"})
    assert duplicate.status_code == 409
    unknown = await http.post("/__emulator/users", json={"username": "n2@example.com", "email": "n2@example.com",
                                                          "name": "N", "profile": "Nope"})
    assert unknown.status_code == 404 and "Contact Center Agent" in unknown.json()["detail"]
    not_email = await http.post("/__emulator/users", json={"username": "night2", "email": "n", "name": "N"})
    assert not_email.status_code == 400 and "email address" in not_email.json()["detail"]
    assert (await http.post("/__emulator/profiles", json={"name": "Night Shift"})).status_code == 409
    assert (await http.post("/__emulator/channels", json={"developer_name": "sfdc_sms", "label": "x",
                                                           "related_entity": "x"})).status_code == 409


async def test_console_control_validates_its_input(http: httpx.AsyncClient, agent_id: str) -> None:
    negative = await http.put(f"/__emulator/users/{agent_id}/console", json={"open": True, "apply_delay_ms": -1})
    assert negative.status_code == 422
    assert (await http.put("/__emulator/users/nobody/console", json={"open": True})).status_code == 404
    kept = await http.put(f"/__emulator/users/{agent_id}/console", json={"open": True, "apply_delay_ms": 50})
    reopened = await http.put(f"/__emulator/users/{agent_id}/console", json={"open": False})
    assert kept.json() == {"open": True, "apply_delay_ms": 50}
    assert reopened.json() == {"open": False, "apply_delay_ms": 50}


async def test_default_apply_delay_option_sets_every_console() -> None:
    app = create_app(SalesforceEmulatorOptions(agents=1, default_apply_delay_ms=250))
    emulator: SalesforceEmulator = app.state.emulator
    user = emulator.user_by_username("agent1@example.com")
    assert user is not None and emulator.console(user.id).apply_delay_ms == 250
