"""Waiting for a condition, with an early way out, and whether a sync run holds the lease.

    waited = await wait_for(arrived, timeout=20, poll=0.25, give_up=hopeless)
    waited.seconds          # until `arrived()` held; None on timeout or when `give_up()` named a cause
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from presence_sync.models.store import Store
from presence_sync.tasks.sync.status import SyncActivity, sync_activity
from presence_sync.tasks.validate.report import Cause, Diagnosis

Check = Callable[[], Awaitable[bool]]
GiveUp = Callable[[], Awaitable["Diagnosis | None"]]


@dataclass(frozen=True, slots=True)
class Waited:
    """How a wait ended: `seconds` until the check held, or a reason to stop early, or neither (timeout)."""

    seconds: float | None = None
    gave_up: Diagnosis | None = None


async def wait_for(check: Check, timeout: float, poll: float, give_up: GiveUp | None = None) -> Waited:
    """Poll `check()` every `poll` seconds for at most `timeout`; stop early when `give_up()` names a cause."""
    started = time.monotonic()
    while True:
        if await check():
            return Waited(seconds=time.monotonic() - started)
        if give_up is not None and (reason := await give_up()) is not None:
            return Waited(gave_up=reason)
        if time.monotonic() - started >= timeout:
            return Waited()
        await asyncio.sleep(poll)


async def sync_running(store: Store, agent_id: int | None = None) -> SyncActivity:
    """Who syncs now (the agent, when given: its shard's run): a window holding the lease, or one it was
    handed to (windows hand over without a gap)."""
    return await asyncio.to_thread(sync_activity, store, None, agent_id)


def sync_not_running(activity: SyncActivity, first_fix: str = "") -> Diagnosis:
    """Nothing carries changes across; `first_fix` is the way out the calling command offers itself."""
    if activity.last_holder is None:
        history = "no sync run ever held it in this store"
    else:
        history = f"the last run to hold it was {activity.last_holder}; it has ended"
    return Diagnosis(
        Cause.SYNC_NOT_RUNNING,
        f"no sync run holds the sync lease in the state store ({history}), so nothing carries changes across.",
        first_fix + "start it: `presence-sync sync CONFIG`, or run/schedule the sync deployment "
        "(`presence-sync serve`); check that it uses the same sync.store_url as this config",
    )
