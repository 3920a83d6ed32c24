"""Salesforce data API (apis.md S2-S4): queries, records, composite saves, presence commands, errors, budget."""

from __future__ import annotations

import httpx
import pytest

from presence_sync.connectors import (
    ApiUsage,
    DuplicateValue,
    InvalidField,
    MalformedQuery,
    MalformedResponse,
    NotFound,
    PresenceCommand,
    RequestLimitExceeded,
    RequiredFieldMissing,
    SalesforceClient,
    TransientError,
)
from presence_sync.connectors.retry import RetryPolicy
from presence_sync.connectors.salesforce import parse_limit_info
from tests.connectors.test_transport import eventually

DATA = "/services/data/v62.0"
USER_ID = "005000000000001AAA"
STATUS_ID = "0N5000000000001AAA"


def client_for(salesforce, retry: RetryPolicy, **options) -> SalesforceClient:
    return salesforce.credentials().get_client(transport=salesforce.transport(), retry=retry, **options)


def users_two_a_page(salesforce, count: int) -> str:
    """A query for `count` users, which the fake answers two records a page; its SOQL."""
    soql = "SELECT Id FROM User"
    salesforce.page_size = 2
    salesforce.query_records[soql] = [{"Id": f"005{n:015d}"} for n in range(count)]
    return soql


def next_page_calls(salesforce) -> int:
    return sum(count for key, count in salesforce.calls.items() if key.startswith(f"GET {DATA}/query/"))


async def test_query_follows_next_records_url_across_pages(salesforce, retry) -> None:
    soql = "SELECT Id, Username FROM User"
    salesforce.query_records[soql] = [{"Id": f"005{n:015d}", "Username": f"u{n}"} for n in range(4500)]
    async with client_for(salesforce, retry) as sf:
        records = await sf.query(soql)

    assert [record["Username"] for record in records] == [f"u{n}" for n in range(4500)]
    assert records[0]["attributes"]["type"] == "User"
    assert salesforce.calls[f"GET {DATA}/query"] == 1
    assert next_page_calls(salesforce) == 2


async def test_query_pages_yields_each_page(salesforce, retry) -> None:
    soql = users_two_a_page(salesforce, 5)
    async with client_for(salesforce, retry) as sf:
        sizes = [len(page) async for page in sf.query_pages(soql)]

    assert sizes == [2, 2, 1]


async def test_the_next_page_is_asked_for_while_the_caller_handles_this_one(salesforce, retry) -> None:
    soql = users_two_a_page(salesforce, 5)
    async with client_for(salesforce, retry) as sf:
        pages = sf.query_pages(soql)
        first = await anext(pages)
        await eventually(lambda: next_page_calls(salesforce) == 1)  # asked for before this page is done with
        rest = [len(page) async for page in pages]

    assert (len(first), rest) == (2, [2, 1])
    assert next_page_calls(salesforce) == 2  # each page asked for once


async def test_a_caller_that_stops_early_leaves_no_page_asked_for_behind(salesforce, retry) -> None:
    soql = users_two_a_page(salesforce, 9)
    async with client_for(salesforce, retry) as sf:
        pages = sf.query_pages(soql)
        assert len(await anext(pages)) == 2
        await pages.aclose()
        assert await sf.query("SELECT Id FROM User WHERE Username = 'nobody'") == []  # the client goes on

    assert next_page_calls(salesforce) <= 1  # the page read ahead, at most; nothing after it


async def test_an_empty_result_is_one_call(salesforce, retry) -> None:
    async with client_for(salesforce, retry) as sf:
        assert await sf.query("SELECT Id FROM User WHERE Username = 'nobody'") == []

    assert salesforce.calls[f"GET {DATA}/query"] == 1


