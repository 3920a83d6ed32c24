"""The Salesforce emulator's targeted faults (`PUT /__emulator/faults`, `targeted`), as a client sees them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from presence_sync.emulators.salesforce import SalesforceEmulatorOptions
from sf_emulator_support import DATA, query

USERS = "SELECT Id, Username FROM User ORDER BY Username"


@pytest.fixture
def options() -> SalesforceEmulatorOptions:
    return SalesforceEmulatorOptions(agents=20, seed=7, query_page_size=5)


async def _set_faults(http: httpx.AsyncClient, *targeted: dict[str, Any]) -> None:
    response = await http.put("/__emulator/faults", json={"targeted": list(targeted)})
    assert response.status_code == 200, response.text


async def _all_pages(api: httpx.AsyncClient, soql: str) -> list[list[Any]]:
    page = await query(api, soql)
    pages = [page["records"]]
    while not page["done"]:
        response = await api.get(page["nextRecordsUrl"].removeprefix(DATA))
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["records"])
    return pages


async def test_one_malformed_record_among_good_ones_in_a_query_page(http: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    good = await _all_pages(api, USERS)
    await _set_faults(http, {"kind": "malformed_record", "path": "*/query/*", "index": 1, "field": "Username", "value": 42})

    spoiled = await _all_pages(api, USERS)

    # The first page (`/query`) is clean; the next one (`/query/{locator}`) carries one spoiled record.
    assert spoiled[0] == good[0] and spoiled[2:] == good[2:]
    assert spoiled[1][1] == {**good[1][1], "Username": 42}
    assert spoiled[1][:1] + spoiled[1][2:] == good[1][:1] + good[1][2:]


async def test_an_oversized_query_answer_is_still_the_same_json(http: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    plain = await api.get("/query", params={"q": USERS})
    await _set_faults(http, {"kind": "oversized_body", "path": "*/query", "extra_bytes": 2_000_000})

    big = await api.get("/query", params={"q": USERS})

    assert len(big.content) == int(big.headers["content-length"]) == len(plain.content) + 2_000_000
    assert big.json()["records"] == plain.json()["records"]


async def test_an_answer_lost_after_the_records_were_created(http: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    await _set_faults(http, {"kind": "drop_after", "path": "*/composite/sobjects", "method": "POST"})
    records = [{"attributes": {"type": "ServicePresenceStatus"}, "DeveloperName": "Lost_Answer", "MasterLabel": "Lost Answer"}]

    with pytest.raises(httpx.RemoteProtocolError):
        await api.post("/composite/sobjects", json={"allOrNone": True, "records": records})

    found = await query(api, "SELECT Id FROM ServicePresenceStatus WHERE DeveloperName = 'Lost_Answer'")
    assert found["totalSize"] == 1


async def test_an_html_502_page_instead_of_salesforces_json(http: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    await _set_faults(http, {"kind": "html_error", "path": "*/query"})

    response = await api.get("/query", params={"q": USERS})

    assert response.status_code == 502 and response.headers["content-type"] == "text/html"
    assert (await api.get("/query", params={"q": USERS})).status_code == 200
