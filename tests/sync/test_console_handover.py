"""The console channel across a sync window handover and a gateway restart (issue 9): nothing lost, nothing twice.

Window A hands the lease to window B while A's console commands are still out; the gateway stops while
commands wait in the broker and starts again on the same port, the emulated consoles reconnecting. The
emulator's consoles count what they applied per command id: every change must arrive, each exactly once
(a redelivery after a reconnect is acknowledged `ignored`, never applied again). Waits are for events.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

from presence_sync.connectors.console import ConsoleBroker
from presence_sync.connectors.console.postgres_broker import PostgresBroker
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.console_channel import engine_command_id, stop_embedded_gateways
from presence_sync.tasks.sync.runner import SyncRunner
from tests.console.support import SECRET, postgres_database, serve_gateway, settings
from tests.sync.support import AGENTS, World
from tests.sync.test_console_channel import tick_until

DEADLINE = 60.0
ACK_TIMEOUT = 30.0  # long enough that no command expires on a busy machine: these tests are about handover


def channel_config(data: dict[str, Any], broker_url: str | None) -> None:
    data["console"] = {"channel": "gateway", "gateway_secret": SECRET.get_secret_value(),
                       "ack_timeout_seconds": ACK_TIMEOUT, **({"broker_url": broker_url} if broker_url else {})}


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with postgres_database() as url:
        yield url


@asynccontextmanager
async def consoles_connected(world: World, url: str, broker: ConsoleBroker) -> AsyncIterator[None]:
    users = [world.sf_user(i) for i in range(1, AGENTS + 1)]
    await asyncio.to_thread(world.stack.salesforce.connect_consoles, url, SECRET.get_secret_value(), users)
    try:
        await connected(broker, AGENTS)
        yield
    finally:
        await asyncio.to_thread(world.stack.salesforce.disconnect_consoles)
        await asyncio.to_thread(stop_embedded_gateways)


async def connected(broker: ConsoleBroker, count: int) -> None:
    async with asyncio.timeout(DEADLINE):
        while len(await broker.connected_consoles()) < count:
            await asyncio.sleep(0.05)


def everyone(world: World, status: str) -> bool:
    return all(world.sf(i) == status for i in range(1, AGENTS + 1))


def applied_per_engine_command(world: World) -> Counter[str]:
    """How often the consoles applied each of the sync's writes, all its attempts together."""
    applied: Counter[str] = Counter()
    for broker_id, times in world.stack.salesforce.consoles.applied_by_command.items():
        applied[engine_command_id(broker_id)] += times
    return applied


@pytest.mark.parametrize("broker_kind", ["in-process", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_a_window_handover_loses_no_console_command_and_applies_none_twice(
    world: World, broker_kind: str
) -> None:
    async with AsyncExitStack() as stack:
        gateway_url: str | None = None
        broker_url = None
        if broker_kind == "postgresql":  # the gateway runs apart, on the PostgreSQL broker
            broker_url = await stack.enter_async_context(postgres_database())
            gateway_broker = await PostgresBroker.open(broker_url)
            stack.push_async_callback(gateway_broker.close)
            gateway_url = (await stack.enter_async_context(serve_gateway(settings(), gateway_broker))).url
        path = world.variant(lambda data: channel_config(data, broker_url), "handover.yaml")
        ctx_a = await stack.enter_async_context(world.context(path))
        ctx_b = await stack.enter_async_context(world.context(path))
        window_a = await world.runner(ctx_a, holder="window-a")
        assert window_a.console is not None
        await stack.enter_async_context(
            consoles_connected(world, gateway_url or str(window_a.console.gateway_url), window_a.console.broker))
        await tick_until(world, window_a, lambda: everyone(world, "Available_for_Chats"), "the first writes applied")

        window_b = SyncRunner(ctx_b, holder="window-b", clock=world.clock)
        assert not await window_b.acquire()  # waiting: the next holder
        for i in range(1, AGENTS + 1):
            world.pick_cx(i, "Unavailable", "Break")
        await window_a.tick()  # the commands go out...
        await window_a.close()  # ...and window A ends before their outcomes came back

        assert await window_b.acquire()  # handed over: B reads the outcomes after A's saved cursor
        await tick_until(world, window_b, lambda: everyone(world, "On_Break"), "every Break carried by window B")
        for i in (1, 2):
            world.pick_cx(i, "Unavailable", "Lunch")
        await tick_until(world, window_b, lambda: world.sf(1) == world.sf(2) == "Lunch", "window B's own writes")
        await world.ticks(window_b, 3)  # late outcomes and pushes folded in: no write is issued again
        await window_b.close()

    applied = applied_per_engine_command(world)
    assert set(applied.values()) == {1}, {command: n for command, n in applied.items() if n != 1}
    assert len(applied) == 2 * AGENTS + 2  # the alignment, the Break of every agent, two Lunches


@pytest.mark.postgres
async def test_a_gateway_restart_loses_no_console_command_and_applies_none_twice(world: World, pg_url: str) -> None:
    path = world.variant(lambda data: channel_config(data, pg_url), "restart.yaml")
    async with AsyncExitStack() as stack:
        first_broker = await PostgresBroker.open(pg_url)
        stack.push_async_callback(first_broker.close)
        first = await stack.enter_async_context(serve_gateway(settings(), first_broker))
        port = int(first.url.rsplit(":", 1)[1].split("/", 1)[0])
        ctx = await stack.enter_async_context(world.context(path))
        window = await world.runner(ctx, holder="window")
        assert window.console is not None
        await stack.enter_async_context(consoles_connected(world, first.url, window.console.broker))
        await tick_until(world, window, lambda: everyone(world, "Available_for_Chats"), "the first writes applied")
        received = sum(world.stack.salesforce.consoles.received_by_command.values())

        first.server.should_exit = True  # the gateway process stops: every console drops and retries
        await gone(window.console.broker)
        for i in range(1, AGENTS + 1):
            world.pick_cx(i, "Unavailable", "Break")
        await window.tick()  # the commands wait in the broker, nobody to deliver them
        assert sum(world.stack.salesforce.consoles.received_by_command.values()) == received

        second_broker = await PostgresBroker.open(pg_url)  # a new process: its own broker on the same database
        stack.push_async_callback(second_broker.close)
        await stack.enter_async_context(serve_gateway(settings(), second_broker, port=port))
        await connected(window.console.broker, AGENTS)  # the consoles came back by themselves
        await tick_until(world, window, lambda: everyone(world, "On_Break"), "every Break after the restart", limit=200)
        await world.ticks(window, 3)
        await window.close()

    applied = applied_per_engine_command(world)
    assert set(applied.values()) == {1}, {command: n for command, n in applied.items() if n != 1}
    assert len(applied) == 2 * AGENTS


async def gone(broker: ConsoleBroker) -> None:
    """Until the broker lists no console (a stopped gateway closes its connections' rows)."""
    async with asyncio.timeout(DEADLINE):
        while await broker.connected_consoles():
            await asyncio.sleep(0.05)