async def test_a_page_that_is_not_done_but_has_no_next_url_is_malformed(salesforce, retry) -> None:
    salesforce.faults.status(f"{DATA}/query", 200, {"totalSize": 5, "done": False, "records": []})
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(MalformedResponse) as caught:
            await sf.query("SELECT Id FROM User")

    assert f"GET {DATA}/query" in str(caught.value)
    assert "nextRecordsUrl" in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (httpx.Response(200, text="<html>Salesforce is down for maintenance</html>"), "not JSON"),
        (httpx.Response(200, json={"done": True}), "body.records"),
        (httpx.Response(200, json=[{"done": True}]), "body"),
    ],
)
async def test_malformed_query_answers_name_the_endpoint(salesforce, retry, answer, problem: str) -> None:
    salesforce.faults.add(f"{DATA}/query", lambda request: answer)
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(MalformedResponse) as caught:
            await sf.query("SELECT Id FROM User")

    assert f"GET {DATA}/query" in str(caught.value)
    assert problem in str(caught.value)


async def test_query_errors_are_typed(salesforce, retry) -> None:
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(MalformedQuery) as bad_soql:
            await sf.query("SELECT Id")
        with pytest.raises(InvalidField) as bad_field:
            await sf.query("SELECT NoSuchField__c FROM User")

    assert "MALFORMED_QUERY" in str(bad_soql.value)
    assert bad_soql.value.status_code == 400
    assert "No such column 'NoSuchField__c'" in str(bad_field.value)
    assert "field-level security" in str(bad_field.value)
    assert bad_field.value.details[0]["errorCode"] == "INVALID_FIELD"


async def test_create_get_update_delete(salesforce, retry) -> None:
    async with client_for(salesforce, retry) as sf:
        record_id = await sf.create("ServicePresenceStatus", {"DeveloperName": "On_Break", "MasterLabel": "On Break"})
        await sf.update("ServicePresenceStatus", record_id, {"MasterLabel": "Break"})
        record = await sf.get(f"/sobjects/ServicePresenceStatus/{record_id}")
        same = await sf.get(f"{DATA}/sobjects/ServicePresenceStatus/{record_id}")
        await sf.delete("ServicePresenceStatus", record_id)
        with pytest.raises(NotFound) as gone:
            await sf.get(f"/sobjects/ServicePresenceStatus/{record_id}")

    assert record_id.startswith("0N5")
    assert record["MasterLabel"] == "Break" and record == same
    assert "NOT_FOUND" in str(gone.value)
    assert "deleted, or a wrong id" in str(gone.value)


async def test_record_level_errors_are_typed(salesforce, retry) -> None:
    async with client_for(salesforce, retry) as sf:
        await sf.create("ServicePresenceStatus", {"DeveloperName": "Lunch"})
        with pytest.raises(DuplicateValue):
            await sf.create("ServicePresenceStatus", {"DeveloperName": "Lunch"})
        with pytest.raises(RequiredFieldMissing) as missing:
            await sf.create("ServicePresenceStatus", {"MasterLabel": "No name"})
        with pytest.raises(NotFound):
            await sf.delete("ServicePresenceStatus", STATUS_ID)

    assert "DeveloperName" in str(missing.value)
    assert salesforce.calls[f"POST {DATA}/sobjects/ServicePresenceStatus/"] == 3  # creates are never repeated


async def test_update_with_an_unknown_field(salesforce, retry) -> None:
    async with client_for(salesforce, retry) as sf:
        record_id = await sf.create("ServicePresenceStatus", {"DeveloperName": "Case_Work"})
        with pytest.raises(InvalidField):
            await sf.update("ServicePresenceStatus", record_id, {"NoSuchField__c": 1})


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (lambda sf: sf.create("Bad/Name", {}), "object API name"),
        (lambda sf: sf.update("User", "../../x", {}), "record Id"),
        (lambda sf: sf.delete("User", "005"), "record Id"),
        (lambda sf: sf.get("sobjects/User"), "starts with '/'"),
    ],
)
async def test_bad_arguments_are_refused_before_any_request(salesforce, retry, call, problem: str) -> None:
    async with client_for(salesforce, retry) as sf:
        await sf.authenticate()
        with pytest.raises(ValueError, match=problem):
            await call(sf)

    assert sum(salesforce.calls.values()) == 1  # only the login


