"""Fixtures for the CXone emulator tests: an in-process app per test, raw httpx (no connectors)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from presence_sync.emulators.cxone import CxoneEmulator, CxoneEmulatorOptions, create_app
from presence_sync.emulators.server import RunningServer, serve_in_thread

BASE_URL = "http://cxone.test"
API = "/incontactapi/services/v33.0"
AGENTS = 20


@pytest.fixture
def options() -> CxoneEmulatorOptions:
    return CxoneEmulatorOptions(agents=AGENTS, seed=11)


@pytest.fixture
def app(options: CxoneEmulatorOptions) -> Any:
    return create_app(options)


@pytest.fixture
def emulator(app: Any) -> CxoneEmulator:
    return app.state.emulator


@pytest.fixture
def creds(emulator: CxoneEmulator) -> dict[str, str]:
    return emulator.auth.credentials()


@pytest.fixture
def basic(creds: dict[str, str]) -> str:
    """The Authorization header value of the seeded application."""
    return "Basic " + base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        yield client


@pytest.fixture
async def tokens(http: httpx.AsyncClient, creds: dict[str, str], basic: str) -> dict[str, Any]:
    response = await http.post(
        "/auth/token",
        data={"grant_type": "password", "username": creds["access_key_id"], "password": creds["access_key_secret"]},
        headers={"Authorization": basic, "Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def api(app: Any, tokens: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the data/Agent API (v33.0) with a valid bearer token."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL + API,
        headers={"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"},
    ) as client:
        yield client


@pytest.fixture(scope="session")
def loopback_server() -> Iterator[RunningServer]:
    """The one real HTTP server of the session (per xdist worker), on a free loopback port."""
    with serve_in_thread(create_app(CxoneEmulatorOptions(agents=AGENTS)), host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def ids(emulator: CxoneEmulator) -> dict[int, int]:
    """Demo agent index -> agentId (odd indexes are in Voice Team A, even ones in Voice Team B, but every
    10th is on the Chat Team)."""
    return {i: emulator.tenant.find_agent(f"agent{i}@example.com")["agentId"] for i in range(1, AGENTS + 1)}


class FrozenClock:
    """Stands in for the emulator clock's `now` so tests decide which millisecond each change lands in."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def tick(self, ms: int = 1) -> None:
        self.at += timedelta(milliseconds=ms)


@pytest.fixture
def frozen(emulator: CxoneEmulator, monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    clock = FrozenClock(emulator.clock.now() + timedelta(seconds=1))  # after the seed's stamps
    monkeypatch.setattr(emulator.clock, "now", clock.now)
    return clock
