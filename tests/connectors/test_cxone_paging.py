"""CXone paging (apis.md C2) follows `totalRecords` / `_links.next` whatever the page size, and ends.

The API promises neither full pages nor that `top` is honoured: `skip` advances by the records
received. Against the CXone emulator (short pages, a lowered `top`) and the connector fake (listings
shaped by hand, one that never ends).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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


def emulator_client(app: Any, retry: RetryPolicy, page_size: int, served_by: Any = None) -> CxoneClient:
    """A client of the emulator `app`, its requests going through the ASGI app `served_by` (default: `app`)."""
    seeded = app.state.emulator.auth.credentials()
    credentials = CxoneCredentials(
        auth_url="http://cxone.test", api_url="http://cxone.test", client_id=seeded["client_id"],
        client_secret=SecretStr(seeded["client_secret"]), access_key_id=seeded["access_key_id"],
        access_key_secret=SecretStr(seeded["access_key_secret"]),
    )
    return credentials.get_client(transport=httpx.ASGITransport(app=served_by or app), retry=retry, page_size=page_size)


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


def _scripted(cxone: Any, pages: dict[int, httpx.Response] | Callable[[int], httpx.Response]) -> list[int]:
    """Answer the listing's requests by their `skip`, as a server would; the skips asked for, in order."""
    seen: list[int] = []

    def respond(request: httpx.Request) -> httpx.Response:
        skip = int(request.url.params["skip"])
        seen.append(skip)
        assert f"https://{request.url.host}" == CX_API  # never a next link's host
        return pages(skip) if callable(pages) else pages[skip]

    cxone.faults.add(f"{BASE}/agents", respond, times=10**6)
    return seen


async def test_next_links_alone_lead_to_the_end_and_are_never_followed_elsewhere(cxone: Any, retry: RetryPolicy) -> None:
    elsewhere = "https://elsewhere.example/incontactapi/services/v33.0/agents?skip=999"
    seen = _scripted(cxone, {
        0: _page([1, 2, 3], _links={"next": elsewhere}),
        3: _page([4, 5], _links={"next": elsewhere}),
        5: _page([6], _links={"next": None}),
    })
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=10) as cx:
        agents = await cx.list_agents()

    assert [agent["agentId"] for agent in agents] == [1, 2, 3, 4, 5, 6]
    assert seen == [0, 3, 5]


async def test_total_records_plans_the_pages_and_a_long_page_is_cut(cxone: Any, retry: RetryPolicy) -> None:
    # The first page holds two: the others are asked for at skips 2 and 4 at once; the one at 2 came
    # with three records, the third of which is the next page's first.
    seen = _scripted(cxone, {
        0: _page([1, 2], totalRecords=5, _links={"self": "x"}),
        2: _page([3, 4, 5], totalRecords=5),
        4: _page([5], totalRecords=5),
    })
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=10) as cx:
        agents = await cx.list_agents()

    assert [agent["agentId"] for agent in agents] == [1, 2, 3, 4, 5]
    assert sorted(seen) == [0, 2, 4]


async def test_a_short_page_is_read_on_up_to_the_next_page(cxone: Any, retry: RetryPolicy) -> None:
    seen = _scripted(cxone, {
        0: _page([1, 2, 3], totalRecords=8),
        3: _page([4], totalRecords=8),  # short: 5 and 6 are read from skip 4
        4: _page([5, 6, 7], totalRecords=8),
        6: _page([7, 8], totalRecords=8),
    })
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=3) as cx:
        agents = await cx.list_agents()

    assert [agent["agentId"] for agent in agents] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert seen[0] == 0 and sorted(seen) == [0, 3, 4, 6]


async def test_a_listing_that_grew_while_it_was_read_is_read_to_its_end(cxone: Any, retry: RetryPolicy) -> None:
    seen = _scripted(cxone, {
        0: _page([1, 2], totalRecords=4),
        2: _page([3, 4], totalRecords=6),
        4: _page([5, 6], totalRecords=6),
    })
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=2) as cx:
        agents = await cx.list_agents()

    assert [agent["agentId"] for agent in agents] == [1, 2, 3, 4, 5, 6]
    assert seen == [0, 2, 4]


async def test_without_total_or_links_only_a_full_page_means_more(cxone: Any, retry: RetryPolicy) -> None:
    seen = _scripted(cxone, {0: _page([1, 2, 3]), 3: _page([4, 5, 6]), 6: _page([7])})
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=3) as cx:
        agents = await cx.list_agents()

    assert len(agents) == 7 and seen == [0, 3, 6]


