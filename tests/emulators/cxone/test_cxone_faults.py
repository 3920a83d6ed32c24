"""The CXone emulator's targeted faults (`PUT /__emulator/faults`, `targeted`), as a client sees them."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from presence_sync.emulators.cxone import CxoneEmulator
from presence_sync.emulators.server import RunningServer
from tests.emulators.cxone.conftest import AGENTS, API


async def _set_faults(http: httpx.AsyncClient, *targeted: dict[str, Any]) -> None:
    response = await http.put("/__emulator/faults", json={"targeted": list(targeted)})
    assert response.status_code == 200, response.text


def _skip_of(link: str | None) -> int | None:
    return None if link is None else int(parse_qs(urlsplit(link).query)["skip"][0])


async def test_short_pages_hold_fewer_records_than_top_while_total_and_next_say_more(
    http: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    await _set_faults(http, {"kind": "short_pages", "path": "*/agents/states", "count": None, "records_per_page": 7})

    first = (await api.get("/agents/states", params={"top": 100})).json()
    assert len(first["agentStates"]) == 7 and first["totalRecords"] == AGENTS
    assert _skip_of(first["_links"]["next"]) == 7

    seen, skip, pages = [], 0, 0
    while True:
        page = (await api.get("/agents/states", params={"skip": skip, "top": 100})).json()
        pages += 1
        seen += [state["agentId"] for state in page["agentStates"]]
        skip += len(page["agentStates"])
        if page["_links"]["next"] is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == AGENTS
    # Other lists are not affected by a fault aimed at agent states.
    assert len((await api.get("/agents", params={"top": 100})).json()["agents"]) == AGENTS


async def test_without_the_fault_a_page_is_as_full_as_top_allows(http: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    await _set_faults(http, {"kind": "short_pages", "path": "*/agents/states", "count": 1, "records_per_page": 3})

    short = (await api.get("/agents/states", params={"top": 100})).json()
    full = (await api.get("/agents/states", params={"top": 100})).json()

    assert len(short["agentStates"]) == 3 and len(full["agentStates"]) == AGENTS and full["_links"]["next"] is None


async def test_one_malformed_record_among_good_ones_in_an_agent_states_page(
    http: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    good = (await api.get("/agents/states")).json()["agentStates"]
    await _set_faults(http, {"kind": "malformed_record", "path": "*/agents/states", "index": 2, "field": "agentId", "value": "not-an-id"})

    spoiled = (await api.get("/agents/states")).json()["agentStates"]
    again = (await api.get("/agents/states")).json()["agentStates"]

    assert spoiled[2]["agentId"] == "not-an-id"
    assert {**spoiled[2], "agentId": good[2]["agentId"]} == good[2]
    assert spoiled[:2] + spoiled[3:] == good[:2] + good[3:]
    assert again == good  # count 1: the next page is clean, and the stored state was never touched


async def test_a_whole_record_can_be_replaced(http: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    await _set_faults(http, {"kind": "malformed_record", "path": "*/agents/states", "index": 999, "value": None})

    states = (await api.get("/agents/states")).json()["agentStates"]

    assert states[-1] is None and all(isinstance(state, dict) for state in states[:-1])


async def test_an_answer_lost_after_the_state_was_set(
    http: httpx.AsyncClient, api: httpx.AsyncClient, emulator: CxoneEmulator, ids: dict[int, int]
) -> None:
    session = (await api.post("/agent-sessions/join", json={"asAgentId": ids[1]})).json()["sessionId"]
    await _set_faults(http, {"kind": "drop_after", "path": "*/agent-sessions/*/state", "method": "POST"})

    with pytest.raises(httpx.RemoteProtocolError):
        await api.post(f"/agent-sessions/{session}/state", json={"state": "Unavailable", "reason": "Lunch"})

    state = emulator.tenant.state(ids[1])
    assert (state["agentStateName"], state["outStateDescription"]) == ("Unavailable", "Lunch")
    stats = (await http.get("/__emulator/stats")).json()
    assert stats["errors_injected"] == {"drop_after": 1}
    assert stats["requests"]["POST /incontactapi/services/{version}/agent-sessions/{sessionId}/state"] == 1


async def test_the_control_api_refuses_an_unknown_kind_or_setting(http: httpx.AsyncClient) -> None:
    for fault in ({"kind": "gremlins"}, {"kind": "slow_body", "bytes_per_s": 0}, {"kind": "error", "colour": "red"}):
        response = await http.put("/__emulator/faults", json={"targeted": [fault]})
        assert response.status_code == 400 and "targeted" in response.json()["error_description"], fault


# --- over real HTTP -------------------------------------------------------------------------------


@pytest.fixture
def loopback(loopback_server: RunningServer) -> Any:
    """The session's loopback server with a token; its faults are cleared afterwards."""
    with httpx.Client(base_url=loopback_server.url, timeout=30) as http:
        creds = http.get("/__emulator/credentials").json()
        tokens = http.post(
            "/auth/token",
            data={"grant_type": "password", "username": creds["access_key_id"], "password": creds["access_key_secret"]},
            auth=(creds["client_id"], creds["client_secret"]),
        ).json()
        http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        try:
            yield http
        finally:
            http.put("/__emulator/faults", json={})


def test_a_silent_server_over_http_sends_no_headers_and_serves_the_next_request(loopback: httpx.Client) -> None:
    loopback.put("/__emulator/faults", json={"targeted": [{"kind": "silent", "path": "*/agents/states"}]})

    with pytest.raises(httpx.ReadTimeout):
        loopback.get(f"{API}/agents/states", timeout=httpx.Timeout(10, read=0.5))
    answer = loopback.get(f"{API}/agents/states")

    assert answer.status_code == 200 and len(answer.json()["agentStates"]) == AGENTS


def test_a_slow_body_over_http_arrives_in_several_chunks(loopback: httpx.Client) -> None:
    loopback.put("/__emulator/faults", json={"targeted": [{"kind": "slow_body", "path": "*/agents", "bytes_per_s": 1_000}]})

    with loopback.stream("GET", f"{API}/agents", params={"top": 2}) as response:
        chunks = [chunk for chunk in response.iter_raw() if chunk]

    body = b"".join(chunks)
    # 100-byte chunks a tenth of a second apart: a busy client may read a few at once, never all.
    assert len(body) > 500 and len(chunks) >= 2 and len(body) == int(response.headers["content-length"])
    assert len(httpx.Response(200, content=body).json()["agents"]) == 2


def test_an_html_502_over_http(loopback: httpx.Client) -> None:
    loopback.put("/__emulator/faults", json={"targeted": [{"kind": "html_error", "path": "*/agents/states", "count": 2}]})

    answers = [loopback.get(f"{API}/agents/states") for _ in range(3)]

    assert [a.status_code for a in answers] == [502, 502, 200]
    assert answers[0].headers["content-type"] == "text/html" and "502 Bad Gateway" in answers[0].text