async def test_the_api_budget_is_read_from_every_response(salesforce, retry) -> None:
    salesforce.api_used, salesforce.api_limit = 1519, 15000
    async with client_for(salesforce, retry) as sf:
        assert sf.api_usage is None
        await sf.query("SELECT Id FROM User")
        first = sf.api_usage
        await sf.query("SELECT Id FROM User")

    # The reading counts the call that carried it.
    assert first == ApiUsage(used=1520, limit=15000)
    assert sf.api_usage == ApiUsage(used=1521, limit=15000)
    assert sf.api_usage.remaining == 13479
    assert sf.api_usage.fraction_used == pytest.approx(1521 / 15000)


@pytest.mark.parametrize(
    ("header", "usage"),
    [
        ("api-usage=18/5000", ApiUsage(18, 5000)),
        ("api-usage=18/5000, per-app-api-usage=17/250(appName=sample)", ApiUsage(18, 5000)),
        ("per-app-api-usage=17/250(appName=sample)", None),
        ("api-usage=lots", None),
        (None, None),
    ],
)
def test_limit_info_parsing(header: str | None, usage: ApiUsage | None) -> None:
    assert parse_limit_info(header) == usage


async def test_a_spent_budget_is_raised_at_once_and_not_retried(salesforce, retry, sleeps) -> None:
    salesforce.api_used = salesforce.api_limit = 15000
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(RequestLimitExceeded) as caught:
            await sf.query("SELECT Id FROM User")

    assert salesforce.calls[f"GET {DATA}/query"] == 1
    assert sleeps.delays == []
    assert not caught.value.transient
    assert "24-hour API request budget is spent (15000/15000 used)" in str(caught.value)


async def test_server_unavailable_is_retried_honouring_retry_after(salesforce, retry, sleeps) -> None:
    salesforce.faults.status(f"{DATA}/query", 503,
                             [{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}],
                             headers={"Retry-After": "3"})
    async with client_for(salesforce, retry) as sf:
        assert await sf.query("SELECT Id FROM User") == []

    assert salesforce.calls[f"GET {DATA}/query"] == 2
    assert sleeps.delays == [3.0]


async def test_a_lasting_outage_becomes_a_transient_error_with_salesforces_words(salesforce, retry) -> None:
    salesforce.faults.status(f"{DATA}/query", 500, [{"message": "Oops", "errorCode": "UNKNOWN_EXCEPTION"}],
                             times=10)
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(TransientError) as caught:
            await sf.query("SELECT Id FROM User")

    assert salesforce.calls[f"GET {DATA}/query"] == 4
    assert "UNKNOWN_EXCEPTION: Oops" in str(caught.value)


def named(count: int, sobject: str = "Account") -> list[dict]:
    return [{"attributes": {"type": sobject}, "Name": f"r{n}"} for n in range(count)]


async def test_create_many_chunks_by_200_and_keeps_input_order(salesforce, retry) -> None:
    async with client_for(salesforce, retry) as sf:
        results = await sf.create_many(named(450))

    assert sorted(salesforce.composite_sizes) == [50, 200, 200]
    assert len(results) == 450 and all(result.success and result.id for result in results)
    stored = salesforce.records["Account"]
    assert [stored[result.id]["Name"] for result in results] == [f"r{n}" for n in range(450)]


async def test_create_many_with_nothing_makes_no_call(salesforce, retry) -> None:
    async with client_for(salesforce, retry) as sf:
        assert await sf.create_many([]) == []

    assert sum(salesforce.calls.values()) == 0


async def test_all_or_none_beyond_one_call_is_refused(salesforce, retry) -> None:
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(ValueError, match="all_or_none"):
            await sf.create_many(named(201), all_or_none=True)

    assert salesforce.composite_sizes == []


async def test_setup_and_other_objects_may_not_be_mixed(salesforce, retry) -> None:
    records = named(2, "ServicePresenceStatus") + named(1, "Presence_Sync_Command__e")
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(ValueError) as caught:
            await sf.create_many(records)

    assert "ServicePresenceStatus" in str(caught.value)
    assert "Presence_Sync_Command__e" in str(caught.value)
    assert "separate" in str(caught.value)
    assert salesforce.composite_sizes == []


async def test_records_without_a_type_are_refused(salesforce, retry) -> None:
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(ValueError, match="record 1 has no attributes.type"):
            await sf.create_many([named(1)[0], {"Name": "untyped"}])


