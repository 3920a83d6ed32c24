"""A burst bigger than a tick can decide: decided a chunk at a time over several ticks, each chunk's
writes sent once it is saved; the polls' saved cursors wait until every agent they observed is
decided, so a window stopped halfway leaves nothing undecided behind (its successor reads it again)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from presence_sync.tasks.context import Context
from presence_sync.tasks.sync import runner as runner_module
from presence_sync.tasks.sync.runner import SyncRunner
from presence_sync.tasks.sync.sources import CXONE_CURSOR
from tests.sync.support import World, agent_id, onboarded_world

AGENTS = 30
CHUNK = 4
# Agents 10, 20 and 30 are on the Chat Team, whose rule maps Break elsewhere: voice agents only.
BURST = [i for i in range(1, 14) if i % 10]


@pytest.fixture
async def big_world(tmp_path: Path) -> World:
    return await onboarded_world(tmp_path, agents=AGENTS)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(runner_module, "TICK_CHUNK_AGENTS", CHUNK)
    yield


def on_break(world: World) -> list[int]:
    return [i for i in BURST if world.sf(i) == "On_Break"]


async def one_chunk_a_tick(world: World, ctx: Context, holder: str = "run-1") -> SyncRunner:
    """A settled runner whose every tick's interval is used up by its first chunk."""
    runner = await world.runner(ctx, holder=holder)
    await world.settle(runner)
    runner.interval_seconds = 1e-9
    return runner


def burst(world: World) -> None:
    for i in BURST:
        world.pick_cx(i, "Unavailable", "Break")


async def a_burst_under_way(world: World, ctx: Context) -> tuple[SyncRunner, str | None, int]:
    """A settled one-chunk-a-tick runner, then the burst: the runner, the CXone cursor saved before it,
    and the Salesforce writes made before it."""
    runner = await one_chunk_a_tick(world, ctx)
    saved_before = ctx.store.sync.get_cursor(CXONE_CURSOR)
    published = world.writes()["salesforce"]
    burst(world)
    return runner, saved_before, published


async def test_a_burst_is_decided_a_chunk_a_tick_and_the_cursor_saved_once_all_is_decided(
    big_world: World, small_chunks: None
) -> None:
    world = big_world
    async with world.context() as ctx:
        runner, saved_before, published = await a_burst_under_way(world, ctx)

        progress = []  # per tick: burst agents written so far, and whether the CXone cursor was saved
        for _ in range(12):
            await world.ticks(runner, 1)
            progress.append((len(on_break(world)), ctx.store.sync.get_cursor(CXONE_CURSOR) != saved_before))
            if on_break(world) == BURST:
                break
        written = [count for count, _ in progress]
        assert written[0] == CHUNK  # the first chunk's writes left at once
        assert all(0 <= later - earlier <= CHUNK for earlier, later in zip(written, written[1:]))
        assert written[-1] == len(BURST) and len(written) >= len(BURST) // CHUNK
        # The burst's poll is saved with the chunk that decides its last agent, not before.
        assert [saved for _, saved in progress] == [count == len(BURST) for count in written]

        await world.settle(runner)
        assert world.writes()["salesforce"] - published == len(BURST)  # one write per agent, none repeated
        await runner.close()


async def test_a_window_stopped_with_agents_undecided_leaves_them_to_the_next(big_world: World, small_chunks: None) -> None:
    world = big_world
    async with world.context() as ctx:
        first = await one_chunk_a_tick(world, ctx)
        published = world.writes()["salesforce"]
        burst(world)
        await world.ticks(first, 1)
        assert len(on_break(world)) == CHUNK
        await first.close()  # 8 agents polled but not decided: their poll's cursor was not saved

        second = await world.runner(ctx, holder="run-2")
        await world.settle(second)
        assert on_break(world) == BURST
        # The first chunk's agents were read again: recognised as already written, not written twice.
        assert world.writes()["salesforce"] - published == len(BURST)
        await second.close()


async def test_changes_made_just_before_and_after_a_burst_and_read_with_it_go_first(
    big_world: World, small_chunks: None
) -> None:
    world = big_world
    async with world.context() as ctx:
        runner = await one_chunk_a_tick(world, ctx)
        world.pick_cx(23, "Unavailable", "Lunch")  # before the burst
        world.clock.advance(0.5)
        burst(world)
        world.clock.advance(0.5)
        world.pick_cx(21, "Unavailable", "Lunch")  # after it; all three read by the same poll
        await world.ticks(runner, 1)
        assert world.sf(21) == "Lunch" and world.sf(23) == "Lunch"
        assert len(on_break(world)) == CHUNK - 2
        await world.settle(runner)
        assert on_break(world) == BURST
        await runner.close()


async def test_agents_left_over_are_decided_while_the_next_poll_is_out(big_world: World, small_chunks: None) -> None:
    world = big_world
    async with world.context() as ctx:
        runner, saved_before, published = await a_burst_under_way(world, ctx)
        await world.ticks(runner, 1)
        assert len(on_break(world)) == CHUNK  # the rest is left over for the next tick

        loop = asyncio.get_running_loop()
        real_fetch = runner._fetch
        left_when_answered: list[int] = []

        async def polls_answered_once_the_leftovers_are_decided(source: Any, now: datetime, early: Any) -> Any:
            deadline = loop.time() + 60
            while runner._backlog:  # decided meanwhile by the tick, or this poll never answers
                assert loop.time() < deadline, "the agents left over were not decided while the poll was out"
                await asyncio.sleep(0.01)
            left_when_answered.append(len(runner._backlog))
            return await real_fetch(source, now, early)

        runner._fetch = polls_answered_once_the_leftovers_are_decided  # type: ignore[method-assign]
        runner.interval_seconds = 120.0  # the interval does not end the tick's chunks
        await world.ticks(runner, 1)
        assert left_when_answered == [0, 0]  # each system's poll
        await world.settle(runner)
        assert on_break(world) == BURST
        assert world.writes()["salesforce"] - published == len(BURST)  # one write per agent, none repeated
        assert ctx.store.sync.get_cursor(CXONE_CURSOR) != saved_before  # the burst's poll saved once all decided
        await runner.close()


