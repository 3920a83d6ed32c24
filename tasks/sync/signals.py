"""SIGTERM and SIGINT as a stop request for a sync window: finish the tick, save, hand the lease over.

systemd, Kubernetes and a Prefect worker cancelling a run all stop a process with SIGTERM; Ctrl+C is
SIGINT. While the block runs, the first of either asks the window to stop (`Wake.stop`): it ends
after the tick in progress, saves, and releases its lease, so the next window takes over at once, and
the flow run ends Cancelled instead of Crashed. A second signal gets the previous handler (Prefect's
own, or Python's KeyboardInterrupt): a forced stop, as safe as kill -9 (the lease expires).

    wake = Wake()
    with stop_on_signals(wake):
        result = await run_window(ctx, seconds=600, holder=holder, wake=wake)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from presence_sync.tasks.sync.window import Wake

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(wake: Wake) -> Iterator[None]:
    """Within the block, SIGTERM/SIGINT call `wake.stop(<signal name>)` (main thread only; else a no-op).

    Installed with `signal.signal`, not the loop's `add_signal_handler`, so that leaving the block
    restores exactly the handler that was there before (Prefect's flow engine installs its own).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def on_signal(number: int, frame: FrameType | None) -> None:
        if wake.stopping:  # the second signal: stop now, the way the process would have without us
            _restore(previous)
            os.kill(os.getpid(), number)
            return
        loop.call_soon_threadsafe(_stop, wake, signal.Signals(number).name)

    for number in STOP_SIGNALS:
        previous[number] = signal.signal(number, on_signal)
    try:
        yield
    finally:
        _restore(previous)


def _stop(wake: Wake, name: str) -> None:
    # Logged from the event loop, not the signal handler, which may interrupt a logging call.
    logger.warning("presence-sync: %s: finishing this tick, then saving and handing the sync lease over "
                   "(send it again to stop at once)", name)
    wake.stop(name)


def _restore(previous: dict[int, Any]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler if handler is not None else signal.SIG_DFL)