async def test_an_empty_page_ends_the_listing_whatever_it_claims(
    cxone: Any, retry: RetryPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    # It claims nine records and holds one: read again (it may have changed meanwhile), then given up on.
    seen = _scripted(cxone, lambda skip: _page([1] if skip == 0 else [], totalRecords=9, _links={"next": "more"}))
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=10) as cx:
        agents = await cx.list_agents()
        warned = [r for r in caplog.records if r.levelno == logging.WARNING and "changed while it was read" in r.message]
        await cx.list_agents()  # the next poll: said again only at debug level

    assert [agent["agentId"] for agent in agents] == [1]
    assert seen.count(0) == 2 * cx.listing_reads and len(seen) == 2 * 9 * cx.listing_reads
    assert len(warned) == 1 and "3 reads in a row" in warned[0].message
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_a_listing_that_never_ends_is_refused_after_max_pages(cxone: Any, retry: RetryPolicy) -> None:
    seen = _scripted(cxone, lambda skip: _page([skip + 1], totalRecords=10**9, _links={"next": "more"}))
    async with cxone.credentials().get_client(transport=cxone.transport(), retry=retry, page_size=10) as cx:
        cx.max_pages = 5
        with pytest.raises(MalformedResponse) as caught:
            await cx.list_agents()

    assert seen == [0, 1, 2, 3, 4]
    assert f"GET {BASE}/agents" in str(caught.value) and "does not end: 5 pages (5 records)" in str(caught.value)


async def test_the_pages_after_the_first_are_in_flight_at_once(retry: RetryPolicy) -> None:
    """Ten pages of states are one round trip after the first: the emulator sees them overlap."""
    app = create_app(CxoneEmulatorOptions(agents=AGENTS, seed=3))
    app.state.emulator.faults.configure(FaultSettings(latency_ms=20))
    in_flight, most = 0, 0

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await app(scope, receive, send)
        finally:
            in_flight -= 1

    async with emulator_client(app, retry, page_size=25, served_by=counting) as cx:
        states = await cx.agent_states()

    assert len({state.agent_id for state in states.states}) == AGENTS
    assert listing_requests(app) == {"states": 10}
    assert most >= 5  # the nine after the first, at most eight at once


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


async def test_a_record_hidden_by_a_change_during_the_read_is_found_by_reading_again(retry: RetryPolicy) -> None:
    """CXone's state listing is ordered by change: an agent read on the first page who changes while the
    others are read moves to the end, and the record that slides onto the first page is read by no
    page. The read comes one short of `totalRecords`, so it is read again and joined."""
    app = create_app(CxoneEmulatorOptions(agents=AGENTS, seed=3))
    tenant = app.state.emulator.tenant
    since = tenant.clock.now()
    agent_ids = [int(record["agentId"]) for record in tenant.states_page(0, AGENTS).records]
    for agent_id in agent_ids:
        tenant.set_state(agent_id, "Unavailable", "Break")
    listed = [int(record["agentId"]) for record in tenant.states_page(0, AGENTS, updated_since=since).records]
    mover, hidden = listed[0], listed[25]
    moved = False

    async def moving(scope: Any, receive: Any, send: Any) -> None:
        nonlocal moved
        await app(scope, receive, send)
        if scope["type"] == "http" and scope["path"].endswith("/agents/states") and not moved:
            moved = True
            tenant.set_state(mover, "Available")  # after the first page was answered

    async with emulator_client(app, retry, page_size=25, served_by=moving) as cx:
        states = await cx.agent_states(updated_since=since)

    by_agent = {state.agent_id: state for state in states.states}
    assert hidden in by_agent and set(by_agent) == set(agent_ids) and len(states.states) == AGENTS
    assert by_agent[mover].state.key == "Available"  # the newer of its two records
    assert listing_requests(app) == {"states": 20}  # two reads of ten pages


async def test_pages_of_states_are_handed_out_as_they_arrive_each_read_once(
    retry: RetryPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `on_page` (the sync deciding a burst while its later pages are out), each page's readable
    states are handed out as the page arrives; the answer still holds every state and names the record
    it could not read, and no record is parsed twice."""
    from presence_sync.connectors import CxoneAgentState

    app = create_app(CxoneEmulatorOptions(agents=AGENTS, seed=3))
    app.state.emulator.faults.configure(FaultSettings.model_validate({"targeted": [
        {"kind": "malformed_record", "path": "*/agents/states", "count": 1, "index": 3, "field": "startDate"},
    ]}))
    parse, parsed = CxoneAgentState.from_api, []

    def counted(item: Any) -> CxoneAgentState:
        parsed.append(item)
        return parse(item)

    monkeypatch.setattr(CxoneAgentState, "from_api", staticmethod(counted))
    handed: list[list[int]] = []
    async with emulator_client(app, retry, page_size=25) as cx:
        states = await cx.agent_states(on_page=lambda page: handed.append([state.agent_id for state in page]))

    assert len(handed) == 10 and sorted(len(page) for page in handed) == [24] + [25] * 9
    assert sorted(a for page in handed for a in page) == sorted(state.agent_id for state in states.states)
    assert len(states.states) == AGENTS - 1 and len(states.problems) == 1 and "startDate" in states.problems[0]
    assert len(parsed) == AGENTS + 1  # each record once; the unreadable one again, to say what is wrong

    handed.clear()
    async with emulator_client(app, retry, page_size=AGENTS) as cx:
        assert len((await cx.agent_states(on_page=handed.append)).states) == AGENTS
    assert handed == []  # one page is the whole answer
