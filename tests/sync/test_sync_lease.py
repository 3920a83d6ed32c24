"""The sync lease: one run syncs at a time, windows hand over without a gap, a taken-over run stops."""

from __future__ import annotations

import asyncio
from collections import Counter
import pytest

from presence_sync.models.store import LeaseLostError
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.runner import SyncRunner
from presence_sync.tasks.sync.status import SyncActivity, sync_activity
from presence_sync.tasks.sync.window import run_window
from tests.sync.support import AGENTS, World, agent_id


async def test_only_one_run_holds_the_lease_and_the_next_carries_on_where_it_stopped(
    world: World, ctx: Context
) -> None:
    first = await world.runner(ctx, holder="first")
    second = SyncRunner(ctx, holder="second", clock=world.clock)
    assert not await second.acquire()
    await world.settle(first)
    assert not await second.acquire()
    await first.close()  # hands the lease back at once

    assert await second.acquire()
    assert second.memory == first.memory  # the saved state, as the first run left it
    world.pick_cx(1, "Unavailable", "Break")
    await world.settle(second)
    assert world.writes() == Counter(salesforce=AGENTS + 1)  # the first window's writes, and one new
    assert world.sf(1) == "On_Break"


async def test_the_lease_goes_straight_to_the_waiting_window_and_is_never_free(world: World, ctx: Context) -> None:
    first = await world.runner(ctx, holder="first")
    second = SyncRunner(ctx, holder="second", clock=world.clock)
    gave_up = SyncRunner(ctx, holder="gave-up", clock=world.clock)
    assert not await second.acquire()  # registered as the next holder
    assert not await gave_up.acquire()  # just waits: "second" is next
    await gave_up.close()

    await first.close()

    assert sync_activity(ctx.store, world.clock()) == SyncActivity("second")  # handed over: running throughout
    assert await second.acquire()
    assert second.lease is not None and second.lease.fencing_token == 3  # first, the handover, this acquire
    await second.close()
    assert not sync_activity(ctx.store, world.clock()).running  # nobody waited: free, and said so at once


async def test_a_free_lease_with_a_registered_successor_counts_as_running(world: World, ctx: Context) -> None:
    first = await world.runner(ctx, holder="first")
    assert not await SyncRunner(ctx, holder="second", clock=world.clock).acquire()
    world.clock.advance(first.lease_ttl - 1)
    assert not await SyncRunner(ctx, holder="second", clock=world.clock).acquire()  # still waiting: renewed
    world.clock.advance(2)  # the first window died; the second takes over at its next tick

    activity = sync_activity(ctx.store, world.clock())
    assert (activity.holder, activity.last_holder, activity.successor, activity.running) == (None, "first", "second", True)
    world.clock.advance(first.lease_ttl)  # the second died too: its registration lapsed
    assert not sync_activity(ctx.store, world.clock()).running


async def test_a_run_whose_lease_was_taken_over_stops_without_saving(world: World, ctx: Context) -> None:
    first = await world.runner(ctx, holder="first")
    await world.settle(first)
    world.clock.advance(first.lease_ttl + 1)  # the first run stalled past its lease
    second = await world.runner(ctx, holder="second")
    world.pick_cx(1, "Unavailable", "Lunch")
    audit_rows = len(ctx.store.reports.audit_for(limit=10_000))

    with pytest.raises(LeaseLostError, match="taken over"):
        await first.tick()
    assert len(ctx.store.reports.audit_for(limit=10_000)) == audit_rows  # the stale run saved nothing
    assert world.sf(1) == "Available_for_Chats"  # ... and wrote nothing
    await world.settle(second)
    assert world.sf(1) == "Lunch"


