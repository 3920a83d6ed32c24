"""Reconcile: a full read of both systems heals what the incremental polls missed."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from presence_sync.engine import CxoneState, CxoneStateName
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.runner import RECONCILE_REQUEST_CURSOR, Repair
from presence_sync.tasks.sync.window import ReconcileTimeout, run_reconcile
from tests.sync.support import World, agent_id


async def lose_cxone_changes(ctx: Context) -> None:
    """Move the CXone cursor past what changed since: as if those polls' answers were lost."""
    page = await ctx.cxone.agent_states(updated_since=ctx.store.sync.get_cursor("cxone"))
    assert page.states, "the test should have changed something to lose"
    ctx.store.sync.commit_tick(cursors={"cxone": page.last_poll_time})


async def test_reconcile_repairs_drift_the_polls_missed_and_says_what_it_did(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    await runner.close()
    before = world.writes()
    world.pick_cx(1, "Unavailable", "Lunch")
    world.pick_cx(2, "Unavailable", "Break")
    await lose_cxone_changes(ctx)

    report = await run_reconcile(ctx, holder="reconcile-1", clock=world.clock)

    assert sorted(report.repairs, key=lambda r: r.agent_id) == [
        Repair(agent_id(1), "Salesforce", "Available_for_Chats", "Lunch", "publisher: Unavailable: Lunch -> Lunch", "ok"),
        Repair(agent_id(2), "Salesforce", "Available_for_Chats", "On_Break", "publisher: Unavailable: Break -> On_Break",
               "ok"),
    ]
    assert report.agents_checked == 8 and report.drift_seen == 2 and not report.failed
    assert (world.sf(1), world.sf(2)) == ("Lunch", "On_Break")
    assert world.writes() - before == Counter(salesforce=2)

    # The next sync window sees the echoes of reconcile's writes as echoes, and the lost changes as seen.
    window = await world.runner(ctx, holder="window-2")
    await world.settle(window)
    assert world.writes() - before == Counter(salesforce=2)
    assert ctx.store.reports.write_counts()["pending"] == 0


async def test_reconcile_with_nothing_to_repair_writes_nothing(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    await runner.close()
    before = world.writes()

    report = await run_reconcile(ctx, holder="reconcile-1", clock=world.clock)

    assert report.repairs == [] and report.drift_seen == 0
    assert world.writes() == before


async def test_while_a_window_syncs_reconcile_asks_it_and_reads_its_report(world: World, ctx: Context) -> None:
    window = await world.runner(ctx, holder="window")
    await world.settle(window)
    before = world.writes()
    world.pick_cx(3, "Unavailable", "Break")  # not polled yet: the reconcile pass sees it first

    asking = asyncio.create_task(run_reconcile(ctx, holder="reconcile-1", clock=world.clock, poll_seconds=0.01))
    while ctx.store.sync.get_cursor(RECONCILE_REQUEST_CURSOR) is None:
        await asyncio.sleep(0.01)
    done = await window.reconcile_if_requested()  # the window's loop asks this after every tick
    report = await asyncio.wait_for(asking, timeout=30)

    assert done is not None and report.held_by == "window"
    assert [(r.agent_id, r.target) for r in report.repairs] == [(agent_id(3), "On_Break")]
    assert world.sf(3) == "On_Break"
    assert await window.reconcile_if_requested() is None  # answered once
    await world.settle(window)  # the poll then reads the same change: already handled
    assert world.writes() - before == Counter(salesforce=1)


async def test_reconcile_gives_up_waiting_for_a_window_that_does_not_answer(world: World, ctx: Context) -> None:
    await world.runner(ctx, holder="stuck-window")
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(ReconcileTimeout, match="stuck-window holds the sync lease"):
        await run_reconcile(ctx, holder="reconcile-1", wait_seconds=5, clock=world.clock,
                            monotonic=lambda: now[0], sleep=sleep)


async def test_a_reconcile_sees_agents_logged_out_of_omni_as_such(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    await runner.close()
    world.pick_sf(4, None)  # logs out of Omni; then the spell poll misses it
    world.pick_cx(4, "Unavailable", "Break")
    await lose_cxone_changes(ctx)

    report = await run_reconcile(ctx, holder="reconcile-1", clock=world.clock)

    # CXone changed after the log-out: the rule puts Salesforce on On_Break (the applier logs the agent in).
    assert [(r.agent_id, r.target) for r in report.repairs] == [(agent_id(4), "On_Break")]
    assert world.cx(4) == CxoneState(CxoneStateName.UNAVAILABLE, "Break")
