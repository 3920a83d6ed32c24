"""SIGTERM and SIGINT as a stop request for sync windows: finish the tick, save, hand the lease over.

systemd, Kubernetes and a Prefect worker cancelling a run all stop a process with SIGTERM; Ctrl+C is
SIGINT. While a window runs inside `stop_on_signals`, the first of either asks it to stop (`Wake.stop`):
it ends after the tick in progress, saves, and releases its lease, so the next window takes over at
once, and the flow run ends Cancelled instead of Crashed. A second signal gets the handler that was
there before (Prefect's own, or Python's KeyboardInterrupt): a forced stop, as safe as kill -9 (the
lease expires). Windows that overlap in one process (the demo's) share the handlers; all are stopped.

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

_windows: list[tuple[asyncio.AbstractEventLoop, Wake]] = []  # the windows inside the block, in this process
_previous: dict[int, Any] = {}  # the handlers before the first of them entered


@contextlib.contextmanager
def stop_on_signals(wake: Wake) -> Iterator[None]:
    """Within the block, SIGTERM/SIGINT call `wake.stop(<signal name>)` (main thread only; else a no-op).

    Installed with `signal.signal`, not the loop's `add_signal_handler`, so that leaving the block
    restores exactly the handler that was there before (Prefect's flow engine installs its own).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    entry = (asyncio.get_running_loop(), wake)
    if not _windows:
        for number in STOP_SIGNALS:
            _previous[number] = signal.signal(number, _on_signal)
    _windows.append(entry)
    try:
        yield
    finally:
        _windows.remove(entry)
        if not _windows:
            _restore()


def _on_signal(number: int, frame: FrameType | None) -> None:
    if any(wake.stopping for _, wake in _windows):  # the second signal: stop now, as without us
        _restore()
        os.kill(os.getpid(), number)
        return
    for loop, wake in list(_windows):
        loop.call_soon_threadsafe(_stop, wake, signal.Signals(number).name)


def _stop(wake: Wake, name: str) -> None:
    # Logged from the event loop, not the signal handler, which may interrupt a logging call.
    logger.warning("presence-sync: %s: finishing this tick, then saving and handing the sync lease over "
                   "(send it again to stop at once)", name)
    wake.stop(name)


def _restore() -> None:
    for number, handler in list(_previous.items()):
        signal.signal(number, handler if handler is not None else signal.SIG_DFL)
    _previous.clear()