async def test_consecutive_windows_hand_over_and_never_tick_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks: list[str] = []
    tick = SyncRunner.tick

    async def recorded(self: SyncRunner) -> None:
        ticks.append(self.holder)
        await tick(self)

    monkeypatch.setattr(SyncRunner, "tick", recorded)
    async with world.context() as ctx_a, world.context() as ctx_b:
        earlier = asyncio.create_task(
            run_window(ctx_a, seconds=0.6, holder="window-1", interval_seconds=0.1, clock=world.clock)
        )
        while not ticks:  # the next window is scheduled while this one runs
            await asyncio.sleep(0.01)
        second = await run_window(ctx_b, seconds=1.2, holder="window-2", interval_seconds=0.1, clock=world.clock)
        first = await earlier

    assert first.held_lease and second.held_lease
    assert set(ticks) == {"window-1", "window-2"}
    handover = ticks.index("window-2")
    assert set(ticks[:handover]) == {"window-1"} and set(ticks[handover:]) == {"window-2"}  # never interleaved
    assert world.writes() == Counter(salesforce=AGENTS)  # the second window wrote nothing twice
    assert all(world.sf(i) == "Available_for_Chats" for i in range(1, AGENTS + 1))



async def test_a_long_apply_keeps_the_lease_and_stops_when_another_run_took_it(
    world: World, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = await world.runner(ctx, holder="slow")
    await world.settle(runner)
    runner.lease_ttl = 0.3  # renewed every 0.1 s while writes are applied
    renewals: list[bool] = []
    renew = ctx.store.leases.renew

    def counted(*args: object) -> bool:
        renewals.append(renew(*args))  # type: ignore[arg-type]
        return renewals[-1]

    monkeypatch.setattr(ctx.store.leases, "renew", counted)
    world.pick_sf(1, "On_Break")
    world.faults(latency_ms=400)  # each CXone request takes 0.4 s: the write outlasts the lease
    await runner.tick()
    assert len(renewals) >= 3 and all(renewals)  # at the tick's start, then while the write was applied
    assert world.cx(1).key == "Unavailable:Break"

    answers = iter([True])  # renewed as the tick starts; taken over by another run during the write
    monkeypatch.setattr(ctx.store.leases, "renew", lambda *args: next(answers, False))
    world.pick_sf(2, "Lunch")
    with pytest.raises(LeaseLostError, match="taken over"):
        await runner.tick()
    assert not runner.held


async def test_the_next_window_reuses_the_agent_sessions_the_last_one_joined(world: World) -> None:
    async with world.context() as ctx:
        first = await world.runner(ctx, holder="window-1")
        await world.settle(first)
        world.pick_sf(1, "On_Break")
        await world.settle(first)
        await first.close()
    # Every linked agent's session was joined once, ahead of need (tasks/sync/sessions.py), and saved.
    joined = world.api_requests("cxone", "/agent-sessions/join")
    saved = ctx.store.sync.cxone_sessions()
    assert joined == len(saved) and agent_id(1) in saved and agent_id(2) in saved

    async with world.context() as ctx:  # a new flow run: new connectors, nothing cached in them
        second = await world.runner(ctx, holder="window-2")
        await world.settle(second)
        world.pick_sf(1, "Lunch")
        world.pick_sf(2, "Lunch")
        await world.settle(second)
        await second.close()
    assert world.cx(1).key == "Unavailable:Lunch" and world.cx(2).key == "Unavailable:Lunch"
    assert world.api_requests("cxone", "/agent-sessions/join") == joined  # none: every session was kept


async def test_a_session_that_ended_between_windows_is_joined_again(world: World) -> None:
    async with world.context() as ctx:
        first = await world.runner(ctx, holder="window-1")
        world.pick_sf(1, "On_Break")
        await world.settle(first)
        await first.close()
    world.stack.cxone.tenant.set_session(agent_id(1), False)  # the agent logs out and in again:
    world.stack.cxone.tenant.set_session(agent_id(1), True)  # a new session, the saved one has ended
    async with world.context() as ctx:
        second = await world.runner(ctx, holder="window-2")
        await world.settle(second)
        world.pick_sf(1, "Lunch")
        await world.settle(second)
        await second.close()
        assert ctx.store.sync.cxone_sessions()[agent_id(1)] == world.stack.cxone.tenant.session_of(agent_id(1))
    assert world.cx(1).key == "Unavailable:Lunch"
