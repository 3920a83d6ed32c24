"""The sync's Salesforce writes through the console gateway (issue 9), against the emulators.

The config selects `console.channel: gateway` with no broker URL: the runner starts the embedded
gateway with the in-process broker, and the Salesforce emulator's consoles connect to it as real
clients. Deadlines are generous; waits are for events, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from presence_sync.connectors.console.broker import CommandOutcome
from presence_sync.connectors.console.protocol import NOT_AS_EXPECTED
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.console_channel import (
    CHANGED_SINCE,
    CONSOLE_STATUS_CURSOR,
    embedded_gateway,
    stop_embedded_gateways,
)
from presence_sync.tasks.sync.runner import LEASE_NAME, SyncRunner
from presence_sync.tasks.sync.status import read_status
from presence_sync.tasks.sync.window import Wake, run_window
from presence_sync.tasks.validate.hops import HopRunner
from presence_sync.tasks.validate.report import Cause, Diagnosis
from tests.sync.support import AGENTS, World, agent_id

SECRET = "sync-test-gateway-secret-0123456789-abcdefgh"
DEADLINE = 30.0


def gateway_config(data: dict[str, Any], *, ack_timeout: float = 20.0) -> None:
    data["console"] = {"channel": "gateway", "gateway_secret": SECRET, "ack_timeout_seconds": ack_timeout}


@pytest.fixture
async def console_ctx(world: World) -> AsyncIterator[Context]:
    path = world.variant(lambda data: gateway_config(data, ack_timeout=2.0), "gateway.yaml")
    async with world.context(path) as ctx:
        yield ctx
    await asyncio.to_thread(world.stack.salesforce.disconnect_consoles)
    # The embedded gateway and its broker live as long as the process; each test's org starts afresh.
    await asyncio.to_thread(stop_embedded_gateways)


async def connected_runner(world: World, ctx: Context) -> SyncRunner:
    runner = await world.runner(ctx)
    assert runner.console is not None and runner.console.gateway_url is not None
    await asyncio.to_thread(world.stack.salesforce.connect_consoles, runner.console.gateway_url, SECRET,
                            [world.sf_user(i) for i in range(1, AGENTS + 1)])
    async with asyncio.timeout(DEADLINE):
        while len(await runner.console.broker.connected_consoles()) < AGENTS:
            await asyncio.sleep(0.02)
    return runner


async def tick_until(world: World, runner: SyncRunner, condition: Any, what: str, limit: int = 60) -> None:
    """Tick (waiting for console events between ticks) until `condition()` holds."""
    assert runner.console is not None
    for _ in range(limit):
        await runner.tick()
        if condition():
            return
        await runner.console.broker.wait_for_events(runner.console.source.cursor, timeout=0.5)
        world.clock.advance(0.5)
    raise AssertionError(f"not within {limit} ticks: {what}")


def diagnosis_for(world: World, ctx: Context, i: int, since: datetime) -> Diagnosis | None:
    """What validate's CXone -> Salesforce hop would name for agent i from the sync's audit since `since`."""
    [link] = [link for link in ctx.store.setup.load_links() if link.cxone_agent_id == agent_id(i)]
    hops = HopRunner(ctx, link, None, {}, None, 1.0, 0.1)  # type: ignore[arg-type]
    return hops._console_outcome_since(since)


def audit(ctx: Context, i: int) -> list[Any]:
    return list(reversed(ctx.store.reports.audit_for(agent_id(i), limit=500)))


async def test_writes_go_to_each_agents_console_and_are_confirmed(world: World, console_ctx: Context) -> None:
    runner = await connected_runner(world, console_ctx)
    await tick_until(world, runner, lambda: all(world.sf(i) == "Available_for_Chats" for i in range(1, AGENTS + 1)),
                     "every agent Available_for_Chats in Salesforce")
    # Confirmed: every write's echo came back through the console's own report of the change.
    await tick_until(world, runner, lambda: sum(1 for i in range(1, AGENTS + 1)
                                                if any(a.outcome == "echo" for a in audit(console_ctx, i))) == AGENTS,
                     "an echo for every agent")
    assert world.stack.salesforce.applier.published == 0  # no platform events
    stats = world.stack.salesforce.consoles.stats()
    assert stats["ack_applied"] == AGENTS and stats["commands_received"] == AGENTS

    world.pick_cx(1, "Unavailable", "Break")
    await tick_until(world, runner, lambda: world.sf(1) == "On_Break", "agent 1 On_Break")
    assert world.sf(2) == "Available_for_Chats"
    await runner.close()


async def test_a_closed_console_gives_lost_in_the_audit(world: World, console_ctx: Context) -> None:
    runner = await connected_runner(world, console_ctx)
    await tick_until(world, runner, lambda: all(world.sf(i) == "Available_for_Chats" for i in range(1, AGENTS + 1)),
                     "the first writes applied")
    await asyncio.to_thread(world.stack.salesforce.set_console, world.sf_user(3), False)
    since = world.clock()
    world.pick_cx(3, "Unavailable", "Lunch")

    def lost() -> bool:
        return any("console command lost: no console connected" in a.reason for a in audit(console_ctx, 3))

    await tick_until(world, runner, lost, "a lost command in agent 3's audit")
    assert world.sf(3) == "Available_for_Chats"
    diagnosis = diagnosis_for(world, console_ctx, 3, since)
    assert diagnosis is not None and diagnosis.cause is Cause.CONSOLE_CLOSED
    assert "no console connected for this agent" in diagnosis.explanation
    await runner.close()


async def test_a_refused_status_fails_with_the_consoles_error_and_is_not_retried(
        world: World, console_ctx: Context) -> None:
    runner = await connected_runner(world, console_ctx)
    await tick_until(world, runner, lambda: all(world.sf(i) == "Available_for_Chats" for i in range(1, AGENTS + 1)),
                     "the first writes applied")
    await asyncio.to_thread(world.stack.salesforce.set_console, world.sf_user(2), True, None, ["On_Break"])
    since = world.clock()
    world.pick_cx(2, "Unavailable", "Break")

    def failed() -> list[Any]:
        return [a for a in audit(console_ctx, 2) if a.outcome == "failed"]

    await tick_until(world, runner, lambda: bool(failed()), "a failed write in agent 2's audit")
    [record] = failed()
    assert "the agent's console refused it: You don't have access to the presence status On Break." in record.reason
    diagnosis = diagnosis_for(world, console_ctx, 2, since)
    assert diagnosis is not None and diagnosis.cause is Cause.CONSOLE_REFUSED
    assert "You don't have access to the presence status On Break." in diagnosis.explanation
    received = world.stack.salesforce.consoles.stats()["commands_received"]
    await world.ticks(runner, 5)
    assert world.stack.salesforce.consoles.stats()["commands_received"] == received  # not retried blindly
    await runner.close()


async def test_a_pushed_manual_change_reaches_cxone_without_a_presence_query(
        world: World, console_ctx: Context) -> None:
    runner = await connected_runner(world, console_ctx)
    await tick_until(world, runner, lambda: all(world.sf(i) == "Available_for_Chats" for i in range(1, AGENTS + 1)),
                     "the first writes applied")
    await world.ticks(runner, 2)  # a poll now sees every console connected: the next one waits longer
    status = json.loads(console_ctx.store.sync.get_cursor(CONSOLE_STATUS_CURSOR) or "{}")
    assert status["connected_agents"] == AGENTS and status["poll_relaxed"] is True
    report = read_status(console_ctx.store).consoles
    assert report is not None and report.connected_agents == AGENTS and report.linked_agents == AGENTS

    queries = world.api_requests("salesforce", "/query")
    world.pick_sf(4, "On_Break")
    await tick_until(world, runner, lambda: world.cx(4).code == "Break", "agent 4 on Break in CXone", limit=4)
    assert world.api_requests("salesforce", "/query") == queries
    [push] = [a for a in audit(console_ctx, 4) if a.direction == "salesforce->cxone" and a.outcome == "write"]
    assert push.to_value is not None and "Break" in push.to_value
    await runner.close()


async def test_a_command_the_agents_later_change_overtook_is_not_applied_over_it(world: World) -> None:
    # Issue 9's compare-and-set. The sync decides On_Break from CXone while agent 6's console is away; the
    # agent then picks Lunch in Salesforce, newer than the CXone change. When the console comes back the
    # old command arrives after the agent's change: applied, it would undo their choice (and, its push
    # naming a superseded command, leave the sync believing Lunch). It is ignored, and both show Lunch.
    path = world.variant(lambda data: gateway_config(data, ack_timeout=60.0), "gateway-cas.yaml")
    async with world.context(path) as ctx:
        runner = await connected_runner(world, ctx)
        try:
            await tick_until(world, runner, lambda: all(world.sf(i) == "Available_for_Chats" for i in range(1, AGENTS + 1)),
                             "the first writes applied")
            await asyncio.to_thread(world.stack.salesforce.set_console, world.sf_user(6), False)
            world.pick_cx(6, "Unavailable", "Break")
            await world.ticks(runner, 1)
            [sent] = [a for a in audit(ctx, 6) if a.direction == "cxone->salesforce" and a.to_value == "On_Break"]
            world.clock.advance(2)
            world.pick_sf(6, "Lunch")
            await world.ticks(runner, 2)
            await asyncio.to_thread(world.stack.salesforce.set_console, world.sf_user(6), True)

            assert runner.console is not None
            broker = runner.console.broker
            answers: list[CommandOutcome] = []

            async def answered() -> None:
                events = await broker.read_events(0, limit=100_000)
                answers[:] = [e for e in events if isinstance(e, CommandOutcome)
                              and e.command_id.startswith(f"{sent.command_id}.")]

            async with asyncio.timeout(DEADLINE * 3):
                while not answers or world.cx(6).code != "Lunch":
                    await answered()
                    await runner.tick()
                    await broker.wait_for_events(runner.console.source.cursor, timeout=0.5)
                    world.clock.advance(0.5)
            await world.ticks(runner, 3)
            assert world.sf(6) == "Lunch" and world.cx(6).code == "Lunch"
            assert answers and all((a.outcome, a.reason) == ("ignored", NOT_AS_EXPECTED) for a in answers)
            applied = world.stack.salesforce.consoles.applied_by_command
            assert not any(applied[key] for key in list(applied) if key.startswith(sent.command_id))
            # Whether the sync still awaited the command when the refusal came (then audited as such) or
            # had already learnt of Lunch by the poll (then the refusal is of a superseded write) is timing.
            refusals = [a for a in audit(ctx, 6) if CHANGED_SINCE in a.reason]
            assert all(a.command_id == sent.command_id and "Lunch" in a.reason for a in refusals)
        finally:
            await runner.close()
            await asyncio.to_thread(world.stack.salesforce.disconnect_consoles)
            await asyncio.to_thread(stop_embedded_gateways)


async def test_a_superseded_command_applied_late_is_written_over(world: World, console_ctx: Context) -> None:
    # CXone goes to Break and straight back to Available while agent 7's console is slow: the second
    # change finds Salesforce still on Available_for_Chats and writes nothing, then the console applies
    # the first command (On_Break) after all. Its push names that command; the sync learns what
    # Salesforce shows and writes Available_for_Chats back, instead of believing nothing changed.
    runner = await connected_runner(world, console_ctx)
    await tick_until(world, runner, lambda: all(world.sf(i) == "Available_for_Chats" for i in range(1, AGENTS + 1)),
                     "the first writes applied")
    await asyncio.to_thread(world.stack.salesforce.set_console, world.sf_user(7), True, 1500)
    world.pick_cx(7, "Unavailable", "Break")
    await world.ticks(runner, 1)
    [first] = [a for a in audit(console_ctx, 7) if a.outcome == "write" and a.to_value == "On_Break"]
    world.pick_cx(7, "Available")
    await world.ticks(runner, 1)
    consoles = world.stack.salesforce.consoles
    await tick_until(world, runner, lambda: consoles.applied_by_command.get(f"{first.command_id}.1", 0) == 1,
                     "the slow console applied the first command")
    await tick_until(world, runner, lambda: world.sf(7) == "Available_for_Chats", "Available_for_Chats written back")
    assert world.cx(7).name == "Available"
    echoes = [a for a in audit(console_ctx, 7) if a.outcome == "echo" and a.command_id == first.command_id]
    assert echoes and echoes[0].direction == "cxone->salesforce"
    await runner.close()


async def test_an_omni_logout_goes_to_the_console_as_a_logout_command_not_a_status() -> None:
    # Omni-Channel has no "Offline" status to set: a CXone logout carried over is the console's logout.
    from datetime import timedelta

    from presence_sync.engine import OMNI_OFFLINE, Side, Write, WriteOutcome
    from presence_sync.tasks.sync.apply import WriteTargets
    from presence_sync.tasks.sync.console_channel import ConsoleWriter

    class Recording:
        def __init__(self) -> None:
            self.commands: list[Any] = []

        async def submit(self, commands: list[Any]) -> None:
            self.commands += commands

    broker = Recording()
    user, status = "005000000000001AAA", "0N5000000000001AAA"
    writes = [
        Write(1, Side.SALESFORCE, OMNI_OFFLINE, "ps-1", None, "logout"),
        Write(2, Side.SALESFORCE, "On_Break", "ps-2", None, "break", applies_if_showing=(OMNI_OFFLINE, "Available")),
    ]
    targets = WriteTargets(sf_user_of={1: user, 2: user}, status_ids={"On_Break": status})

    results = await ConsoleWriter(broker, timedelta(seconds=5)).submit(writes, targets)  # type: ignore[arg-type]

    assert [r.outcome for r in results] == [WriteOutcome.OK, WriteOutcome.OK]
    assert [c.action for c in broker.commands] == ["logout", "set_status"]
    # The compare-and-set in the console's words: developer names, null for logged out of Omni-Channel.
    assert [c.if_showing for c in broker.commands] == [None, (None, "Available")]
    assert broker.commands[1].to_message()["if_showing"] == [None, "Available"]
    assert "if_showing" not in broker.commands[0].to_message()


async def test_a_pushed_change_ends_the_windows_wait_and_a_stop_request_hands_the_lease_over(
        world: World, console_ctx: Context) -> None:
    """A window ticking once an hour: a console's push is handled at once (the wait ends on it), not an
    hour later; `Wake.stop` ends the window after its tick, saved, with the lease free at once."""
    gateway = embedded_gateway(console_ctx.config.console)
    await asyncio.to_thread(world.stack.salesforce.connect_consoles, gateway.url, SECRET,
                            [world.sf_user(i) for i in range(1, AGENTS + 1)])
    wake = Wake()
    window = asyncio.create_task(run_window(console_ctx, seconds=7200, holder="hourly", interval_seconds=3600,
                                            clock=world.clock, wake=wake))
    async with asyncio.timeout(DEADLINE):
        # The first tick's writes are acknowledged and pushed back by the consoles: each push wakes the window.
        while not all(world.sf(i) == "Available_for_Chats" for i in range(1, AGENTS + 1)):
            assert not window.done(), window
            await asyncio.sleep(0.02)
        world.pick_sf(4, "On_Break")
        while world.cx(4).code != "Break":
            assert not window.done(), window
            await asyncio.sleep(0.02)
    wake.stop("SIGTERM")
    result = await asyncio.wait_for(window, DEADLINE)
    assert result.stopped_by == "SIGTERM" and "stopped by SIGTERM" in result.headline
    lease = console_ctx.store.leases.get(LEASE_NAME)
    assert lease is not None and lease.expires_at <= world.clock()
    assert console_ctx.store.leases.acquire(LEASE_NAME, "next", 15, world.clock()) is not None  # free at once
