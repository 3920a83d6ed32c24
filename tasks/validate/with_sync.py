"""Validation with a sync window of its own, for when no sync run holds the lease (`validate --with-sync`).

An admin following the README validates right after onboarding, before any sync deployment runs; the
hops then have nothing to carry them. With `with_sync`, a sync window runs beside the validation in
the same process and ends with it. When another run already holds the lease the window just waits
(as any second window does) and the running sync carries the hops.

    async with open_context("contact-center.yaml") as ctx:
        report = await validate_with_sync(ctx, "agent7@example.com", timeout_seconds=20)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.status import sync_activity
from presence_sync.tasks.sync.window import run_window
from presence_sync.tasks.validate.report import ValidationReport
from presence_sync.tasks.validate.run import POLL_SECONDS, validate_agent
from presence_sync.tasks.validate.waiting import wait_for

# The window outlives any validation; it is stopped as soon as the validation ends.
_WINDOW_SECONDS = 24 * 3600.0
# How long the window may take to hold the lease: its first tick loads every agent's state.
LEASE_WAIT_SECONDS = 60.0


async def validate_with_sync(ctx: Context, agent: str, *, poll_seconds: float = POLL_SECONDS, **options: Any) -> ValidationReport:
    """`validate_agent` with a sync window of this process carrying the hops (see the module docstring)."""
    holder = f"validate-with-sync-{uuid.uuid4().hex[:8]}"
    window = asyncio.create_task(run_window(ctx, seconds=_WINDOW_SECONDS, holder=holder))
    try:
        async def syncing() -> bool:
            if window.done():
                return True  # it ended early: the validation's own check names why nothing syncs
            return (await asyncio.to_thread(sync_activity, ctx.store)).running

        await wait_for(syncing, LEASE_WAIT_SECONDS, poll_seconds)
        return await validate_agent(ctx, agent, poll_seconds=poll_seconds, **options)
    finally:
        # Stopping a window mid-tick is safe (the runner saves before it writes); its lease is released.
        window.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await window
