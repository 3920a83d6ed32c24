"""The scale bench's steady driver: every change it makes is one the watcher times."""

from __future__ import annotations

import asyncio
import random

from bench.scale import Steady, Timed


async def test_no_change_is_made_once_the_steady_phase_stops() -> None:
    steady = Steady(center=None, agents=[1, 2, 3], rate=0.01, rng=random.Random(0))  # type: ignore[arg-type]

    def change(agent_id: int) -> Timed:
        timed = Timed("cxone->salesforce", 0.0, lambda: True, False)
        steady.changes.append(timed)
        return timed

    steady.change = change  # type: ignore[method-assign]
    driver = asyncio.create_task(steady.drive())
    deadline = asyncio.get_running_loop().time() + 30
    while not steady.changes:  # the first change is due at once; the next one 100 s later
        assert asyncio.get_running_loop().time() < deadline, "the driver made no change"
        await asyncio.sleep(0.01)
    steady.stop.set()
    await asyncio.wait_for(driver, 30)  # it stops while waiting for the next change, not after it
    assert len(steady.changes) == 1  # none after the stop, which the watcher (already done) would miss
