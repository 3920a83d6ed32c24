"""CXone paging (apis.md C2) follows `totalRecords` / `_links.next` whatever the page size, and ends.

The API promises neither full pages nor that `top` is honoured: `skip` advances by the records
received. Against the CXone emulator (short pages, a lowered `top`) and the connector fake (listings
shaped by hand, one that never ends).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from presence_sync.connectors import CxoneClient, CxoneCredentials, MalformedResponse
from presence_sync.connectors.retry import RetryPolicy
from presence_sync.emulators.cxone import CxoneEmulatorOptions, create_app
from presence_sync.emulators.faults import FaultSettings
from tests.connectors.conftest import CX_API, json_response

BASE = "/incontactapi/services/v33.0"
AGENTS = 250


def emulator_client(app: Any, retry: RetryPolicy, page_size: int) -> CxoneClient:
    seeded = app.state.emulator.auth.credentials()
    credentials = CxoneCredentials(
        auth_url="http://cxone.test", api_url="http://cxone.test", client_id=seeded["client_id"],
        client_secret=SecretStr(seeded["client_secret"]), access_key_id=seeded["access_key_id"],
        access_key_secret=SecretStr(seeded["access_key_secret"]),
    )
    return credentials.get_client(transport=httpx.ASGITransport(app=app), retry=retry, page_size=page_size)


def listing_requests(app: Any) -> dict[str, int]:
    counts = app.state.emulator.faults.stats.by_route
    return {route.rsplit("/", 1)[-1]: n for route, n in counts.items() if route.startswith(f"GET /incontactapi")}


async def test_short_pages_are_read_to_the_end_by_total_records_and_next_links(retry: RetryPolicy) -> None:
    app = create_app(CxoneEmulatorOptions(agents=AGENTS, seed=3))
    app.state.emulator.faults.configure(
        FaultSettings.model_validate({"targeted": [{"kind": "short_pages", "count": None, "records_per_page": 40}]})
    )
    async with emulator_client(app, retry, page_size=100) as cx:
        agents = await cx.list_agents()
        states = await cx.agent_states()

    assert len({agent["agentId"] for agent in agents}) == len(agents) == AGENTS
    assert len({state.agent_id for state in states.states}) == len(states.states) == AGENTS
    assert listing_requests(app) == {"agents": 7, "states": 7}  # ceil(250 / 40) pages each, no more


async def test_a_top_lowered_by_the_server_is_followed_to_the_end(retry: RetryPolicy) -> None:
    app = create_app(CxoneEmulatorOptions(agents=AGENTS, seed=3, page_size=30, max_page_size=30))
    async with emulator_client(app, retry, page_size=1000) as cx:
        agents = await cx.list_agents()

    assert len({agent["agentId"] for agent in agents}) == AGENTS
    assert listing_requests(app) == {"agents": 9}


def _page(agents: list[int], **paging: Any) -> httpx.Response:
    return json_response(200, {**paging, "lastPollTime": "2026-11-25T10:00:00.000Z",
                               "agents": [{"agentId": agent_id} for agent_id in agents]})


def _scripted(cxone: Any, pages: list[httpx.Response]) -> list[httpx.Request]:
    """Answer the listing's requests with `pages`, in order; the requests it got."""
    seen: list[httpx.Request] = []
    answers = iter(pages)

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(answers)

    cxone.faults.add(f"{BASE}/agents", respond, times=len(pages))
    return seen


async def test_next_links_alone_lead_to_the_end_and_are_never_followed_elsewhere(cxone: Any, retry: RetryPolicy) -> None:
    elsewhere = "https://elsewhere.example/incontactapi/services/v33.0/agents?skip=999"
    seen = _scripted(cxone, [
        _page([1, 2, 3], _links={"next": elsewhere}),
        _page([4, 5], _links={"next": elsewhere}),
        _page([6], _links={"next": None}),
    ])
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=10) as cx:
        agents = await cx.list_agents()

    assert [agent["agentId"] for agent in agents] == [1, 2, 3, 4, 5, 6]
    assert [request.url.params["skip"] for request in seen] == ["0", "3", "5"]
    assert {f"https://{request.url.host}" for request in seen} == {CX_API}


async def test_total_records_says_more_although_no_next_link_is_given(cxone: Any, retry: RetryPolicy) -> None:
    seen = _scripted(cxone, [_page([1, 2], totalRecords=5, _links={"self": "x"}), _page([3, 4, 5], totalRecords=5)])
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=10) as cx:
        agents = await cx.list_agents()

    assert len(agents) == 5 and len(seen) == 2


async def test_without_total_or_links_only_a_full_page_means_more(cxone: Any, retry: RetryPolicy) -> None:
    seen = _scripted(cxone, [_page([1, 2, 3]), _page([4, 5, 6]), _page([7])])
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=3) as cx:
        agents = await cx.list_agents()

    assert len(agents) == 7 and len(seen) == 3


async def test_an_empty_page_ends_the_listing_whatever_it_claims(cxone: Any, retry: RetryPolicy) -> None:
    seen = _scripted(cxone, [_page([1], totalRecords=9, _links={"next": "more"}), _page([], totalRecords=9, _links={"next": "more"})])
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=10) as cx:
        agents = await cx.list_agents()

    assert len(agents) == 1 and len(seen) == 2


async def test_a_listing_that_never_ends_is_refused_after_max_pages(cxone: Any, retry: RetryPolicy) -> None:
    forever = _page([1], totalRecords=10**9, _links={"next": "more"})
    seen = _scripted(cxone, [forever] * 50)
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=10) as cx:
        cx.max_pages = 5
        with pytest.raises(MalformedResponse) as caught:
            await cx.list_agents()

    assert len(seen) == 5
    assert f"GET {BASE}/agents" in str(caught.value) and "does not end: 5 pages (5 records)" in str(caught.value)


async def test_teams_and_unavailable_codes_page_the_same_way(retry: RetryPolicy) -> None:
    app = create_app(CxoneEmulatorOptions(agents=20, seed=3))
    async with emulator_client(app, retry, page_size=100) as cx:
        teams, codes = await cx.list_teams(), await cx.list_unavailable_codes()
        app.state.emulator.faults.configure(
            FaultSettings.model_validate({"targeted": [{"kind": "short_pages", "count": None, "records_per_page": 1}]})
        )
        assert await cx.list_teams() == teams and await cx.list_unavailable_codes() == codes

    assert len(teams) >= 2 and len(codes) >= 3
    assert listing_requests(app) == {"teams": 1 + len(teams), "unavailable-codes": 1 + len(codes)}
