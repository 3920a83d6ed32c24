"""The REST data API: query paging, record writes and their errors, collections, limits (apis.md S2-S4)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from presence_sync.emulators.salesforce import SalesforceEmulator, SalesforceEmulatorOptions
from sf_emulator_support import DATA, LOGIN_URL, password_form, query, single_id

STATUS = {"DeveloperName": "On_Break", "MasterLabel": "On Break"}
STATUSES = "/sobjects/ServicePresenceStatus"


def sf_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    [entry] = response.json()
    assert entry["errorCode"] == code, entry
    return entry  # type: ignore[no-any-return]


# -- query and paging --------------------------------------------------------------------------------


@pytest.fixture
def options() -> SalesforceEmulatorOptions:
    return SalesforceEmulatorOptions(agents=20, seed=7, query_page_size=5)


async def test_query_pages_through_next_records_url(api: httpx.AsyncClient, emulator: SalesforceEmulator) -> None:
    first = await query(api, "SELECT Id, Username FROM User ORDER BY Username")
    total = len(emulator.org.table("User"))
    assert first["totalSize"] == total and first["done"] is False and len(first["records"]) == 5
    assert first["nextRecordsUrl"].startswith(f"{DATA}/query/01g")

    seen = list(first["records"])
    page = first
    while not page["done"]:
        response = await api.get(page["nextRecordsUrl"].removeprefix(DATA))
        assert response.status_code == 200
        page = response.json()
        assert page["totalSize"] == total
        seen.extend(page["records"])
    assert "nextRecordsUrl" not in page
    assert [r["Username"] for r in seen] == sorted(u["Username"] for u in emulator.org.table("User").rows.values())
    # A cursor closes once read to the end.
    assert (await api.get(first["nextRecordsUrl"].removeprefix(DATA))).status_code == 400


async def test_a_query_answers_as_of_when_it_ran_and_shapes_only_the_page_served(
    api: httpx.AsyncClient, emulator: SalesforceEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from presence_sync.emulators.salesforce import query as soql

    shaped: list[str] = []
    real_shape = soql.shape
    monkeypatch.setattr(soql, "shape", lambda org, schema, record, *rest: shaped.append(record["Id"])
                        or real_shape(org, schema, record, *rest))
    first = await query(api, "SELECT Id, Email FROM User ORDER BY Username")
    assert len(shaped) == 5  # of the 20-odd rows: a big answer does not hold the emulator while it shapes them all

    # Records that change after the query ran are served as they were when it ran.
    users = emulator.org.table("User")
    emails = {record_id: record["Email"] for record_id, record in users.rows.items()}
    for record_id in emails:
        users.update(record_id, {"Email": f"changed.{record_id}@example.com"})
    page, seen = first, list(first["records"])
    while not page["done"]:
        page = (await api.get(page["nextRecordsUrl"].removeprefix(DATA))).json()
        seen.extend(page["records"])
    assert {r["Id"]: r["Email"] for r in seen} == emails
    assert len(shaped) == len(emails)


async def test_dead_or_foreign_locators_are_invalid(
    api: httpx.AsyncClient, app: Any, emulator: SalesforceEmulator
) -> None:
    first = await query(api, "SELECT Id FROM User")
    locator_path = first["nextRecordsUrl"].removeprefix(DATA)
    sf_error(await api.get("/query/01g5x0000000001AAA-5"), 400, "INVALID_QUERY_LOCATOR")
    sf_error(await api.get(locator_path.rsplit("-", 1)[0] + "-abc"), 400, "INVALID_QUERY_LOCATOR")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=str(api.base_url),
                                 headers={"Authorization": f"Bearer {supervisor_token(emulator)}"}) as other:
        sf_error(await other.get(locator_path), 400, "INVALID_QUERY_LOCATOR")

    emulator.clock.advance(15 * 60)
    entry = sf_error(await api.get(locator_path), 400, "INVALID_QUERY_LOCATOR")
    assert entry["message"] == "invalid query locator"


def supervisor_token(emulator: SalesforceEmulator) -> str:
    """A session for a supervisor, opened in-process (the password flow needs a password they lack)."""
    user = emulator.user_by_username("supervisor1@example.com")
    assert user is not None
    return emulator.sessions.issue(user.id, emulator.clock.now()).token


async def test_a_user_keeps_at_most_ten_cursors(api: httpx.AsyncClient) -> None:
    urls = [(await query(api, "SELECT Id FROM User"))["nextRecordsUrl"] for _ in range(11)]
    sf_error(await api.get(urls[0].removeprefix(DATA)), 400, "INVALID_QUERY_LOCATOR")
    assert (await api.get(urls[1].removeprefix(DATA))).status_code == 200


async def test_query_without_q_and_a_bad_version(api: httpx.AsyncClient, token: dict[str, Any], app: Any) -> None:
    entry = sf_error(await api.get("/query"), 400, "MALFORMED_QUERY")
    assert entry["message"] == "A query string has to be specified"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=token["instance_url"],
                                 headers={"Authorization": f"Bearer {token['access_token']}"}) as http:
        for path in ("/services/data/v62/limits", "/services/data/62.0/limits", "/services/data/v62.0/nothing"):
            sf_error(await http.get(path), 404, "NOT_FOUND")
        assert (await http.get("/services/data/v48.0/limits")).status_code == 200
        entry = sf_error(await http.put("/services/data/v62.0/query"), 405, "METHOD_NOT_ALLOWED")
        assert "'PUT'" in entry["message"]


# -- records -----------------------------------------------------------------------------------------


async def test_presence_status_create_retrieve_update_delete(api: httpx.AsyncClient) -> None:
    created = await api.post("/sobjects/ServicePresenceStatus/", json=STATUS)
    assert created.status_code == 201
    body = created.json()
    assert body["success"] is True and body["errors"] == [] and body["id"].startswith("0N5") and len(body["id"]) == 18

    fetched = (await api.get(f"/sobjects/ServicePresenceStatus/{body['id']}")).json()
    assert fetched["attributes"] == {"type": "ServicePresenceStatus", "url": f"{DATA}{STATUSES}/{body['id']}"}
    assert (fetched["DeveloperName"], fetched["MasterLabel"]) == ("On_Break", "On Break")
    assert fetched["CreatedDate"].endswith("+0000")
    subset = (await api.get(f"{STATUSES}/{body['id'][:15]}", params={"fields": "MasterLabel"})).json()
    assert set(subset) == {"attributes", "MasterLabel"}

    updated = await api.patch(f"/sobjects/ServicePresenceStatus/{body['id']}", json={"MasterLabel": "Break"})
    assert updated.status_code == 204 and updated.content == b""
    assert (await query(api, "SELECT MasterLabel FROM ServicePresenceStatus"))["records"][0]["MasterLabel"] == "Break"

    assert (await api.delete(f"/sobjects/ServicePresenceStatus/{body['id']}")).status_code == 204
    sf_error(await api.get(f"/sobjects/ServicePresenceStatus/{body['id']}"), 404, "NOT_FOUND")
    sf_error(await api.delete(f"/sobjects/ServicePresenceStatus/{body['id']}"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "status", "code", "fields"),
    [
        ({**STATUS, "Online__c": True}, 400, "INVALID_FIELD", None),
        ({"MasterLabel": "On Break"}, 400, "REQUIRED_FIELD_MISSING", ["DeveloperName"]),
        ({}, 400, "REQUIRED_FIELD_MISSING", ["DeveloperName", "MasterLabel"]),
        ({**STATUS, "DeveloperName": ""}, 400, "REQUIRED_FIELD_MISSING", ["DeveloperName"]),
        ({**STATUS, "Id": "0N55x0000000001AAA"}, 400, "INVALID_FIELD_FOR_INSERT_UPDATE", ["Id"]),
        ({**STATUS, "CreatedDate": "2026-01-01T00:00:00Z"}, 400, "INVALID_FIELD_FOR_INSERT_UPDATE", ["CreatedDate"]),
        ({**STATUS, "MasterLabel": 5}, 400, "JSON_PARSER_ERROR", None),
        ({**STATUS, "DeveloperName": "A" * 81}, 400, "STRING_TOO_LONG", ["DeveloperName"]),
        ([STATUS], 400, "JSON_PARSER_ERROR", None),
    ],
)
async def test_create_validation_errors(
    api: httpx.AsyncClient, body: Any, status: int, code: str, fields: list[str] | None
) -> None:
    entry = sf_error(await api.post("/sobjects/ServicePresenceStatus", json=body), status, code)
    assert entry.get("fields") == fields
    assert (await query(api, "SELECT COUNT() FROM ServicePresenceStatus"))["totalSize"] == 0


@pytest.mark.parametrize("name", ["1_Break", "On Break", "On__Break", "On_Break_", "_Break", "Break!", "Pausé"])
async def test_developer_names_follow_the_s3_rules(api: httpx.AsyncClient, name: str) -> None:
    entry = sf_error(await api.post("/sobjects/ServicePresenceStatus", json={**STATUS, "DeveloperName": name}),
                     400, "FIELD_INTEGRITY_EXCEPTION")
    assert entry["fields"] == ["DeveloperName"]
    assert "begin with a letter" in entry["message"]


async def test_developer_names_are_unique_case_insensitively(api: httpx.AsyncClient) -> None:
    first = (await api.post("/sobjects/ServicePresenceStatus", json=STATUS)).json()["id"]
    entry = sf_error(await api.post("/sobjects/ServicePresenceStatus", json={**STATUS, "DeveloperName": "on_break"}),
                     400, "DUPLICATE_VALUE")
    assert entry["message"] == f"duplicate value found: DeveloperName duplicates value on record with id: {first}"
    other = (await api.post(STATUSES, json={"DeveloperName": "Lunch", "MasterLabel": "Lunch"})).json()["id"]
    sf_error(await api.patch(f"{STATUSES}/{other}", json={"DeveloperName": "ON_BREAK"}), 400, "DUPLICATE_VALUE")
    assert (await api.patch(f"{STATUSES}/{first}", json={"DeveloperName": "On_Break"})).status_code == 204  # itself
    sf_error(await api.patch(f"{STATUSES}/{first}", json={"MasterLabel": None}), 400, "REQUIRED_FIELD_MISSING")


async def test_unknown_objects_and_ids(api: httpx.AsyncClient) -> None:
    sf_error(await api.post("/sobjects/Account", json={"Name": "x"}), 404, "NOT_FOUND")
    entry = sf_error(await api.get("/sobjects/ServicePresenceStatus/not-an-id"), 404, "NOT_FOUND")
    assert entry["message"] == "Provided external ID field does not exist or is not accessible: not-an-id"
    user_id = await single_id(api, "SELECT Id FROM User WHERE Username = 'agent1@example.com'")
    sf_error(await api.get(f"/sobjects/ServicePresenceStatus/{user_id}"), 404, "NOT_FOUND")
    assert (await api.get(f"/sobjects/User/{user_id}")).json()["Username"] == "agent1@example.com"
    sf_error(await api.get(f"/sobjects/User/{user_id}", params={"fields": "Nope"}), 400, "INVALID_FIELD")


async def test_objects_refuse_operations_they_do_not_support(api: httpx.AsyncClient) -> None:
    user_id = await single_id(api, "SELECT Id FROM User WHERE Username = 'agent1@example.com'")
    entry = sf_error(await api.patch(f"/sobjects/User/{user_id}", json={"IsActive": False}),
                     400, "INVALID_TYPE_FOR_OPERATION")
    assert entry["message"] == "entity type cannot be updated: User"
    sf_error(await api.post("/sobjects/Profile", json={"Name": "x"}), 400, "INVALID_TYPE_FOR_OPERATION")
    sf_error(await api.delete(f"/sobjects/User/{user_id}"), 400, "INVALID_TYPE_FOR_OPERATION")


async def test_malformed_json_and_empty_bodies(api: httpx.AsyncClient) -> None:
    bad = await api.post(STATUSES, content=b'{"DeveloperName": ', headers={"Content-Type": "application/json"})
    assert "at [line:1, column:" in sf_error(bad, 400, "JSON_PARSER_ERROR")["message"]
    sf_error(await api.post("/sobjects/ServicePresenceStatus", content=b""), 400, "JSON_PARSER_ERROR")


async def test_channel_links_make_a_status_online(api: httpx.AsyncClient, emulator: SalesforceEmulator) -> None:
    status = (await api.post(STATUSES, json={"DeveloperName": "Available", "MasterLabel": "Available"})).json()["id"]
    chat = await single_id(api, "SELECT Id FROM ServiceChannel WHERE DeveloperName = 'sfdc_chat'")
    link = {"ServicePresenceStatusId": status, "ServiceChannelId": chat}

    assert not emulator.org.status_is_online(status)
    created = await api.post("/sobjects/ServiceChannelStatus", json=link)
    assert created.status_code == 201 and created.json()["id"].startswith("0N4")
    assert emulator.org.status_is_online(status)
    soql = "SELECT ServicePresenceStatus.DeveloperName, ServiceChannel.RelatedEntity FROM ServiceChannelStatus"
    rows = (await query(api, soql))["records"]
    assert [(r["ServicePresenceStatus"]["DeveloperName"], r["ServiceChannel"]["RelatedEntity"]) for r in rows] == [
        ("Available", "LiveChatTranscript")]

    entry = sf_error(await api.post("/sobjects/ServiceChannelStatus", json=link), 400, "DUPLICATE_VALUE")
    assert entry["message"] == "duplicate value found: <unknown> duplicates value on record with id: <unknown>"
    wrong_type = {**link, "ServiceChannelId": status}
    sf_error(await api.post("/sobjects/ServiceChannelStatus", json=wrong_type), 400, "MALFORMED_ID")
    missing_channel = emulator.org.ids.make("0N9", 999)
    sf_error(await api.post("/sobjects/ServiceChannelStatus", json={**link, "ServiceChannelId": missing_channel}),
             400, "INVALID_CROSS_REFERENCE_KEY")
    refused = await api.patch(f"/sobjects/ServiceChannelStatus/{created.json()['id']}", json=link)
    sf_error(refused, 400, "INVALID_TYPE_FOR_OPERATION")


async def test_setup_entity_access_grants_a_profile_a_status(
    api: httpx.AsyncClient, emulator: SalesforceEmulator
) -> None:
    status = (await api.post("/sobjects/ServicePresenceStatus", json=STATUS)).json()["id"]
    permission_set = await single_id(
        api, "SELECT Id FROM PermissionSet WHERE IsOwnedByProfile = true AND Profile.Name = 'Contact Center Agent'")
    agent = emulator.user_by_username("agent1@example.com")
    assert agent is not None

    sf_error(await api.post("/sobjects/SetupEntityAccess", json={"ParentId": permission_set, "SetupEntityId": status,
                                                                 "SetupEntityType": "ServicePresenceStatus"}),
             400, "INVALID_FIELD_FOR_INSERT_UPDATE")
    created = await api.post("/sobjects/SetupEntityAccess", json={"ParentId": permission_set, "SetupEntityId": status})
    assert created.status_code == 201 and created.json()["id"].startswith("0J0")
    assert emulator.org.has_status_access(agent.id, status)
    soql = f"SELECT SetupEntityType, Parent.Profile.Name FROM SetupEntityAccess WHERE SetupEntityId = '{status}'"
    [row] = (await query(api, soql))["records"]
    assert row["SetupEntityType"] == "ServicePresenceStatus"
    assert row["Parent"]["Profile"]["Name"] == "Contact Center Agent"

    sf_error(await api.post("/sobjects/SetupEntityAccess", json={"ParentId": permission_set, "SetupEntityId": status}),
             400, "DUPLICATE_VALUE")
    refused = await api.patch(f"/sobjects/SetupEntityAccess/{created.json()['id']}", json={})
    sf_error(refused, 400, "INVALID_TYPE_FOR_OPERATION")
    assert (await api.delete(f"/sobjects/SetupEntityAccess/{created.json()['id']}")).status_code == 204
    assert not emulator.org.has_status_access(agent.id, status)


async def test_deleting_a_status_removes_its_links_and_grants(api: httpx.AsyncClient, statuses: dict[str, str]) -> None:
    before = (await query(api, "SELECT COUNT() FROM SetupEntityAccess"))["totalSize"]
    assert (await api.delete(f"/sobjects/ServicePresenceStatus/{statuses['Available']}")).status_code == 204
    assert (await query(api, "SELECT COUNT() FROM SetupEntityAccess"))["totalSize"] == before - 2
    remaining = (await query(api, "SELECT ServicePresenceStatusId FROM ServiceChannelStatus"))["records"]
    assert statuses["Available"] not in {r["ServicePresenceStatusId"] for r in remaining} and remaining


# -- collections -------------------------------------------------------------------------------------


def status_record(name: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "ServicePresenceStatus"}, "DeveloperName": name, "MasterLabel": name, **fields}


async def test_collection_reports_per_record_and_failed_records_have_no_id(api: httpx.AsyncClient) -> None:
    response = await api.post("/composite/sobjects", json={"allOrNone": False, "records": [
        status_record("Lunch"), status_record("Bad Name"), status_record("Case_Work")]})
    assert response.status_code == 200
    ok, failed, ok2 = response.json()
    assert ok["success"] and ok["errors"] == [] and ok["id"].startswith("0N5") and ok2["success"]
    assert set(failed) == {"success", "errors"} and failed["success"] is False
    [problem] = failed["errors"]
    assert (problem["statusCode"], problem["fields"]) == ("FIELD_INTEGRITY_EXCEPTION", ["DeveloperName"])
    assert (await query(api, "SELECT COUNT() FROM ServicePresenceStatus"))["totalSize"] == 2


async def test_all_or_none_rolls_everything_back(api: httpx.AsyncClient) -> None:
    response = await api.post("/composite/sobjects", json={"allOrNone": True, "records": [
        status_record("Lunch"), status_record("Lunch")]})
    first, second = response.json()
    assert first["success"] is False and first["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert second["errors"][0]["statusCode"] == "DUPLICATE_VALUE" and "id" not in second
    assert (await query(api, "SELECT COUNT() FROM ServicePresenceStatus"))["totalSize"] == 0


async def test_collection_limits_and_shape_errors(api: httpx.AsyncClient) -> None:
    too_many = [status_record(f"S{i}") for i in range(201)]
    sf_error(await api.post("/composite/sobjects", json={"records": too_many}), 400, "EXCEEDED_ID_LIMIT")
    accepted = await api.post("/composite/sobjects", json={"records": too_many[:200]})
    assert accepted.status_code == 200 and all(r["success"] for r in accepted.json())
    sf_error(await api.post("/composite/sobjects", json={"records": [{"DeveloperName": "x"}]}), 400, "INVALID_TYPE")
    sf_error(await api.post("/composite/sobjects", json={"allOrNone": "yes", "records": []}), 400, "JSON_PARSER_ERROR")
    unknown = (await api.post("/composite/sobjects", json={"records": [{"attributes": {"type": "Account"}}]})).json()
    assert unknown[0]["errors"][0]["statusCode"] == "INVALID_TYPE"


async def test_setup_objects_are_not_mixed_with_others(api: httpx.AsyncClient, agent_id: str) -> None:
    command = {"attributes": {"type": "Presence_Sync_Command__e"}, "UserId__c": agent_id, "StatusId__c": "0"}
    response = await api.post("/composite/sobjects", json={"records": [status_record("Lunch"), command]})
    status, event = response.json()
    assert status["success"] is True
    assert event["success"] is False and event["errors"][0]["statusCode"] == "MIXED_DML_OPERATION"


# -- limits ------------------------------------------------------------------------------------------


async def test_every_data_api_response_reports_usage_and_the_budget_runs_out(app: Any) -> None:
    emulator: SalesforceEmulator = app.state.emulator
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=LOGIN_URL) as http:
        await http.put("/__emulator/org", json={"api_daily_limit": 4})
        creds = (await http.get("/__emulator/credentials")).json()
        token = (await http.post("/services/oauth2/token", data=password_form(creds))).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        responses = [
            await http.get(f"{DATA}/limits", headers=auth),
            await http.get(f"{DATA}/query", params={"q": "SELECT Nope FROM User"}, headers=auth),
            await http.post(f"{DATA}/sobjects/ServicePresenceStatus", json=STATUS, headers=auth),
            await http.get(f"{DATA}/limits", headers=auth),
            await http.get(f"{DATA}/limits", headers=auth),
            await http.get(f"{DATA}/query", params={"q": "SELECT Id FROM User"}, headers=auth),
        ]
    assert [r.status_code for r in responses] == [200, 400, 201, 200, 403, 403]
    assert [r.headers["Sforce-Limit-Info"] for r in responses] == [f"api-usage={n}/4" for n in (1, 2, 3, 4, 4, 4)]
    assert responses[0].json() == {"DailyApiRequests": {"Max": 4, "Remaining": 3}}
    assert responses[4].json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]

    emulator.clock.advance(24 * 3600)  # the rolling window has moved past every counted call
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=LOGIN_URL) as http:
        fresh = (await http.post("/services/oauth2/token", data=password_form(creds))).json()  # the old one idled out
        again = await http.get(f"{DATA}/limits", headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert again.status_code == 200 and again.headers["Sforce-Limit-Info"] == "api-usage=1/4"


async def test_unauthenticated_calls_do_not_spend_the_budget(
    http: httpx.AsyncClient, emulator: SalesforceEmulator
) -> None:
    response = await http.get(f"{DATA}/limits", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and "Sforce-Limit-Info" not in response.headers
    assert emulator.budget.used(emulator.clock.now()) == 0
