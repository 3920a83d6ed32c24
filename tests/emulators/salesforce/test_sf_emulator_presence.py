"""Agent presence: spells, the presence applier and its commands, the agent's own clicks (apis.md S4)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from presence_sync.emulators.faults import iso_z
from presence_sync.emulators.salesforce import SalesforceEmulator
from presence_sync.emulators.salesforce.errors import NoStatusAccessError, UnknownStatusError, UnknownUserError
from sf_emulator_support import FrozenClock, query

SPELLS = ("SELECT Id, UserId, ServicePresenceStatus.DeveloperName, StatusStartDate, StatusEndDate, IsCurrentState, "
          "IsAway FROM UserServicePresence")


async def spells(api: httpx.AsyncClient, user_id: str) -> list[dict[str, Any]]:
    return (await query(api, f"{SPELLS} WHERE UserId = '{user_id}' ORDER BY StatusStartDate"))["records"]


def command(user_id: str, status_id: str, n: int = 1) -> dict[str, Any]:
    return {"UserId__c": user_id, "StatusId__c": status_id, "CommandId__c": f"cmd-{n}", "Reason__c": "sync"}


async def publish(api: httpx.AsyncClient, user_id: str, status_id: str) -> None:
    response = await api.post("/sobjects/Presence_Sync_Command__e/", json=command(user_id, status_id))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True and body["id"].startswith("e00")
    assert [e["statusCode"] for e in body["errors"]] == ["OPERATION_ENQUEUED"]


async def commands(http: httpx.AsyncClient) -> dict[str, Any]:
    return (await http.get("/__emulator/stats")).json()["presence_commands"]  # type: ignore[no-any-return]


# -- seeding -----------------------------------------------------------------------------------------


async def test_the_seeded_org_is_the_demo_center_before_onboarding(
    api: httpx.AsyncClient, emulator: SalesforceEmulator
) -> None:
    users = (await query(api, "SELECT Username, Profile.Name FROM User ORDER BY Username"))["records"]
    by_profile: dict[str, list[str]] = {}
    for user in users:
        by_profile.setdefault(user["Profile"]["Name"], []).append(user["Username"])
    agents = {f"agent{i}@example.com" for i in range(1, 21)} - {"agent50@example.com"}
    assert set(by_profile["Contact Center Agent"]) == agents  # 20 agents: none is a 50th
    assert by_profile["Contact Center Supervisor"] == ["supervisor1@example.com", "supervisor2@example.com"]
    assert by_profile["System Administrator"] == ["integration@example.com"]
    channels = (await query(api, "SELECT DeveloperName, RelatedEntity FROM ServiceChannel ORDER BY DeveloperName"))[
        "records"]
    assert [(c["DeveloperName"], c["RelatedEntity"]) for c in channels] == [
        ("sfdc_case", "Case"), ("sfdc_chat", "LiveChatTranscript"), ("sfdc_phone", "VoiceCall")]
    assert (await query(api, "SELECT COUNT() FROM ServicePresenceStatus"))["totalSize"] == 0
    assert (await query(api, "SELECT COUNT() FROM PermissionSet WHERE IsOwnedByProfile = true"))["totalSize"] == 3
    assert (await query(api, "SELECT COUNT() FROM UserServicePresence"))["totalSize"] == 0
    agent = emulator.user_by_username("agent1@example.com")
    assert agent is not None and emulator.console(agent.id).open and emulator.current_presence(agent.id) is None


def test_every_fiftieth_agent_has_no_salesforce_user() -> None:
    from presence_sync.emulators.salesforce import SalesforceEmulatorOptions, create_app

    emulator: SalesforceEmulator = create_app(SalesforceEmulatorOptions(agents=100)).state.emulator
    assert emulator.user_by_username("agent49@example.com") is not None
    assert emulator.user_by_username("agent50@example.com") is None
    assert emulator.user_by_username("agent100@example.com") is None


# -- spells ------------------------------------------------------------------------------------------


async def test_a_change_ends_the_current_spell_and_starts_a_new_one(
    api: httpx.AsyncClient,
    emulator: SalesforceEmulator,
    statuses: dict[str, str],
    agent_id: str,
    frozen_clock: FrozenClock,
) -> None:
    assert emulator.set_presence(agent_id, "Available") is True
    frozen_clock.advance(5)
    assert emulator.set_presence(agent_id, "On_Break") is True
    assert emulator.set_presence(agent_id, "On_Break") is False  # the current status again: no new spell
    frozen_clock.advance(3)
    assert emulator.set_presence(agent_id, None) is True  # logs out: ends without starting one
    assert emulator.set_presence(agent_id, None) is False

    first, second = await spells(api, agent_id)
    assert first["ServicePresenceStatus"]["DeveloperName"] == "Available" and first["IsAway"] is False
    assert second["ServicePresenceStatus"]["DeveloperName"] == "On_Break" and second["IsAway"] is True
    assert first["StatusEndDate"] == second["StatusStartDate"] and first["IsCurrentState"] is False
    assert second["StatusEndDate"] is not None and second["IsCurrentState"] is False
    assert emulator.current_presence(agent_id) is None
    [raw] = (await query(api, f"SELECT StatusDuration FROM UserServicePresence WHERE Id = '{first['Id']}'"))["records"]
    assert raw["StatusDuration"] == 5.0


async def test_the_poll_query_of_apis_md_sees_starts_and_ends_after_a_watermark(
    api: httpx.AsyncClient, emulator: SalesforceEmulator, statuses: dict[str, str], agent_id: str
) -> None:
    other = emulator.user_by_username("agent2@example.com")
    assert other is not None
    emulator.set_presence(agent_id, "Available")
    emulator.set_presence(other.id, "Lunch")
    emulator.clock.advance(1)
    watermark = iso_z(emulator.clock.now())
    emulator.clock.advance(1)
    emulator.set_presence(agent_id, "Case_Work")

    rows = (await query(api, f"{SPELLS} WHERE StatusStartDate > {watermark} OR StatusEndDate > {watermark} "
                             "ORDER BY StatusStartDate"))["records"]
    assert [(r["ServicePresenceStatus"]["DeveloperName"], r["IsCurrentState"]) for r in rows] == [
        ("Available", False), ("Case_Work", True)]
    assert all(r["UserId"] == agent_id for r in rows)


async def test_spells_are_read_only_but_deletable(
    api: httpx.AsyncClient, emulator: SalesforceEmulator, statuses: dict[str, str], agent_id: str
) -> None:
    emulator.set_presence(agent_id, "Available")
    [spell] = await spells(api, agent_id)
    body = {"UserId": agent_id, "ServicePresenceStatusId": statuses["Lunch"]}
    created = await api.post("/sobjects/UserServicePresence", json=body)
    assert created.status_code == 400
    assert created.json()[0] == {"message": "entity type cannot be inserted: User Service Presence",
                                 "errorCode": "INVALID_TYPE_FOR_OPERATION", "fields": []}
    updated = await api.patch(f"/sobjects/UserServicePresence/{spell['Id']}", json={"IsCurrentState": False})
    assert updated.json()[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
    assert (await api.get(f"/sobjects/UserServicePresence/{spell['Id']}")).json()["IsCurrentState"] is True

    assert (await api.delete(f"/sobjects/UserServicePresence/{spell['Id']}")).status_code == 204
    assert await spells(api, agent_id) == []
    assert emulator.current_presence(agent_id) == "Available"  # deleting the record does not log the agent out
    emulator.set_presence(agent_id, "Lunch")
    assert [s["ServicePresenceStatus"]["DeveloperName"] for s in await spells(api, agent_id)] == ["Lunch"]


# -- the agent's own clicks --------------------------------------------------------------------------


async def test_presence_control_is_the_agents_click(
    http: httpx.AsyncClient,
    api: httpx.AsyncClient,
    emulator: SalesforceEmulator,
    statuses: dict[str, str],
    agent_id: str,
) -> None:
    clicked = await http.put(f"/__emulator/users/{agent_id}/presence", json={"status": "Lunch"})
    assert clicked.json() == {"status": "Lunch", "changed": True}
    again = await http.put(f"/__emulator/users/{agent_id[:15]}/presence", json={"status": "Lunch"})
    assert again.json() == {"status": "Lunch", "changed": False}
    view = (await http.get(f"/__emulator/users/{agent_id}")).json()
    assert view["presence"] == "Lunch" and view["username"] == "agent1@example.com" and view["console"]["open"] is True

    logged_out = await http.put(f"/__emulator/users/{agent_id}/presence", json={"status": None})
    assert logged_out.json() == {"status": None, "changed": True}
    assert (await http.put(f"/__emulator/users/{agent_id}/presence", json={})).status_code == 422
    unknown = await http.put(f"/__emulator/users/{agent_id}/presence", json={"status": "Nope"})
    assert unknown.status_code == 404 and "Nope" in unknown.json()["detail"]
    assert (await http.put("/__emulator/users/005000000000000/presence", json={"status": "Lunch"})).status_code == 404


async def test_a_status_the_profile_lacks_is_refused_with_409(
    http: httpx.AsyncClient, api: httpx.AsyncClient, emulator: SalesforceEmulator, statuses: dict[str, str]
) -> None:
    admin = emulator.user_by_username("integration@example.com")
    assert admin is not None
    response = await http.put(f"/__emulator/users/{admin.id}/presence", json={"status": "Lunch"})
    assert response.status_code == 409
    assert "no access to presence status Lunch" in response.json()["detail"]
    with pytest.raises(NoStatusAccessError):
        emulator.set_presence(admin.id, "Lunch")
    with pytest.raises(UnknownStatusError):
        emulator.set_presence(admin.id, "Nope")
    with pytest.raises(UnknownUserError):
        emulator.set_presence("005000000000000", "Lunch")
    assert emulator.current_presence(admin.id) is None


# -- the presence applier ----------------------------------------------------------------------------


async def test_a_published_command_is_applied_by_an_open_console(
    http: httpx.AsyncClient,
    api: httpx.AsyncClient,
    emulator: SalesforceEmulator,
    statuses: dict[str, str],
    agent_id: str,
) -> None:
    await publish(api, agent_id, statuses["Available_for_Chats"])
    assert emulator.current_presence(agent_id) == "Available_for_Chats"
    await publish(api, agent_id, statuses["On_Break"][:15])  # a 15-character id works too
    await publish(api, agent_id, "0")  # Offline
    assert emulator.current_presence(agent_id) is None
    assert [s["ServicePresenceStatus"]["DeveloperName"] for s in await spells(api, agent_id)] == [
        "Available_for_Chats", "On_Break"]
    assert await commands(http) == {"published": 3, "applied": 3, "pending": 0, "lost": {}, "lost_total": 0}


async def test_commands_the_console_cannot_apply_are_lost_and_counted(
    http: httpx.AsyncClient,
    api: httpx.AsyncClient,
    emulator: SalesforceEmulator,
    statuses: dict[str, str],
    agent_id: str,
) -> None:
    admin = emulator.user_by_username("integration@example.com")
    assert admin is not None
    await publish(api, admin.id, statuses["Lunch"])  # the admin profile has no access to Lunch
    await publish(api, agent_id, emulator.org.ids.make("0N5", 999))  # no such status
    await publish(api, "005000000000000", statuses["Lunch"])  # no such user
    closed = await http.put(f"/__emulator/users/{agent_id}/console", json={"open": False})
    assert closed.json() == {"open": False, "apply_delay_ms": 0}
    await publish(api, agent_id, statuses["Lunch"])

    assert emulator.current_presence(agent_id) is None and emulator.current_presence(admin.id) is None
    assert await commands(http) == {
        "published": 4, "applied": 0, "pending": 0, "lost_total": 4,
        "lost": {"console_closed": 1, "no_access": 1, "unknown_status": 1, "unknown_user": 1},
    }
    # Reopening does not replay what was lost (the component subscribes to new events only).
    await http.put(f"/__emulator/users/{agent_id}/console", json={"open": True})
    assert emulator.current_presence(agent_id) is None


async def test_commands_through_a_collection_are_applied_in_order(
    http: httpx.AsyncClient,
    api: httpx.AsyncClient,
    emulator: SalesforceEmulator,
    statuses: dict[str, str],
    agent_id: str,
) -> None:
    records = [{"attributes": {"type": "Presence_Sync_Command__e"}, **command(agent_id, statuses[name], n)}
               for n, name in enumerate(["Available", "Case_Work", "Lunch"])]
    records.append({"attributes": {"type": "Presence_Sync_Command__e"}, "UserId__c": agent_id})  # no StatusId__c
    results = (await api.post("/composite/sobjects", json={"records": records})).json()
    assert [r["success"] for r in results] == [True, True, True, False]
    assert results[0]["errors"][0]["statusCode"] == "OPERATION_ENQUEUED"
    assert results[3]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert emulator.current_presence(agent_id) == "Lunch"
    assert len(await spells(api, agent_id)) == 3
    assert (await commands(http))["applied"] == 3


async def test_events_can_be_neither_queried_nor_too_long(api: httpx.AsyncClient, agent_id: str) -> None:
    queried = await api.get("/query", params={"q": "SELECT UserId__c FROM Presence_Sync_Command__e"})
    assert queried.json()[0]["errorCode"] == "INVALID_TYPE"
    too_long = {**command(agent_id, "0"), "CommandId__c": "x" * 65}
    long = await api.post("/sobjects/Presence_Sync_Command__e", json=too_long)
    assert long.json()[0]["errorCode"] == "STRING_TOO_LONG"


async def test_a_delayed_applier_acts_later_in_the_event_loop(
    http: httpx.AsyncClient,
    api: httpx.AsyncClient,
    emulator: SalesforceEmulator,
    statuses: dict[str, str],
    agent_id: str,
) -> None:
    await http.put(f"/__emulator/users/{agent_id}/console", json={"open": True, "apply_delay_ms": 20})
    records = [{"attributes": {"type": "Presence_Sync_Command__e"}, **command(agent_id, statuses[name], n)}
               for n, name in enumerate(["On_Break", "Lunch"])]
    assert all(r["success"] for r in (await api.post("/composite/sobjects", json={"records": records})).json())
    assert emulator.current_presence(agent_id) is None
    assert (await commands(http))["pending"] == 2
    for _ in range(500):  # bounded wait for the event loop to run the applier
        if (await commands(http))["pending"] == 0:
            break
        await asyncio.sleep(0.01)
    assert emulator.current_presence(agent_id) == "Lunch"
    assert [s["ServicePresenceStatus"]["DeveloperName"] for s in await spells(api, agent_id)] == ["On_Break", "Lunch"]
    assert await commands(http) == {"published": 2, "applied": 2, "pending": 0, "lost": {}, "lost_total": 0}


async def test_a_console_closed_while_a_command_waits_loses_it(
    http: httpx.AsyncClient,
    api: httpx.AsyncClient,
    emulator: SalesforceEmulator,
    statuses: dict[str, str],
    agent_id: str,
) -> None:
    emulator.set_console(agent_id, open=True, apply_delay_ms=20)
    await publish(api, agent_id, statuses["Lunch"])
    emulator.set_console(agent_id, open=False)
    for _ in range(500):
        if (await commands(http))["pending"] == 0:
            break
        await asyncio.sleep(0.01)
    assert emulator.current_presence(agent_id) is None
    assert (await commands(http))["lost"] == {"console_closed": 1}


async def test_reset_forgets_pending_commands(
    http: httpx.AsyncClient,
    api: httpx.AsyncClient,
    emulator: SalesforceEmulator,
    statuses: dict[str, str],
    agent_id: str,
) -> None:
    emulator.set_console(agent_id, open=True, apply_delay_ms=10_000)
    await publish(api, agent_id, statuses["Lunch"])
    assert (await commands(http))["pending"] == 1
    await http.post("/__emulator/reset", json={})
    assert await commands(http) == {"published": 0, "applied": 0, "pending": 0, "lost": {}, "lost_total": 0}
