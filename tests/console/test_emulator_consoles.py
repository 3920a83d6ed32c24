"""The Salesforce emulator's consoles as real clients of our gateway (issue 9, "How we will check").

A real gateway on a loopback port with the in-process broker; the emulator's consoles connect to it
with tokens signed with the shared secret, apply commands to the emulated presence, acknowledge them
and push status changes. Deadlines are generous; nothing waits a fixed time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from presence_sync.connectors.console.broker import CommandOutcome, ConsoleCommand, InProcessBroker, StatusPush
from presence_sync.emulators.demo_center import AGENT_PROFILE, STATUSES
from presence_sync.emulators.salesforce import SalesforceEmulator, SalesforceEmulatorOptions, create_app
from presence_sync.emulators.salesforce.schema import SERVICE_PRESENCE_STATUS, SETUP_ENTITY_ACCESS
from tests.console.support import DEADLINE, SECRET, events_until, serve_gateway, settings


async def until(condition: Any, what: str) -> None:
    async with asyncio.timeout(DEADLINE):
        while not condition():
            await asyncio.sleep(0.02)
    assert condition(), what


class Org:
    def __init__(self, emulator: SalesforceEmulator, broker: InProcessBroker, gateway_url: str) -> None:
        self.emulator = emulator
        self.broker = broker
        self.url = gateway_url

    def user(self, number: int) -> str:
        user = self.emulator.user_by_username(f"agent{number}@example.com")
        assert user is not None
        return user.id

    def status(self, name: str) -> str:
        with self.emulator.lock:
            status = self.emulator.org.status_by_developer_name(name)
        assert status is not None
        return str(status["Id"])

    async def connect(self, *user_ids: str) -> None:
        await asyncio.to_thread(self.emulator.connect_consoles, self.url, SECRET.get_secret_value(), list(user_ids))
        await self.connected(*user_ids)

    async def connected(self, *user_ids: str) -> None:
        async def all_connected() -> bool:
            consoles = await self.broker.connected_consoles()
            return all(consoles.get(user, 0) >= 1 for user in user_ids)

        async with asyncio.timeout(DEADLINE):
            while not await all_connected():
                await asyncio.sleep(0.02)

    async def outcome(self, command_id: str) -> CommandOutcome:
        async with asyncio.timeout(DEADLINE):
            after = 0
            while True:
                for event in await self.broker.read_events(after):
                    after = event.seq
                    if isinstance(event, CommandOutcome) and event.command_id == command_id:
                        return event
                await self.broker.wait_for_events(after, timeout=0.5)


def onboard_statuses(emulator: SalesforceEmulator) -> None:
    """The demo's statuses, granted to the agent profile (what onboarding does over the API)."""
    with emulator.lock:
        org = emulator.org
        agent_profile = org.profile_by_name(AGENT_PROFILE)
        assert agent_profile is not None
        permission_set = org.permission_set_of_profile(agent_profile["Id"])
        for spec in STATUSES:
            status = org.insert(SERVICE_PRESENCE_STATUS, {"DeveloperName": spec.developer_name,
                                                          "MasterLabel": spec.label})
            org.insert(SETUP_ENTITY_ACCESS, {"ParentId": permission_set, "SetupEntityId": status["Id"]})


@pytest.fixture
async def org() -> AsyncIterator[Org]:
    emulator: SalesforceEmulator = create_app(SalesforceEmulatorOptions(agents=6, seed=3)).state.emulator
    onboard_statuses(emulator)
    broker = InProcessBroker()
    async with serve_gateway(settings(), broker) as gateway:
        try:
            yield Org(emulator, broker, gateway.url)
        finally:
            await asyncio.to_thread(emulator.disconnect_consoles)


async def test_a_command_for_agent_a_reaches_a_console_only(org: Org) -> None:
    a, b = org.user(1), org.user(2)
    await org.connect(a, b)
    command = ConsoleCommand.set_status(a, org.status("On_Break"), "On_Break")
    await org.broker.submit([command])

    outcome = await org.outcome(command.command_id)
    assert outcome.outcome == "applied" and outcome.status is not None and outcome.status.status == "On_Break"
    assert org.emulator.current_presence(a) == "On_Break"
    assert org.emulator.current_presence(b) is None
    stats = org.emulator.consoles.stats()
    assert stats["commands_received"] == 1 and stats["ack_applied"] == 1


