"""Fixtures for the Salesforce emulator tests: an in-process app per test, raw httpx (no connectors).

`MY_DOMAIN_URL` uses the name `localhost`, which the emulator treats as the org's My Domain; the
generic login host of the same app is `127.0.0.1` (apis.md, "The emulators' own controls").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from presence_sync.emulators.demo_center import AGENT_PROFILE, STATUSES, SUPERVISOR_PROFILE
from presence_sync.emulators.salesforce import SalesforceEmulator, SalesforceEmulatorOptions, create_app
from presence_sync.emulators.server import RunningServer, serve_in_thread
from sf_emulator_support import AGENTS, DATA, LOGIN_URL, MY_DOMAIN_URL, FrozenClock, password_form, query, single_id


@pytest.fixture
def options() -> SalesforceEmulatorOptions:
    return SalesforceEmulatorOptions(agents=AGENTS, seed=7)


@pytest.fixture
def app(options: SalesforceEmulatorOptions) -> Any:
    return create_app(options)


@pytest.fixture
def emulator(app: Any) -> SalesforceEmulator:
    return app.state.emulator


@pytest.fixture
def frozen_clock(emulator: SalesforceEmulator, monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    clock = FrozenClock(emulator.clock.now())
    monkeypatch.setattr(emulator.clock, "now", clock.now)
    return clock


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the whole app; relative URLs go to the My Domain."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=MY_DOMAIN_URL) as client:
        yield client


@pytest.fixture
async def creds(http: httpx.AsyncClient) -> dict[str, str]:
    return (await http.get("/__emulator/credentials")).json()  # type: ignore[no-any-return]


@pytest.fixture
async def token(http: httpx.AsyncClient, creds: dict[str, str]) -> dict[str, Any]:
    response = await http.post(f"{LOGIN_URL}/services/oauth2/token", data=password_form(creds))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def api(app: Any, token: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """A data API client (v62.0) on the instance URL with the integration user's bearer token."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=token["instance_url"] + DATA,
        headers={"Authorization": f"Bearer {token['access_token']}"},
    ) as client:
        yield client


@pytest.fixture
async def statuses(api: httpx.AsyncClient) -> dict[str, str]:
    """Onboard the demo statuses over the API, as the onboard flow would: DeveloperName -> Id.

    Online statuses get their channels; the agent and supervisor profiles get access to all nine.
    """
    channel_rows = (await query(api, "SELECT Id, DeveloperName FROM ServiceChannel"))["records"]
    channels = {r["DeveloperName"]: r["Id"] for r in channel_rows}
    created = await api.post("/composite/sobjects", json={"allOrNone": True, "records": [
        {"attributes": {"type": "ServicePresenceStatus"}, "DeveloperName": s.developer_name, "MasterLabel": s.label}
        for s in STATUSES
    ]})
    assert created.status_code == 200, created.text
    ids = {s.developer_name: r["id"] for s, r in zip(STATUSES, created.json(), strict=True)}
    permission_sets = [
        await single_id(api, f"SELECT Id FROM PermissionSet WHERE IsOwnedByProfile = true AND Profile.Name = '{name}'")
        for name in (AGENT_PROFILE, SUPERVISOR_PROFILE)
    ]
    links = [
        {"attributes": {"type": "ServiceChannelStatus"}, "ServicePresenceStatusId": ids[s.developer_name],
         "ServiceChannelId": channels[c]}
        for s in STATUSES for c in s.channels
    ] + [
        {"attributes": {"type": "SetupEntityAccess"}, "ParentId": ps, "SetupEntityId": status_id}
        for ps in permission_sets for status_id in ids.values()
    ]
    linked = await api.post("/composite/sobjects", json={"allOrNone": True, "records": links})
    assert linked.status_code == 200 and all(r["success"] for r in linked.json()), linked.text
    return ids


@pytest.fixture
def agent_id(emulator: SalesforceEmulator) -> str:
    user = emulator.user_by_username("agent1@example.com")
    assert user is not None
    return user.id


@pytest.fixture(scope="session")
def loopback_server() -> Iterator[RunningServer]:
    """The one real HTTP server of the session (per xdist worker), on a free loopback port."""
    with serve_in_thread(create_app(SalesforceEmulatorOptions(agents=AGENTS)), host="127.0.0.1", port=0) as server:
        yield server
