"""SIGTERM and SIGINT as a sync window's stop request (tasks/sync/signals.py), in this process."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from presence_sync.tasks.sync.signals import stop_on_signals
from presence_sync.tasks.sync.window import Wake


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
async def test_the_first_signal_asks_the_window_to_stop_and_the_second_gets_the_previous_handler(number: int) -> None:
    seen: list[int] = []
    before = signal.signal(number, lambda received, frame: seen.append(received))
    try:
        wake = Wake()
        with stop_on_signals(wake):
            os.kill(os.getpid(), number)
            await asyncio.wait_for(wake.wait(60), 60)  # ends as soon as the stop request arrives
            assert wake.stop_reason == signal.Signals(number).name and not seen
            os.kill(os.getpid(), number)  # again: stop at once, as the process would have without us
            await asyncio.sleep(0)
            assert seen == [number]
        os.kill(os.getpid(), number)  # outside the block: the previous handler again
        await asyncio.sleep(0)
        assert seen == [number, number]
    finally:
        signal.signal(number, before)


async def test_a_poke_ends_one_wait_and_a_stop_ends_every_later_one() -> None:
    wake = Wake()
    wake.poke()
    await asyncio.wait_for(wake.wait(60), 60)
    assert not wake.stopping
    wake.stop("SIGTERM")
    wake.stop("SIGINT")  # the first reason is kept
    await asyncio.wait_for(wake.wait(60), 60)
    await asyncio.wait_for(wake.wait(60), 60)
    assert wake.stop_reason == "SIGTERM"