async def test_the_same_command_twice_is_applied_once(org: Org) -> None:
    a = org.user(1)
    await org.connect(a)
    first = ConsoleCommand.set_status(a, org.status("Lunch"), "Lunch", command_id="cmd-lunch-1")
    await org.broker.submit([first])
    assert (await org.outcome("cmd-lunch-1")).outcome == "applied"
    # The broker ignores a repeated submit; a console that gets a command again (a redelivery after
    # a reconnect) answers `duplicate` and changes nothing.
    assert await org.broker.submit([first]) == 0
    spells_before = len(org.emulator.org.table("UserServicePresence"))
    state = org.emulator.consoles._consoles[a]
    ack, push = org.emulator.consoles._handle(state, first.to_message())
    assert ack["outcome"] == "ignored" and ack["reason"] == "duplicate" and push is None
    assert len(org.emulator.org.table("UserServicePresence")) == spells_before


async def test_a_closed_console_gives_lost_within_the_timeout(org: Org) -> None:
    a = org.user(1)
    await org.connect(a)
    await asyncio.to_thread(org.emulator.set_console, a, False)

    async def gone() -> bool:
        return (await org.broker.connected_consoles()).get(a, 0) == 0

    async with asyncio.timeout(DEADLINE):
        while not await gone():
            await asyncio.sleep(0.02)
    command = ConsoleCommand.set_status(a, org.status("On_Break"), "On_Break", timeout=timedelta(seconds=1))
    await org.broker.submit([command])
    outcome = await org.outcome(command.command_id)
    assert outcome.outcome == "lost" and outcome.reason is not None and "no console connected" in outcome.reason
    assert org.emulator.current_presence(a) is None

    await asyncio.to_thread(org.emulator.set_console, a, True)  # reopened: it connects again
    await org.connected(a)


async def test_a_status_the_profile_lacks_fails_with_the_consoles_error(org: Org) -> None:
    with org.emulator.lock:
        org.emulator.create_profile("Limited Agent")
    limited = org.emulator.create_user("limited@example.com", "limited@example.com", "Lim Ited", "Limited Agent")
    denied = org.user(2)
    await org.connect(limited.id, denied)
    await asyncio.to_thread(org.emulator.set_console, denied, True, None, ["Lunch"])

    no_access = ConsoleCommand.set_status(limited.id, org.status("Lunch"), "Lunch")
    refused = ConsoleCommand.set_status(denied, org.status("Lunch"), "Lunch")
    await org.broker.submit([no_access, refused])
    for command in (no_access, refused):
        outcome = await org.outcome(command.command_id)
        assert outcome.outcome == "failed"
        assert outcome.error == "You don't have access to the presence status Lunch."
    assert org.emulator.current_presence(limited.id) is None and org.emulator.current_presence(denied) is None


async def test_a_slow_console_still_applies(org: Org) -> None:
    a = org.user(3)
    await org.connect(a)
    await asyncio.to_thread(org.emulator.set_console, a, True, 300)
    command = ConsoleCommand.set_status(a, org.status("Available"), "Available")
    await org.broker.submit([command])
    assert (await org.outcome(command.command_id)).outcome == "applied"
    assert org.emulator.current_presence(a) == "Available"


async def test_a_command_received_before_the_agents_own_change_is_ignored_not_applied_over_it(org: Org) -> None:
    # As the component does: a command still waiting in the console when the agent logs out would log
    # them back in (setServicePresenceStatus does); it is ignored and the sync decides from the logout.
    a = org.user(4)
    await org.connect(a)
    org.emulator.set_presence(a, "Available")
    consoles = org.emulator.consoles
    state = consoles._consoles[a]
    waiting = {**ConsoleCommand.set_status(a, org.status("On_Break"), "On_Break").to_message(),
               "_received_at": time.monotonic()}
    org.emulator.set_presence(a, None)  # the agent logs out while the command waits
    ack, push = consoles._handle(state, waiting)
    assert ack["outcome"] == "ignored" and ack["reason"] == "superseded by the agent's own change" and push is None
    assert org.emulator.current_presence(a) is None
    later = ConsoleCommand.set_status(a, org.status("Lunch"), "Lunch")  # received after it: applied
    await org.broker.submit([later])
    assert (await org.outcome(later.command_id)).outcome == "applied"
    assert org.emulator.current_presence(a) == "Lunch"


