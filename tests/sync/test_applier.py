"""The background Applier: one write in flight per agent, later decisions wait or supersede, units have deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from presence_sync.engine import Side, Write, WriteOutcome, WriteResult
from presence_sync.tasks.sync.apply import Applier


def write(agent_id: int, command: str) -> Write:
    return Write(agent_id, Side.SALESFORCE, "On_Break", command, None, "test")


class Gate:
    """An apply function that holds each unit until the test lets it through, recording what it was given."""

    def __init__(self) -> None:
        self.started: list[list[str]] = []
        self.release: dict[str, asyncio.Event] = {}

    async def __call__(self, batch: Sequence[Write]) -> list[WriteResult]:
        self.started.append([w.command_id for w in batch])
        for w in batch:
            await self.release.setdefault(w.command_id, asyncio.Event()).wait()
        return [WriteResult(w.agent_id, w.command_id, WriteOutcome.OK) for w in batch]

    def open(self, command: str) -> None:
        self.release.setdefault(command, asyncio.Event()).set()


async def until(condition, limit: int = 1000) -> None:  # type: ignore[no-untyped-def]
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met")


async def test_one_write_in_flight_per_agent_and_a_later_one_supersedes_a_waiting_one() -> None:
    gate = Gate()
    applier = Applier("Salesforce", gate, batch_size=10)
    applier.submit([write(1, "a1"), write(2, "b1")])
    await until(lambda: gate.started == [["a1", "b1"]])
    applier.submit([write(1, "a2")])
    applier.submit([write(1, "a3")])  # a2 never left: a3 supersedes it
    await until(lambda: any(result.command_id == "a2" for _, result in applier._done))
    assert gate.started == [["a1", "b1"]]  # agent 1 waits for a1
    gate.open("a1")
    gate.open("b1")
    await until(lambda: gate.started == [["a1", "b1"], ["a3"]])
    gate.open("a3")
    await applier.wait(30.0)
    outcomes = {result.command_id: result.outcome for _, result in applier.collect()}
    assert outcomes == {"a1": WriteOutcome.OK, "b1": WriteOutcome.OK, "a3": WriteOutcome.OK, "a2": WriteOutcome.TRANSIENT}
    assert applier.in_flight == 0
    await applier.aclose()


async def test_a_unit_past_its_deadline_comes_back_transient_and_others_go_on() -> None:
    gate = Gate()
    applier = Applier("CXone", gate, batch_size=1, deadline_seconds=0.01)
    gate.open("fast")
    applier.submit([write(1, "stuck"), write(2, "fast")])
    await applier.wait(30.0)
    results = {result.command_id: result for _, result in applier.collect()}
    assert results["fast"].outcome is WriteOutcome.OK
    assert results["stuck"].outcome is WriteOutcome.TRANSIENT and "deadline" in results["stuck"].reason
    await applier.aclose()


async def test_waiting_for_some_commands_does_not_wait_for_others() -> None:
    gate = Gate()
    applier = Applier("CXone", gate, batch_size=1)
    applier.submit([write(1, "stuck")])
    gate.open("mine")
    applier.submit([write(2, "mine")])
    await applier.wait(30.0, {"mine"})
    assert [result.command_id for _, result in applier.collect()] == ["mine"]
    assert applier.in_flight == 1
    await applier.aclose()
    assert applier.in_flight == 0


async def test_a_retry_of_a_write_still_being_applied_is_not_sent_again() -> None:
    gate = Gate()
    applier = Applier("CXone", gate, batch_size=1)
    applier.submit([write(1, "a1")])
    await until(lambda: gate.started == [["a1"]])
    applier.submit([write(1, "a1")])  # the engine's retry, its echo late while a1 waited its turn
    gate.open("a1")
    await applier.wait(30.0)
    assert gate.started == [["a1"]]
    assert [result.command_id for _, result in applier.collect()] == ["a1"]
    await applier.aclose()


async def test_a_retry_of_a_write_applied_since_the_last_collect_is_not_sent_again() -> None:
    gate = Gate()
    applier = Applier("CXone", gate, batch_size=1)
    applier.submit([write(1, "a1")])
    gate.open("a1")
    await applier.wait(30.0)
    applier.submit([write(1, "a1")])  # the retry, decided before the tick collected a1's result
    await applier.wait(30.0)
    assert gate.started == [["a1"]]
    assert [result.command_id for _, result in applier.collect()] == ["a1"]
    applier.submit([write(1, "a1")])  # once collected, the engine knows: a retry now is a real one
    await until(lambda: gate.started == [["a1"], ["a1"]])
    await applier.aclose()


async def test_a_later_submission_goes_ahead_of_the_rest_of_a_burst_within_one_bound() -> None:
    # A burst of ten, two at a time; a person's change submitted by a later tick takes the next free
    # slot instead of waiting behind the eight burst writes still queued.
    gate = Gate()
    applier = Applier("CXone", gate, batch_size=1, concurrency=2)
    applier.submit([write(n, f"burst{n}") for n in range(10)])
    await until(lambda: gate.started == [["burst0"], ["burst1"]])
    applier.submit([write(99, "steady")])
    gate.open("burst0")
    await until(lambda: len(gate.started) == 3)
    assert gate.started[2] == ["steady"]
    for n in range(10):
        gate.open(f"burst{n}")
    gate.open("steady")
    await applier.wait(30.0)
    started = [batch[0] for batch in gate.started]
    assert started[3:] == [f"burst{n}" for n in range(2, 10)]  # the burst keeps its own order
    assert len(applier.collect()) == 11 and applier._submitted_in == {}
    await applier.aclose()


async def test_a_bursts_remainder_handed_over_later_keeps_the_rank_of_the_poll_that_brought_it() -> None:
    # The sync decides a burst polled at tick 1 over several ticks; the change polled at tick 2 is
    # handed over before the burst's last part, and still goes first.
    gate = Gate()
    applier = Applier("CXone", gate, batch_size=1, concurrency=1)
    applier.submit([write(n, f"burst{n}") for n in range(3)], {n: 1 for n in range(3)})
    await until(lambda: gate.started == [["burst0"]])
    applier.submit([write(99, "steady")], {99: 2})
    applier.submit([write(n, f"burst{n}") for n in range(3, 6)], {n: 1 for n in range(3, 6)})
    for name in ["burst0", "steady", *(f"burst{n}" for n in range(1, 6))]:
        gate.open(name)
    await applier.wait(30.0)
    assert [batch[0] for batch in gate.started] == ["burst0", "steady", *(f"burst{n}" for n in range(1, 6))]
    await applier.aclose()


async def test_changes_made_just_before_and_after_a_burst_both_go_ahead_of_its_middle() -> None:
    # One slot. A burst of changes made at 10 s; one made at 9 s and one at 11 s, read by the same poll
    # and handed over after it. Each is alone in its moment: both go before the burst's rest, the
    # earlier first.
    gate = Gate()
    applier = Applier("CXone", gate, batch_size=1, concurrency=1)
    applier.submit([write(n, f"burst{n}") for n in range(6)], {n: 10.0 for n in range(6)})
    await until(lambda: gate.started == [["burst0"]])
    applier.submit([write(98, "before"), write(99, "after")], {98: 9.0, 99: 11.0})
    for name in ["burst0", "before", "after", *(f"burst{n}" for n in range(1, 6))]:
        gate.open(name)
    await applier.wait(30.0)
    assert [batch[0] for batch in gate.started] == ["burst0", "before", "after", *(f"burst{n}" for n in range(1, 6))]
    await applier.aclose()


async def test_a_crowd_waits_behind_lone_changes_but_gets_every_eighth_slot() -> None:
    """Lone changes (one a moment) keep coming while a crowd of forty waits: they go first, and every
    OLDEST_EVERY-th freed slot still goes to the crowd's oldest, so it is never starved."""
    from presence_sync.tasks.sync.apply import OLDEST_EVERY, CrowdsLast

    gate, order = CrowdsLast(1), []
    await gate.acquire(0.0)  # the one slot, held: everyone else waits

    async def one(name: str, rank: float) -> None:
        await gate.acquire(rank)
        order.append(name)
        gate.release()

    crowd = [asyncio.ensure_future(one(f"crowd{n}", 10.0)) for n in range(40)]
    lone = [asyncio.ensure_future(one(f"lone{n}", 10.5 + n)) for n in range(20)]
    before = asyncio.ensure_future(one("before", 9.0))
    await until(lambda: gate._waiting == 61)
    gate.release()
    await asyncio.gather(*crowd, *lone, before)
    assert order[0] == "before"  # alone, and the earliest moment
    # The crowd's slots: every OLDEST_EVERY-th grant, as long as lone changes wait; then the rest in order.
    crowd_at = [i for i, name in enumerate(order) if name.startswith("crowd")]
    assert crowd_at[: 20 // (OLDEST_EVERY - 1)] == [OLDEST_EVERY * (k + 1) - 1 for k in range(20 // (OLDEST_EVERY - 1))]
    assert [name for name in order if name.startswith("crowd")] == [f"crowd{n}" for n in range(40)]
    assert [name for name in order if name.startswith("lone")] == [f"lone{n}" for n in range(20)]
    assert order.index("lone19") < crowd_at[4]


async def test_the_bound_never_exceeds_its_slots_and_survives_cancelled_waiters() -> None:
    from presence_sync.tasks.sync.apply import CrowdsLast

    bound, holding, most = CrowdsLast(2), 0, 0
    release = asyncio.Event()

    async def hold(submission: int) -> None:
        nonlocal holding, most
        await bound.acquire(submission)
        try:
            holding += 1
            most = max(most, holding)
            await release.wait()
        finally:
            holding -= 1
            bound.release()

    tasks = [asyncio.ensure_future(hold(n % 3)) for n in range(12)]
    await until(lambda: holding == 2)
    tasks[5].cancel()
    tasks[7].cancel()
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert most == 2 and holding == 0
    assert sum(isinstance(r, asyncio.CancelledError) for r in results) == 2
    await bound.acquire(0)  # both slots came back
    await bound.acquire(0)


async def test_the_least_crowded_moment_is_found_as_a_scan_of_every_moment_would() -> None:
    """`CrowdsLast` keeps its moments' counts in a heap; whatever waiters come, are granted or give up,
    it grants in the order that comparing every moment's count at each slot gives."""
    import random

    from presence_sync.tasks.sync.apply import CrowdsLast

    class Scanning(CrowdsLast):
        def _least_crowded(self) -> int:
            return min(self._waiting_in, key=lambda m: (self._waiting_in[m], m))

    async def grants(gate: CrowdsLast, seed: int) -> list[int]:
        draw, order, held, got = random.Random(seed), [], [], set()
        tasks: list[asyncio.Future[None]] = []

        async def one(n: int, rank: float) -> None:
            await gate.acquire(rank)
            got.add(n)
            order.append(n)
            done = asyncio.Event()
            held.append(done)
            await done.wait()
            gate.release()

        for _ in range(300):
            roll = draw.random()
            if roll < 0.5:
                rank = draw.choice([1.0, 1.05, 2.0, 3.3, 3.31, draw.random() * 10])
                tasks.append(asyncio.ensure_future(one(len(tasks), rank)))
            elif roll < 0.6 and tasks:
                n = draw.randrange(len(tasks))
                if n not in got:
                    tasks[n].cancel()  # gave up waiting (a write's deadline)
            elif held:
                held.pop(draw.randrange(len(held))).set()
            for _ in range(3):
                await asyncio.sleep(0)
        async with asyncio.timeout(60):  # a slot lost would leave a waiter waiting for ever
            while held or not all(task.done() for task in tasks):
                while held:
                    held.pop().set()
                await asyncio.sleep(0)
        return order

    for seed in range(30):
        assert await grants(CrowdsLast(3), seed) == await grants(Scanning(3), seed)
