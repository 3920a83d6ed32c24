"""CXone agent sessions joined ahead of need: at a window's start, in the background, a few at a time.

Setting an agent's CXone state needs a joined session (apis.md C3); a window with none kept from its
predecessor would otherwise join in the middle of a burst, two requests per agent where one will do.
So the holder joins every linked agent without a kept session as soon as it has loaded: half the
client's bound always, the other half only while no CXone write is waiting (a write then waits for at
most one join's round trip; polls and writes keep their share of the client's slots). The client
caches what it joins and reports it in `session_changes()`, which the tick's commit saves for the next
window. An agent that is logged out (409) or not ours to act for (403) is simply left: its first write
says why, as it always did.

    joining = join_sessions_ahead(ctx.cxone, linked_agent_ids, concurrency=ctx.config.sync.max_concurrency,
                                  until_idle=lambda: cxone_applier.wait(3600.0))
    ...                                  # the ticks run meanwhile; `joining` ends on its own
    joining.cancel()                     # or when the window closes first
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from presence_sync.connectors import ConnectorError, CxoneClient

logger = logging.getLogger(__name__)

# The joins take 1/AHEAD_SHARE of the client's concurrency bound whatever else goes on. Half: at 64 and
# 50 ms, 10,000 agents are joined in ~16 s, not ~31 s, so a burst early in a first window joins fewer
# itself (bench scale: 16,600 → 14,500-14,800 requests for 9,800 agents, 43-50 → 35-39 s), and writes
# keep 32 slots. The rest of the bound joins too while no write waits for it (the window's first
# seconds are mostly reads and Salesforce writes).
AHEAD_SHARE = 2

_running: set[asyncio.Task[int]] = set()  # strong references: a task nobody holds may be collected


async def join_ahead(
    cxone: CxoneClient,
    agent_ids: Iterable[int],
    *,
    concurrency: int,
    spare: int = 0,
    until_idle: Callable[[], Awaitable[object]] | None = None,
) -> int:
    """Join the session of each agent in `agent_ids` the client has none for, `concurrency` at a time,
    and `spare` more at a time while `until_idle()` returns at once (each of those awaits it before
    every join); how many were joined. Agents that can't be joined now are skipped (their write will
    say why)."""
    wanted = [agent_id for agent_id in agent_ids if not cxone.has_session(agent_id)]
    if not wanted:
        return 0
    queue = iter(wanted)
    joined = 0

    async def worker(waits: bool) -> None:
        nonlocal joined
        for agent_id in queue:
            if waits and until_idle is not None:
                await until_idle()
            if cxone.has_session(agent_id):  # a write joined it meanwhile
                continue
            try:
                await cxone.join_session(agent_id)
            except ConnectorError as error:
                logger.debug("CXone session of agent %s not joined ahead: %s", agent_id, error)
                continue
            joined += 1

    always = max(1, min(concurrency, len(wanted)))
    extra = min(spare, len(wanted) - always) if until_idle is not None else 0
    await asyncio.gather(*(worker(False) for _ in range(always)), *(worker(True) for _ in range(extra)))
    logger.info("CXone: joined %d of %d agent sessions ahead of need", joined, len(wanted))
    return joined


def join_sessions_ahead(
    cxone: CxoneClient,
    agent_ids: Iterable[int],
    *,
    concurrency: int,
    until_idle: Callable[[], Awaitable[object]] | None = None,
) -> asyncio.Task[int]:
    """`join_ahead` in the background at 1/AHEAD_SHARE of `concurrency`, and the rest of it while
    `until_idle()` (no CXone write waiting) returns at once; the task ends on its own, or quietly when
    the client closes under it. Below AHEAD_SHARE there is no slot to spare (the writes would wait for
    the joins), so nothing is joined ahead: sessions are joined when first needed."""
    share = concurrency // AHEAD_SHARE

    async def run() -> int:
        if share < 1:
            return 0
        try:
            return await join_ahead(
                cxone, list(agent_ids), concurrency=share, spare=concurrency - share, until_idle=until_idle
            )
        except RuntimeError as error:  # the client was closed (the window ended first)
            logger.debug("joining CXone sessions ahead stopped: %s", error)
            return 0

    task = asyncio.get_running_loop().create_task(run(), name="cxone-sessions-ahead")
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task


async def joined_ahead() -> None:
    """Until every join-ahead started in this event loop has ended (for tests and the bench: a known state)."""
    while pending := [task for task in _running if not task.done()]:
        await asyncio.gather(*pending, return_exceptions=True)


__all__ = ["AHEAD_SHARE", "join_ahead", "join_sessions_ahead", "joined_ahead"]
