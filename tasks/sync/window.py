"""A sync window (ticks every interval for a bounded time) and a reconcile run, as plain async functions.

The `sync` and `reconcile` flows (and the CLI through them) run these. A window waits for the lease
(retrying every tick until the previous holder releases it or it expires), so consecutive windows
hand over without a gap and never sync the same agents at once; at the end it saves and releases.
Between ticks it waits on a `Wake`: a console's pushed change ends the wait at once (it is handled
now, not an interval later), and a stop request (SIGTERM, Ctrl+C: tasks/sync/signals.py) ends the
window after the tick in progress, saving and handing the lease over at once.

    wake = Wake()
    result = await run_window(ctx, seconds=600, holder="sync/flow-run-id", wake=wake)
    result = await run_window(ctx, seconds=600, holder="sync/flow-run-id", shard=Shard.parse("2/3"))
    report = await run_reconcile(ctx, holder="reconcile/flow-run-id")          # the unsharded sync's
    report = await reconcile_shards(ctx, holder="reconcile/flow-run-id")       # every shard syncing now

A shard (engine/shards.py) has its own lease and cursors: its window waits for its own lease only, and
for no run of another shard count to hold one (their agents overlap).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from presence_sync.engine.shards import ALL, Shard
from presence_sync.models.store import LeaseLostError
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.runner import (
    RECONCILE_DONE_CURSOR,
    RECONCILE_REPORT_CURSOR,
    RECONCILE_REQUEST_CURSOR,
    AnomalyHook,
    Clock,
    ReconcileReport,
    SyncRunner,
    utc_now,
)
from presence_sync.tasks.sync.shard_state import current_shards
from presence_sync.tasks.sync.summary import WindowStats

Sleep = Callable[[float], Awaitable[None]]
AfterTick = Callable[[SyncRunner], Awaitable[None]]
TickListener = Callable[["WindowProgress"], None]
RECONCILE_WAIT_SECONDS = 120.0

_tick_listeners: list[TickListener] = []


class Wake:
    """Ends a window's wait between ticks early: `poke()` (news to handle now) or `stop()` (end the window).

    Example:
        wake = Wake()
        wake.stop("SIGTERM")       # the window finishes its tick, saves, releases the lease and returns
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.stop_reason: str | None = None

    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None

    def poke(self) -> None:
        self._event.set()

    def stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Until poked or stopped, at most `seconds`; a poke that came during the tick ends it at once."""
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self._event.wait()
        except TimeoutError:
            pass
        if not self.stopping:
            self._event.clear()


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
    shard: Shard = ALL
    held_lease: bool = False
    ended: str = "the window is over"
    stopped_by: str | None = None  # a stop request (e.g. "SIGTERM") ended the window early
    other_holder: str | None = None  # who held the lease while this run waited for it
    other_count: bool = False  # runs of another shard count held leases (their agents overlap this shard's)
    stats: WindowStats = field(default_factory=WindowStats)
    reconciles: list[ReconcileReport] = field(default_factory=list)

    @property
    def headline(self) -> str:
        if not self.held_lease and self.stopped_by is not None:
            return f"stopped by {self.stopped_by} before this run got the sync lease (nothing was synced)"
        if not self.held_lease and self.other_count:
            return (
                f"did not sync: runs of another shard count ({self.other_holder}) held their leases for the whole "
                f"window; shard {self.shard} starts when they end (the shard count changed: deployments/README.md)"
            )
        if not self.held_lease:
            other = f" ({self.other_holder})" if self.other_holder else ""
            lease = "the sync lease" if not self.shard.sharded else f"shard {self.shard}'s sync lease"
            return f"did not sync: another run{other} held {lease} for the whole window"
        stats = self.stats
        writes = sum(stats.writes.values())
        seen = sum(stats.changes_seen.values())
        aligned = sum(stats.aligned.values())
        alignment = f" (initial alignment of {aligned} agents)" if aligned else ""
        shard = f"shard {self.shard}: " if self.shard.sharded else ""
        return f"{shard}{stats.ticks} ticks, {seen} changes seen, {writes} writes{alignment}; {self.ended}"


async def run_window(
    ctx: Context,
    *,
    seconds: float,
    holder: str,
    run_id: str | None = None,
    interval_seconds: float | None = None,
    shard: Shard = ALL,
    clock: Clock = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Sleep | None = None,
    on_anomaly: AnomalyHook | None = None,
    wake: Wake | None = None,
    after_tick: AfterTick | None = None,
) -> WindowResult:
    """Tick every `interval_seconds` (default: the config's) for `seconds`, holding the lease; then return.

    Ends early, without saving the tick in progress, when another run takes the lease over; and after
    the tick in progress, saving and releasing the lease, when `wake.stop()` is called. `sleep`
    replaces the pause between ticks (the bench paces ticks by its own acknowledgements).
    With `shard`, syncs that shard's agents under its own lease and cursors (default: every agent).
    `after_tick` is awaited after every round, held or not (the flow's alert events).
    """
    interval = interval_seconds or ctx.config.sync.interval_seconds
    wake = wake or Wake()
    pause = sleep or wake.wait
    runner = SyncRunner(
        ctx, holder=holder, run_id=run_id, shard=shard, clock=clock, on_anomaly=on_anomaly,
        interval_seconds=interval,
    )
    result = WindowResult(holder=holder, seconds=seconds, shard=shard, stats=runner.stats)
    started = monotonic()
    watching: asyncio.Task[None] | None = None
    try:
        while (elapsed := monotonic() - started) < seconds and not wake.stopping:
            tick_started = monotonic()
            if runner.held or await runner.acquire():
                result.held_lease = True
                if watching is None and runner.console is not None:
                    watching = asyncio.create_task(runner.console.source.watch(wake.poke))
                try:
                    await runner.tick()
                    reconciled = await runner.reconcile_if_requested()
                except LeaseLostError as error:
                    result.ended = f"stopped early: {error}"
                    break
                if reconciled is not None:
                    result.reconciles.append(reconciled)
            else:
                lease = await asyncio.to_thread(ctx.store.leases.get, runner.lease_name)
                result.other_count = bool(runner.blocked_by)
                result.other_holder = ", ".join(runner.blocked_by) or (None if lease is None else lease.holder)
            for listener in list(_tick_listeners):
                listener(WindowProgress(elapsed, seconds, runner.held, runner.stats))
            if after_tick is not None:
                await after_tick(runner)
            await pause(min(interval - (monotonic() - tick_started), seconds - (monotonic() - started)))
    finally:
        if watching is not None:
            watching.cancel()
        await runner.close()
    if wake.stop_reason is not None:
        result.stopped_by = wake.stop_reason
        result.ended = f"stopped by {wake.stop_reason}: the last tick was saved and the lease handed over"
    return result


class ReconcileTimeout(Exception):
    """The lease holder did not run the requested reconcile pass in time (the message says who holds it)."""


async def run_reconcile(
    ctx: Context,
    *,
    holder: str,
    run_id: str | None = None,
    wait_seconds: float = RECONCILE_WAIT_SECONDS,
    shard: Shard = ALL,
    clock: Clock = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    poll_seconds: float = 1.0,
) -> ReconcileReport:
    """One reconcile pass by whoever holds the lease: this run if it is free, else the running sync window.

    A running window is asked through the store (it checks every tick) and its report read back, so
    reconcile never syncs agents beside another run. With `shard`, that shard's agents, lease and cursors.
    """
    store = ctx.store
    request = f"{holder}:{uuid.uuid4().hex[:8]}"
    runner = SyncRunner(ctx, holder=holder, run_id=run_id, shard=shard, clock=clock)
    request_cursor, done_cursor, report_cursor = (
        shard.cursor(name) for name in (RECONCILE_REQUEST_CURSOR, RECONCILE_DONE_CURSOR, RECONCILE_REPORT_CURSOR)
    )
    started = monotonic()
    asked = False
    while True:
        if await runner.acquire(queue=False):
            try:
                return await runner.reconcile(request)
            finally:
                await runner.close()
        if not asked:
            await asyncio.to_thread(store.sync.commit_tick, cursors={request_cursor: request})
            asked = True
        if await asyncio.to_thread(store.sync.get_cursor, done_cursor) == request:
            text = await asyncio.to_thread(store.sync.get_cursor, report_cursor)
            if text is not None:  # saved in the same transaction as the done marker
                return ReconcileReport.from_json(text)
        if monotonic() - started >= wait_seconds:
            lease = await asyncio.to_thread(store.leases.get, runner.lease_name)
            who = ", ".join(runner.blocked_by) or (lease.holder if lease is not None else "another run")
            raise ReconcileTimeout(
                f"{who} holds the sync lease {runner.lease_name!r} and did not run the requested reconcile within {wait_seconds:g} s; "
                "check that sync run's logs (is it stuck?), or raise wait_seconds"
            )
        await sleep(poll_seconds)


async def reconcile_shards(
    ctx: Context,
    *,
    holder: str,
    run_id: str | None = None,
    wait_seconds: float = RECONCILE_WAIT_SECONDS,
    shard: Shard | None = None,
    **options: Any,
) -> ReconcileReport:
    """Reconcile one shard, or (`shard` None) every shard of the count syncing now, side by side.

    Which shards: those of the count whose runs hold leases now, else of the count that ticked last,
    else the unsharded sync (`current_shards`). Each shard's pass is `run_reconcile`: done by this run
    if the shard's lease is free, else by the shard's running window; the reports are merged.
    """
    shards = [shard] if shard is not None else await asyncio.to_thread(current_shards, ctx.store)
    reports = await asyncio.gather(*(
        run_reconcile(ctx, holder=holder, run_id=run_id, wait_seconds=wait_seconds, shard=one, **options)
        for one in shards
    ))
    return merge_reports(reports) if len(reports) > 1 else reports[0]


def merge_reports(reports: Sequence[ReconcileReport]) -> ReconcileReport:
    """One report of several shards' passes."""
    return ReconcileReport(
        agents_checked=sum(r.agents_checked for r in reports),
        drift_seen=sum(r.drift_seen for r in reports),
        repairs=[repair for r in reports for repair in r.repairs],
        held_by=", ".join(dict.fromkeys(r.held_by for r in reports)),
    )
