"""A sync process killed with SIGKILL in the middle of a tick's writes, then started again.

The emulators serve on loopback from this process; the sync runs in a child process as a sync
window runs it (`run_window`). CXone answers slowly and two writes go at a time, so the kill lands
while some of a burst's writes have reached CXone and others have not. The restarted process must
take the lease over, recognise the writes that landed as echoes, send the ones that never left, and
write nothing twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from presence_sync.deployments.serve import PROJECT_ROOT
from presence_sync.emulators.faults import FaultSettings
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import write_emulator_config
from presence_sync.tasks.context import open_context
from presence_sync.tasks.onboarding import run_steps

AGENTS = 12
CHANGED = (*range(1, 10), 11)  # ten voice-team agents pick On_Break in Salesforce at once (agent 10 chats)
SET_STATE = "POST /incontactapi/services/{version}/agent-sessions/{sessionId}/state"
CHILD = """
import asyncio, sys
from presence_sync.tasks.context import open_context
from presence_sync.tasks.sync.window import run_window

async def main(config: str, holder: str) -> None:
    async with open_context(config) as ctx:
        await run_window(ctx, seconds=300, holder=holder)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def start_sync(config_path: Path, holder: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(config_path), holder],
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


async def until(check: Callable[[], bool], child: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Poll `check` while the child runs (a wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if child.poll() is not None:
            raise AssertionError(f"the sync process ended: {child.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            raise AssertionError("the sync did not get there in time")
        await asyncio.sleep(0.02)


def stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.kill()
    child.wait(timeout=30)


async def test_a_sync_killed_mid_tick_restarts_converges_and_writes_nothing_twice(tmp_path: Path) -> None:
    with EmulatorStack.serve(agents=AGENTS, seed=3) as stack:
        config_path = await write_emulator_config(stack, tmp_path / "presence-sync.yaml")
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        data["sync"].update(interval_seconds=0.5, echo_timeout_seconds=3, max_concurrency=2)
        config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        async with open_context(config_path) as ctx:
            assert (await run_steps(ctx)).succeeded

        sf, cx = stack.salesforce, stack.cxone
        users = {i: sf.user_by_username(f"agent{i}@example.com").id for i in CHANGED}
        agent_ids = {i: int(cx.tenant.find_agent(f"agent{i}@example.com")["agentId"]) for i in CHANGED}

        def set_states() -> int:
            # A request cut off by the kill before CXone read it changed nothing: it is not a write.
            return cx.faults.stats.by_route[SET_STATE] - cx.faults.stats.abandoned[SET_STATE]

        first = start_sync(config_path, "sync/first")
        try:
            await until(lambda: all(sf.current_presence(u) == "Available_for_Chats" for u in users.values()), first)
            cx.faults.configure(FaultSettings(latency_ms=400))  # each CXone request takes 0.4 s
            published = sf.applier.published
            for user in users.values():
                sf.set_presence(user, "On_Break")
            await until(lambda: set_states() >= 3, first)  # some of the ten writes landed, not all
            os.kill(first.pid, signal.SIGKILL)
        finally:
            stop(first)
        landed_before_the_kill = set_states()
        assert 3 <= landed_before_the_kill < len(CHANGED)

        second = start_sync(config_path, "sync/second")  # waits for the dead run's lease to expire
        try:
            await until(lambda: all(cx.tenant.state(a)["outStateDescription"] == "Break" for a in agent_ids.values()), second)
            cx.faults.configure(FaultSettings())
            await asyncio.sleep(4)  # past the echo timeout: any write awaited in vain would be sent again
        finally:
            stop(second)

        assert set_states() == len(CHANGED)  # every change written once: none lost, none twice
        assert sf.applier.published == published  # CXone's echoes were not published back