async def test_per_record_failures_come_back_as_results(salesforce, retry) -> None:
    records = [{"attributes": {"type": "ServicePresenceStatus"}, "DeveloperName": name}
               for name in ("Lunch", "Lunch", "On_Break")]
    async with client_for(salesforce, retry) as sf:
        results = await sf.create_many(records)

    assert [result.success for result in results] == [True, False, True]
    assert results[1].id is None
    assert results[1].errors[0].status_code == "DUPLICATE_VALUE"


async def test_a_failed_chunk_does_not_hide_the_saved_ones(salesforce, retry) -> None:
    def fail_second_chunk(records):
        if records[0]["Name"] == "r200":
            return httpx.Response(500, json=[{"message": "boom", "errorCode": "UNKNOWN_EXCEPTION"}])
        return None

    salesforce.composite_failure = fail_second_chunk
    async with client_for(salesforce, retry) as sf:
        results = await sf.create_many(named(450))

    assert [result.success for result in results] == [True] * 200 + [False] * 200 + [True] * 50
    assert results[200].errors[0].status_code == "TransientError"
    assert "may or may not have been applied" in results[200].errors[0].message
    assert salesforce.composite_sizes.count(200) == 2  # the failed create was not repeated


async def test_when_every_chunk_fails_the_error_is_raised(salesforce, retry) -> None:
    salesforce.composite_failure = lambda records: httpx.Response(
        500, json=[{"message": "boom", "errorCode": "UNKNOWN_EXCEPTION"}])
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(TransientError):
            await sf.create_many(named(250))


async def test_a_result_list_of_the_wrong_length_is_malformed(salesforce, retry) -> None:
    salesforce.composite_failure = lambda records: httpx.Response(200, json=[{"id": "001", "success": True}])
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(MalformedResponse) as caught:
            await sf.create_many(named(3))

    assert f"POST {DATA}/composite/sobjects" in str(caught.value)
    assert "1 save results for 3 records" in str(caught.value)


async def test_presence_commands_are_published_and_enqueued_counts_as_success(salesforce, retry) -> None:
    commands = [PresenceCommand(USER_ID, STATUS_ID, f"cmd-{n}", reason="cxone:Available") for n in range(3)]
    commands.append(PresenceCommand(USER_ID, "0", "cmd-offline"))
    async with client_for(salesforce, retry) as sf:
        results = await sf.publish_presence_commands(commands)

    assert [result.success for result in results] == [True] * 4
    assert all(result.errors[0].status_code == "OPERATION_ENQUEUED" for result in results)
    assert salesforce.composite_sizes == [4]
    published = list(salesforce.records.get("Presence_Sync_Command__e", {}).values())
    assert published == []  # events are not stored as records, only enqueued


async def test_presence_command_records_carry_the_applier_fields() -> None:
    command = PresenceCommand(USER_ID, STATUS_ID, "cmd-1", reason="because")
    assert command.to_record() == {
        "attributes": {"type": "Presence_Sync_Command__e"},
        "UserId__c": USER_ID,
        "StatusId__c": STATUS_ID,
        "CommandId__c": "cmd-1",
        "Reason__c": "because",
    }
    assert "Reason__c" not in PresenceCommand(USER_ID, "0", "cmd-2").to_record()


@pytest.mark.parametrize(
    ("user_id", "status_id", "command_id", "problem"),
    [
        ("nobody", STATUS_ID, "c", "user_id"),
        (USER_ID, "0N5000000000001", "c", "18-character"),
        (USER_ID, STATUS_ID, "", "command_id"),
    ],
)
def test_bad_presence_commands_are_refused(user_id: str, status_id: str, command_id: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        PresenceCommand(user_id, status_id, command_id)


@pytest.mark.parametrize("bound", [1, 2, 4])
async def test_chunks_run_concurrently_under_the_bound(salesforce, retry, bound: int) -> None:
    async with client_for(salesforce, retry, max_concurrency=bound) as sf:
        await sf.authenticate()
        salesforce.peak_in_flight = 0
        results = await sf.create_many(named(1000))

    assert len(results) == 1000
    assert salesforce.composite_sizes == [200] * 5
    assert salesforce.peak_in_flight == bound
