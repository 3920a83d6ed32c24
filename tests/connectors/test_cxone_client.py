"""CXone client (apis.md C1-C4): discovery, tokens and their refresh, paging, the Agent API, errors."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from presence_sync.connectors import (
    AgentLoggedOut,
    CxoneClient,
    CxoneCredentials,
    InvalidClient,
    InvalidCredentials,
    InvalidReason,
    MalformedResponse,
    NotFound,
    NotPermitted,
    SessionRejected,
)
from presence_sync.connectors.retry import RetryPolicy
from presence_sync.engine import CxoneState, CxoneStateName

BASE = "/incontactapi/services/v33.0"


def client_for(cxone, retry: RetryPolicy, clock=None, **options) -> CxoneClient:
    extra = {"clock": clock} if clock is not None else {}
    return cxone.credentials().get_client(transport=cxone.transport(), retry=retry, **extra, **options)


async def test_discovery_then_openid_then_token_with_basic_auth_and_the_access_key(cxone, retry) -> None:
    async with client_for(cxone, retry) as cx:
        tenant = await cx.authenticate()
        endpoints = await cx.endpoints()

    paths = [(request.url.host, request.url.path) for request in cxone.requests]
    assert paths == [
        ("cxone.niceincontact.com", "/.well-known/cxone-configuration"),
        ("na1.nice-incontact.com", "/.well-known/openid-configuration"),
        ("na1.nice-incontact.com", "/auth/token"),
    ]
    assert cxone.requests[0].url.params["tenantId"] == cxone.tenant_id
    basic = base64.b64encode(f"{cxone.client_id}:{cxone.client_secret}".encode()).decode()
    assert cxone.token_auth == [f"Basic {basic}"]
    assert cxone.token_forms == [
        {"grant_type": "password", "username": cxone.access_key_id, "password": cxone.access_key_secret}
    ]
    assert all(request.headers["Accept"] == "application/json" for request in cxone.requests)
    assert tenant == cxone.tenant_id
    assert endpoints.api_url == "https://api-na1.niceincontact.com"
    assert endpoints.token_url == "https://na1.nice-incontact.com/auth/token"


async def test_explicit_hosts_skip_discovery(cxone, retry) -> None:
    creds = cxone.credentials(tenant_id=None, auth_url="https://na1.nice-incontact.com/",
                              api_url="api-na1.niceincontact.com")
    async with creds.get_client(transport=cxone.transport(), retry=retry) as cx:
        await cx.list_teams()
        tenant = cx.tenant_id

    assert cxone.calls["GET /.well-known/cxone-configuration"] == 0
    assert tenant == cxone.tenant_id  # read from the id_token's claims


async def test_an_unknown_tenant_is_named(cxone, retry) -> None:
    creds = cxone.credentials(tenant_id="no-such-tenant")
    async with creds.get_client(transport=cxone.transport(), retry=retry) as cx:
        with pytest.raises(NotFound) as caught:
            await cx.authenticate()

    assert "'no-such-tenant'" in str(caught.value)
    assert "cxone.tenant_id" in str(caught.value)


async def test_wrong_client_secret_or_unapproved_app(cxone, retry) -> None:
    creds = cxone.credentials(client_secret=SecretStr("nope-nope"))
    async with creds.get_client(transport=cxone.transport(), retry=retry) as cx:
        with pytest.raises(InvalidClient) as caught:
            await cx.authenticate()

    assert "client id or secret is wrong" in str(caught.value)
    assert "not approved" in str(caught.value)
    assert caught.value.status_code == 401
    assert cxone.token_requests == 1


async def test_wrong_or_revoked_access_key(cxone, retry) -> None:
    creds = cxone.credentials(access_key_secret=SecretStr("revoked-key"))
    async with creds.get_client(transport=cxone.transport(), retry=retry) as cx:
        with pytest.raises(InvalidCredentials) as caught:
            await cx.authenticate()

    assert "access key is wrong, revoked, or its user is inactive" in str(caught.value)
    assert caught.value.error_code == "invalid_grant"


async def test_the_token_is_refreshed_ahead_of_expiry(cxone, retry, clock) -> None:
    async with client_for(cxone, retry, clock) as cx:
        await cx.list_teams()
        clock.advance(0.79 * 3600)
        await cx.list_teams()
        assert cxone.token_requests == 1
        clock.advance(0.02 * 3600)  # past 80 % of the lifetime, still before expiry
        await asyncio.gather(*(cx.list_teams() for _ in range(100)))

    assert [form["grant_type"] for form in cxone.token_forms] == ["password", "refresh_token"]
    assert cxone.token_forms[1]["refresh_token"] == "cx-refresh-00001"
    assert cxone.calls[f"GET {BASE}/teams"] == 102  # no call hit an expired token


async def test_a_refused_refresh_token_falls_back_to_the_access_key(cxone, retry, clock) -> None:
    async with client_for(cxone, retry, clock) as cx:
        await cx.authenticate()
        cxone.valid_refresh_tokens.clear()
        clock.advance(3600)
        await cx.list_teams()

    assert [form["grant_type"] for form in cxone.token_forms] == ["password", "refresh_token", "password"]


async def test_a_401_refreshes_once_and_retries_for_a_hundred_concurrent_calls(cxone, retry) -> None:
    async with client_for(cxone, retry) as cx:
        await cx.authenticate()
        cxone.valid_tokens.clear()
        results = await asyncio.gather(*(cx.list_teams() for _ in range(100)))

    assert cxone.token_requests == 2
    assert all(len(teams) == 2 for teams in results)


async def test_a_token_refused_even_after_refreshing_is_reported(cxone, retry) -> None:
    cxone.faults.status(f"{BASE}/teams", 401, {"error": "invalid_token"}, times=5)
    async with client_for(cxone, retry) as cx:
        with pytest.raises(SessionRejected) as caught:
            await cx.list_teams()

    assert cxone.token_requests == 2
    assert cxone.calls[f"GET {BASE}/teams"] == 2
    assert f"GET {BASE}/teams" in str(caught.value)


async def test_agents_are_read_page_by_page(cxone, retry) -> None:
    cxone.add_agents(2500)
    async with client_for(cxone, retry, page_size=1000) as cx:
        agents = await cx.list_agents(is_active=True)

    assert [agent["agentId"] for agent in agents] == list(range(1000, 3500))
    listing = [request.url.params for request in cxone.requests if request.url.path == f"{BASE}/agents"]
    assert [(params["skip"], params["top"], params["isActive"]) for params in listing] == [
        ("0", "1000", "true"), ("1000", "1000", "true"), ("2000", "1000", "true"),
    ]


async def test_an_exact_multiple_of_the_page_size_stops_at_total_records(cxone, retry) -> None:
    cxone.add_agents(20)
    async with client_for(cxone, retry, page_size=10) as cx:
        agents = await cx.list_agents()

    assert len(agents) == 20
    assert cxone.calls[f"GET {BASE}/agents"] == 2


async def test_agent_states_return_the_cursor_for_the_next_poll(cxone, retry) -> None:
    cxone.states = [
        {"agentId": 1000 + n, "agentStateId": 1, "agentStateName": "Available", "outStateId": 0,
         "outStateDescription": "", "isACW": False, "startDate": "2026-11-25T09:59:00.000Z",
         "lastUpdateTime": "2026-11-25T09:59:00.000Z", "teamId": 11, "userName": f"agent{n}"}
        for n in range(25)
    ]
    since = datetime(2026, 11, 25, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    async with client_for(cxone, retry, page_size=10) as cx:
        page = await cx.agent_states(updated_since=since)

    assert [state.agent_id for state in page.states] == list(range(1000, 1025))
    # Each record typed: the state it shows and since when (`outStateDescription` "" is no code).
    assert page.states[0].state == CxoneState(CxoneStateName.AVAILABLE) and page.states[0].state.code is None
    assert page.states[0].since == datetime(2026, 11, 25, 9, 59, tzinfo=timezone.utc) and page.problems == []
    assert page.last_poll_time == cxone.last_poll_time
    sent = [request.url.params for request in cxone.requests if request.url.path == f"{BASE}/agents/states"]
    assert {params["updatedSince"] for params in sent} == {"2026-11-25T09:30:00.000Z"}
    assert len(sent) == 3


async def test_no_changes_keeps_the_cursor(cxone, retry) -> None:
    async with client_for(cxone, retry) as cx:
        page = await cx.agent_states(updated_since="2026-11-25T10:00:00.000Z")
        everything = await cx.agent_states()

    assert page.states == [] and page.last_poll_time == "2026-11-25T10:00:00.000Z"
    assert everything.states == [] and everything.last_poll_time is None


async def test_teams_and_unavailable_codes(cxone, retry) -> None:
    async with client_for(cxone, retry) as cx:
        teams = await cx.list_teams()
        team_b = await cx.team_unavailable_codes(12)
        codes = await cx.list_unavailable_codes()
        with pytest.raises(NotFound):
            await cx.team_unavailable_codes(99)

    assert [team["teamName"] for team in teams] == ["Voice Team A", "Voice Team B"]
    assert [code["outStateName"] for code in team_b] == ["Break", "Lunch", "ACW"]
    assert [code["name"] for code in codes if code["isACW"]] == ["ACW"]


async def test_set_state_joins_once_and_reuses_the_session(cxone, retry) -> None:
    cxone.add_agents(1)
    async with client_for(cxone, retry) as cx:
        await cx.set_state(1000, "Unavailable", reason="Break")
        await cx.set_state(1000, "Available")

    assert cxone.calls[f"POST {BASE}/agent-sessions/join"] == 1
    assert cxone.set_states == [(1000, {"state": "Unavailable", "reason": "Break"}), (1000, {"state": "Available"})]


async def test_an_ended_session_is_joined_again_once(cxone, retry) -> None:
    cxone.add_agents(1)
    async with client_for(cxone, retry) as cx:
        await cx.set_state(1000, "Available")
        cxone.end_sessions()
        await cx.set_state(1000, "Unavailable", reason="Lunch")

    assert cxone.calls[f"POST {BASE}/agent-sessions/join"] == 2
    assert cxone.set_states[-1] == (1000, {"state": "Unavailable", "reason": "Lunch"})


async def test_a_session_that_keeps_ending_is_reported(cxone, retry) -> None:
    cxone.add_agents(1)
    cxone.faults.add(f"{BASE}/agent-sessions/s", lambda request: httpx.Response(404, json={}), times=5)
    async with client_for(cxone, retry) as cx:
        with pytest.raises(NotFound) as caught:
            await cx.set_state(1000, "Available")

    assert cxone.calls[f"POST {BASE}/agent-sessions/join"] == 2
    assert "again right after it was joined" in str(caught.value)


async def test_a_code_the_team_lacks_is_named(cxone, retry) -> None:
    cxone.add_agents(1, team_id=12)  # Voice Team B has no CRM Work
    async with client_for(cxone, retry) as cx:
        with pytest.raises(InvalidReason) as caught:
            await cx.set_state(1000, "Unavailable", reason="CRM Work")

    assert "'CRM Work'" in str(caught.value)
    assert "team lacks that code" in str(caught.value)
    assert cxone.set_states == []


async def test_a_logged_out_agent_and_a_forbidden_agent(cxone, retry) -> None:
    cxone.add_agents(2)
    cxone.logged_in.discard(1000)
    cxone.forbidden_agents.add(1001)
    async with client_for(cxone, retry) as cx:
        with pytest.raises(AgentLoggedOut) as logged_out:
            await cx.set_state(1000, "Available")
        with pytest.raises(NotPermitted) as forbidden:
            await cx.join_session(1001)

    assert "agent 1000 is logged out" in str(logged_out.value)
    assert logged_out.value.status_code == 409
    assert "act for agent 1001" in str(forbidden.value)


async def test_logout_forgets_the_session(cxone, retry) -> None:
    cxone.add_agents(1)
    async with client_for(cxone, retry) as cx:
        await cx.set_state(1000, "Available")
        await cx.logout_agent(1000)
        with pytest.raises(AgentLoggedOut):
            await cx.set_state(1000, "Available")

    assert cxone.calls[f"POST {BASE}/agents/1000/logout"] == 1
    assert cxone.calls[f"POST {BASE}/agent-sessions/join"] == 2


@pytest.mark.parametrize(
    ("state", "reason", "problem"),
    [("Busy", None, "state must be one of"), ("Available", "Break", "only goes with state 'Unavailable'")],
)
async def test_unsettable_states_are_refused_before_any_request(cxone, retry, state, reason, problem) -> None:
    async with client_for(cxone, retry) as cx:
        with pytest.raises(ValueError, match=problem):
            await cx.set_state(1000, state, reason=reason)

    assert sum(cxone.calls.values()) == 0


async def test_throttling_is_retried_after_the_servers_delay(cxone, retry, sleeps) -> None:
    cxone.faults.status(f"{BASE}/agents/states", 429, {"message": "slow down"}, headers={"Retry-After": "2"})
    cxone.faults.status(f"{BASE}/agents/states", 503, {"message": "busy"})
    async with client_for(cxone, retry) as cx:
        await cx.agent_states()

    assert cxone.calls[f"GET {BASE}/agents/states"] == 3
    assert sleeps.delays == [2.0, 1.0]


@pytest.mark.parametrize(
    ("body", "problem"),
    [({"totalRecords": 1}, "body.agents"), ({"agents": [{"userName": "x"}]}, "body.agents[0].agentId"),
     ("<html/>", "")],
)
async def test_malformed_pages_name_the_endpoint(cxone, retry, body, problem: str) -> None:
    if isinstance(body, str):
        cxone.faults.add(f"{BASE}/agents", lambda request: httpx.Response(200, text=body))
    else:
        cxone.faults.status(f"{BASE}/agents", 200, body)
    async with client_for(cxone, retry) as cx:
        with pytest.raises(MalformedResponse) as caught:
            await cx.list_agents()

    assert f"GET {BASE}/agents" in str(caught.value)
    assert problem in str(caught.value)


async def test_an_unreadable_id_token_falls_back_to_the_configured_tenant(cxone, retry) -> None:
    cxone.faults.status("/auth/token", 200, {"access_token": "cx-x", "token_type": "Bearer", "expires_in": 3600,
                                             "refresh_token": "r", "id_token": "not-a-jwt"})
    async with client_for(cxone, retry) as cx:
        assert await cx.authenticate() == cxone.tenant_id


async def test_a_token_answer_without_expiry_is_malformed(cxone, retry) -> None:
    cxone.faults.status("/auth/token", 200, {"access_token": "cx-x", "token_type": "Bearer"})
    async with client_for(cxone, retry) as cx:
        with pytest.raises(MalformedResponse) as caught:
            await cx.authenticate()

    assert "POST /auth/token" in str(caught.value)
    assert "expires_in" in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({}, "set tenant_id"),
        ({"auth_url": "https://na1.nice-incontact.com"}, "api_url is missing"),
        ({"auth_url": "https://a.example", "api_url": "https://api.example/incontactapi/services/v33.0"},
         "host only"),
        ({"tenant_id": "t", "api_version": "newest"}, "api_version must look like"),
        ({"tenant_id": "t", "access_key_secret": SecretStr("")}, "access_key_secret must not be empty"),
    ],
)
def test_credentials_are_checked_with_the_fix_named(fields: dict, problem: str) -> None:
    values = {"client_id": "c", "client_secret": SecretStr("s"), "access_key_id": "k",
              "access_key_secret": SecretStr("a"), **fields}
    with pytest.raises(ValidationError) as caught:
        CxoneCredentials(**values)
    assert problem in str(caught.value)


def test_client_settings_are_checked(cxone) -> None:
    with pytest.raises(ValueError, match="page_size"):
        CxoneClient(cxone.credentials(), page_size=0)
    with pytest.raises(ValueError, match="refresh_fraction"):
        CxoneClient(cxone.credentials(), refresh_fraction=1.5)
