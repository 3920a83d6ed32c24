"""A sync window (ticks every interval for a bounded time) and a reconcile run, as plain async functions.

The `sync` and `reconcile` flows (and the CLI through them) run these. A window waits for the lease
(retrying every tick until the previous holder releases it or it expires), so consecutive windows
hand over without a gap and never sync the same agents at once; at the end it saves and releases.

    result = await run_window(ctx, seconds=600, holder="sync/flow-run-id")
    report = await run_reconcile(ctx, holder="reconcile/flow-run-id")
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from presence_sync.models.store import LeaseLostError
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.runner import (
    LEASE_NAME,
    RECONCILE_DONE_CURSOR,
    RECONCILE_REPORT_CURSOR,
    RECONCILE_REQUEST_CURSOR,
    AnomalyHook,
    Clock,
    ReconcileReport,
    SyncRunner,
    utc_now,
)
from presence_sync.tasks.sync.summary import WindowStats

Sleep = Callable[[float], Awaitable[None]]
AfterTick = Callable[[SyncRunner], Awaitable[None]]
TickListener = Callable[["WindowProgress"], None]
RECONCILE_WAIT_SECONDS = 120.0

_tick_listeners: list[TickListener] = []


@dataclass(frozen=True)
class WindowProgress:
    """Where a running window is, for a progress display."""

    elapsed: float
    length: float
    holding: bool
    stats: WindowStats


@contextmanager
def watch_ticks(listener: TickListener) -> Iterator[None]:
    """Call `listener` after every tick of any window run inside the block (the CLI's progress line)."""
    _tick_listeners.append(listener)
    try:
        yield
    finally:
        _tick_listeners.remove(listener)


@dataclass
class WindowResult:
    """How a window went."""

    holder: str
    seconds: float
    held_lease: bool = False
    ended: str = "the window is over"
    other_holder: str | None = None  # who held the lease while this run waited for it
    stats: WindowStats = field(default_factory=WindowStats)
    reconciles: list[ReconcileReport] = field(default_factory=list)

    @property
    def headline(self) -> str:
        if not self.held_lease:
            other = f" ({self.other_holder})" if self.other_holder else ""
            return f"did not sync: another run{other} held the sync lease for the whole window"
        stats = self.stats
        writes = sum(stats.writes.values())
        seen = sum(stats.changes_seen.values())
        aligned = sum(stats.aligned.values())
        alignment = f" (initial alignment of {aligned} agents)" if aligned else ""
        return f"{stats.ticks} ticks, {seen} changes seen, {writes} writes{alignment}; {self.ended}"


async def run_window(
    ctx: Context,
    *,
    seconds: float,
    holder: str,
    run_id: str | None = None,
    interval_seconds: float | None = None,
    lease_name: str = LEASE_NAME,
    clock: Clock = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    on_anomaly: AnomalyHook | None = None,
    after_tick: AfterTick | None = None,
) -> WindowResult:
    """Tick every `interval_seconds` (default: the config's) for `seconds`, holding the lease; then return.

    Ends early, without saving the tick in progress, when another run takes the lease over.
    `after_tick` is awaited after every round, held or not (the flow's alert events).
    """
    interval = interval_seconds or ctx.config.sync.interval_seconds
    runner = SyncRunner(
        ctx, holder=holder, run_id=run_id, lease_name=lease_name, clock=clock, on_anomaly=on_anomaly,
        interval_seconds=interval,
    )
    result = WindowResult(holder=holder, seconds=seconds, stats=runner.stats)
    started = monotonic()
    try:
        while (elapsed := monotonic() - started) < seconds:
            tick_started = monotonic()
            if runner.held or await runner.acquire():
                result.held_lease = True
                try:
                    await runner.tick()
                    reconciled = await runner.reconcile_if_requested()
                except LeaseLostError as error:
                    result.ended = f"stopped early: {error}"
                    break
                if reconciled is not None:
                    result.reconciles.append(reconciled)
            else:
                lease = await asyncio.to_thread(ctx.store.leases.get, lease_name)
                result.other_holder = None if lease is None else lease.holder
            for listener in list(_tick_listeners):
                listener(WindowProgress(elapsed, seconds, runner.held, runner.stats))
            if after_tick is not None:
                await after_tick(runner)
            await sleep(max(0.0, min(interval - (monotonic() - tick_started), seconds - (monotonic() - started))))
    finally:
        await runner.close()
    return result


class ReconcileTimeout(Exception):
    """The lease holder did not run the requested reconcile pass in time (the message says who holds it)."""


async def run_reconcile(
    ctx: Context,
    *,
    holder: str,
    run_id: str | None = None,
    wait_seconds: float = RECONCILE_WAIT_SECONDS,
    lease_name: str = LEASE_NAME,
    clock: Clock = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    poll_seconds: float = 1.0,
) -> ReconcileReport:
    """One reconcile pass by whoever holds the lease: this run if it is free, else the running sync window.

    A running window is asked through the store (it checks every tick) and its report read back, so
    reconcile never syncs agents beside another run.
    """
    store = ctx.store
    request = f"{holder}:{uuid.uuid4().hex[:8]}"
    runner = SyncRunner(ctx, holder=holder, run_id=run_id, lease_name=lease_name, clock=clock)
    started = monotonic()
    asked = False
    while True:
        if await runner.acquire():
            try:
                return await runner.reconcile(request)
            finally:
                await runner.close()
        if not asked:
            await asyncio.to_thread(store.sync.commit_tick, cursors={RECONCILE_REQUEST_CURSOR: request})
            asked = True
        if await asyncio.to_thread(store.sync.get_cursor, RECONCILE_DONE_CURSOR) == request:
            text = await asyncio.to_thread(store.sync.get_cursor, RECONCILE_REPORT_CURSOR)
            if text is not None:  # saved in the same transaction as the done marker
                return ReconcileReport.from_json(text)
        if monotonic() - started >= wait_seconds:
            lease = await asyncio.to_thread(store.leases.get, lease_name)
            who = lease.holder if lease is not None else "another run"
            raise ReconcileTimeout(
                f"{who} holds the sync lease and did not run the requested reconcile within {wait_seconds:g} s; "
                "check that sync run's logs (is it stuck?), or raise wait_seconds"
            )
        await sleep(poll_seconds)