async def test_a_compare_and_set_command_applies_only_over_what_it_expected(org: Org) -> None:
    # The sync decided from Available; the agent picked Lunch before the command arrived: it is left alone.
    a = org.user(5)
    await org.connect(a)
    org.emulator.set_presence(a, "Lunch")
    stale = ConsoleCommand.set_status(a, org.status("On_Break"), "On_Break", if_showing=["Available"])
    await org.broker.submit([stale])
    refused = await org.outcome(stale.command_id)
    assert (refused.outcome, refused.reason) == ("ignored", "not as expected")
    assert refused.status is not None and refused.status.status == "Lunch"
    assert org.emulator.current_presence(a) == "Lunch"

    expected = ConsoleCommand.set_status(a, org.status("On_Break"), "On_Break", if_showing=["Available", "Lunch"])
    logout = ConsoleCommand.logout(a, if_showing=["On_Break"], issued_at=expected.issued_at + timedelta(seconds=1))
    await org.broker.submit([expected])
    assert (await org.outcome(expected.command_id)).outcome == "applied"
    await org.broker.submit([logout])
    assert (await org.outcome(logout.command_id)).outcome == "applied"
    assert org.emulator.current_presence(a) is None
    from_offline = ConsoleCommand.set_status(a, org.status("Available"), "Available", if_showing=[None],
                                             issued_at=logout.issued_at + timedelta(seconds=1))
    await org.broker.submit([from_offline])
    assert (await org.outcome(from_offline.command_id)).outcome == "applied"
    assert org.emulator.current_presence(a) == "Available"


async def test_a_manual_change_is_pushed_with_its_reason(org: Org) -> None:
    a, b = org.user(1), org.user(2)
    await org.connect(a, b)
    org.emulator.set_presence(a, "Lunch")
    org.emulator.set_presence(b, "On_Break", reason="OmniSupervisorStatusChange")
    org.emulator.set_presence(a, None)

    pushes = [event for event in await events_until(org.broker, 3) if isinstance(event, StatusPush)]
    by_user = {(push.user_id, push.event): push for push in pushes}
    lunch = by_user[(a, "status_changed")]
    assert lunch.reason == "OmniManualStatusChange" and lunch.status is not None and lunch.status.status == "Lunch"
    assert lunch.command_id is None
    assert by_user[(b, "status_changed")].reason == "OmniSupervisorStatusChange"
    assert by_user[(a, "logout")].status is None


async def test_our_command_is_pushed_as_a_toolkit_change_naming_the_command(org: Org) -> None:
    a = org.user(1)
    await org.connect(a)
    command = ConsoleCommand.set_status(a, org.status("Case_Work"), "Case_Work")
    await org.broker.submit([command])
    events = await events_until(org.broker, 2)
    [push] = [event for event in events if isinstance(event, StatusPush)]
    assert push.reason == "OmniToolkitStatusChange" and push.command_id == command.command_id


async def test_the_control_api_connects_and_configures_consoles(org: Org) -> None:
    import httpx

    app = create_app(SalesforceEmulatorOptions(agents=3, seed=3))
    emulator: SalesforceEmulator = app.state.emulator
    onboard_statuses(emulator)
    user = emulator.user_by_username("agent1@example.com")
    assert user is not None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as http:
        short = await http.put("/__emulator/gateway", json={"url": org.url, "secret": "short"})
        assert short.status_code == 422
        connected = await http.put("/__emulator/gateway", json={"url": org.url, "secret": SECRET.get_secret_value(),
                                                                "user_ids": [user.id]})
        assert connected.status_code == 200 and connected.json()["consoles"] == 1
        await org.connected(user.id)
        console = await http.put(f"/__emulator/users/{user.id}/console",
                                 json={"open": True, "apply_delay_ms": 50, "denied_statuses": ["Lunch"]})
        assert console.json() == {"open": True, "apply_delay_ms": 50, "denied_statuses": ["Lunch"]}
        pushed = await http.put(f"/__emulator/users/{user.id}/presence",
                                json={"status": "On_Break", "reason": "OmniPushTimeout"})
        assert pushed.status_code == 200
        [push] = [event for event in await events_until(org.broker, 1) if isinstance(event, StatusPush)]
        assert push.reason == "OmniPushTimeout"
        stats = (await http.get("/__emulator/gateway")).json()
        assert stats["connected"] == 1 and "secret" not in str(stats)
        assert (await http.delete("/__emulator/gateway")).status_code == 200