async def test_a_bursts_echoes_wait_behind_the_rest_of_the_burst(big_world: World, small_chunks: None) -> None:
    world = big_world
    async with world.context() as ctx:
        runner, _, published = await a_burst_under_way(world, ctx)
        # The first poll after the burst's millisecond: a poll in that millisecond would read the burst
        # again next tick (updatedSince includes it), and each duplicate would take a place in the chunk.
        world.clock.advance(0.01)
        written, echoes_seen = [], []
        for _ in range(len(BURST) // CHUNK):
            await world.ticks(runner, 1)
            written.append(len(on_break(world)))
            echoes_seen.append(len(runner._echoing))
        # Each tick's one chunk is the burst's next agents; the echoes of its first writes, read by the
        # later polls, wait behind them instead of taking the chunk.
        assert written == [CHUNK * (n + 1) for n in range(len(BURST) // CHUNK)]
        assert max(echoes_seen) >= CHUNK
        await world.settle(runner)
        assert on_break(world) == BURST and not runner._echoing and not runner._backlog
        assert world.writes()["salesforce"] - published == len(BURST)  # every echo recognised, none written back
        await runner.close()


async def test_one_systems_changes_are_written_while_the_other_systems_poll_is_out(big_world: World) -> None:
    world = big_world
    async with world.context() as ctx:
        runner = await world.runner(ctx)
        await world.settle(runner)
        published = world.writes()["salesforce"]
        loop = asyncio.get_running_loop()
        real_fetch = runner._fetch
        written_while_out: list[bool] = []

        async def salesforce_answers_once_cxone_changes_are_written(source: Any, now: datetime, early: Any) -> Any:
            if source.system == "Salesforce":  # e.g. the many pages of a burst in Omni
                deadline = loop.time() + 30
                while world.writes()["salesforce"] == published and loop.time() < deadline:
                    await asyncio.sleep(0.01)
                written_while_out.append(world.writes()["salesforce"] > published)
            return await real_fetch(source, now, early)

        runner._fetch = salesforce_answers_once_cxone_changes_are_written  # type: ignore[method-assign]
        burst(world)
        await world.ticks(runner, 1)
        assert written_while_out == [True]
        assert on_break(world) == BURST
        runner._fetch = real_fetch  # type: ignore[method-assign]
        await world.settle(runner)
        assert world.writes()["salesforce"] - published == len(BURST)
        await runner.close()


async def test_what_a_poll_brings_is_a_chunk_of_its_own_ahead_of_a_bursts_leftovers(
    big_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "TICK_CHUNK_AGENTS", 8)  # a quarter chunk: 2 agents
    world = big_world
    async with world.context() as ctx:
        runner = await one_chunk_a_tick(world, ctx)
        burst(world)
        world.clock.advance(0.01)  # the next polls come after the burst's millisecond (see above)
        await world.ticks(runner, 1)
        assert len(on_break(world)) == 8  # 4 left over

        world.pick_cx(21, "Unavailable", "Lunch")
        await world.ticks(runner, 1)
        # Agent 21's chunk is topped up to a quarter chunk with one leftover, not filled with all four.
        assert world.sf(21) == "Lunch"
        assert len(on_break(world)) == 9
        await world.settle(runner)
        assert on_break(world) == BURST
        await runner.close()


async def test_a_chunk_is_saved_while_the_next_is_decided_and_its_writes_leave_once_saved(
    big_world: World, small_chunks: None
) -> None:
    world = big_world
    async with world.context() as ctx:
        runner = await world.runner(ctx)
        await world.settle(runner)
        runner.interval_seconds = 120.0  # every chunk in one tick
        published = world.writes()["salesforce"]
        store_commit = ctx.store.sync.commit_tick
        first_chunk_saving, go_on = threading.Event(), threading.Event()

        def held_first_chunk_save(**rows: Any) -> None:  # in the save's thread
            if rows["agents"] and not first_chunk_saving.is_set():
                first_chunk_saving.set()
                assert go_on.wait(60), "the test never let the first chunk's save finish"
            store_commit(**rows)

        def decided() -> int:
            return sum(1 for i in BURST if (memory := runner.memory.get(agent_id(i))) is not None
                       and memory.salesforce_command is not None and memory.salesforce_command.target == "On_Break")

        ctx.store.sync.commit_tick = held_first_chunk_save  # type: ignore[method-assign]
        burst(world)
        tick = asyncio.ensure_future(runner.tick())
        try:
            deadline = asyncio.get_running_loop().time() + 60
            while decided() <= CHUNK:  # the next chunk is decided while the first is being saved
                assert asyncio.get_running_loop().time() < deadline and not tick.done(), (
                    f"only {decided()} agents decided while the first chunk was being saved")
                await asyncio.sleep(0.01)
            # The first chunk's save is under way and held: its thread may only start now on a busy machine.
            assert await asyncio.to_thread(first_chunk_saving.wait, 60), "the first chunk's save never started"
            assert decided() <= 2 * CHUNK  # one chunk ahead at most: each waits for the save before it
            assert world.writes()["salesforce"] == published  # nothing written before it is saved
        finally:
            go_on.set()
        await tick
        await world.settle(runner)
        assert on_break(world) == BURST
        assert world.writes()["salesforce"] - published == len(BURST)
        await runner.close()
