"""The sync tests' world: an onboarded demo contact center in the in-process emulators, one clock for all.

Agent i is CXone agent 1_000_000 + i and Salesforce user agent{i}@example.com; odd agents are in
Voice Team A (Break, Lunch, CRM Work, ACW), even ones in Voice Team B (no CRM Work), except every
10th, who is on the Chat Team (the "Chat Presence" rule).

The engine tells our echoes from people partly by time (an observation dated before our write is no
echo of it), so our clock and both emulators' clocks move together: `world.clock.advance(s)`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from presence_sync.connectors import RetryPolicy, cxone_state_from_api
from presence_sync.emulators.faults import FaultSettings
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.engine import CxoneState
from presence_sync.models.config import load_config, write_emulator_config
from presence_sync.tasks.context import Context, Transports, connector_options, open_store
from presence_sync.tasks.onboarding import run_steps
from presence_sync.tasks.sync.runner import SyncRunner
from presence_sync.tasks.sync.sessions import joined_ahead

AGENTS = 8
FIRST_AGENT_ID = 1_000_001
SET_STATE_ROUTE_SUFFIX = "/agent-sessions/{sessionId}/state"


def agent_id(i: int) -> int:
    return FIRST_AGENT_ID + i - 1


class SyncClock:
    """Our clock and both emulators' clocks, moved together."""

    def __init__(self, stack: EmulatorStack) -> None:
        self.stack = stack
        self.offset = 0.0

    def __call__(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self.stack.salesforce.clock.advance(seconds)
        self.stack.cxone.clock.advance(seconds)


async def no_wait(seconds: float) -> None:
    """The connectors' retry pause, without the wait: tests count retries, never time."""
    await asyncio.sleep(0)


@dataclass
class World:
    stack: EmulatorStack
    config_path: Path
    clock: SyncClock

    # -- the people ----------------------------------------------------------------------------

    def sf_user(self, i: int) -> str:
        user = self.stack.salesforce.user_by_username(f"agent{i}@example.com")
        assert user is not None
        return str(user.id)

    def pick_sf(self, i: int, status: str | None) -> None:
        """Agent i picks a status in the Omni widget (None: logs out of Omni)."""
        self.stack.salesforce.set_presence(self.sf_user(i), status)

    def pick_cx(self, i: int, state: str, reason: str | None = None) -> None:
        """Agent i picks a state in the CXone agent app."""
        self.stack.cxone.tenant.set_state(agent_id(i), state, reason)

    def contact(self, i: int, *actions: str) -> None:
        for action in actions:
            self.stack.cxone.tenant.contact(agent_id(i), action)

    def cx(self, i: int) -> CxoneState:
        return cxone_state_from_api(self.stack.cxone.tenant.state(agent_id(i)))

    def sf(self, i: int) -> str | None:
        return self.stack.salesforce.current_presence(self.sf_user(i))

    # -- what we did to them ----------------------------------------------------------------------

    def writes(self) -> Counter[str]:
        """Writes that reached each system: presence commands published, CXone state requests."""
        routes = self.stack.cxone.faults.stats.by_route
        cx = sum(n for route, n in routes.items() if route.startswith("POST") and route.endswith(SET_STATE_ROUTE_SUFFIX))
        return Counter(salesforce=self.stack.salesforce.applier.published, cxone=cx)

    def api_requests(self, system: str, contains: str) -> int:
        emulator = self.stack.salesforce if system == "salesforce" else self.stack.cxone
        return sum(n for route, n in emulator.faults.stats.by_route.items() if contains in route)

    def faults(self, **settings: Any) -> None:
        """The same injected faults on both systems' APIs."""
        for emulator in (self.stack.salesforce, self.stack.cxone):
            emulator.faults.configure(FaultSettings(**settings))

    def variant(self, change: Any, name: str = "variant.yaml") -> Path:
        """A copy of the config with `change` applied to its data (same folder: same store)."""
        data = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        change(data)
        path = self.config_path.with_name(name)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    async def onboard_variant(self, change: Any, name: str = "variant.yaml") -> Path:
        """Onboard a copy of the config with `change` applied (same store): e.g. other rules."""
        path = self.variant(change, name)
        async with self.context(path) as ctx:
            report = await run_steps(ctx)
        assert report.succeeded, report
        return path

    # -- running the sync -------------------------------------------------------------------------

    def transports(self) -> Transports:
        """How connectors reach the in-process emulators."""
        return Transports(*self.stack.transports())

    @asynccontextmanager
    async def context(self, config_path: Path | None = None, transports: Transports | None = None) -> AsyncIterator[Context]:
        """Connectors whose retries do not wait, and the store (what `open_context` builds, test-fitted)."""
        config = load_config(config_path or self.config_path)
        transports = transports or self.transports()
        retry = RetryPolicy(sleep=no_wait)
        options = connector_options(config)
        store = open_store(config)
        try:
            async with (
                config.salesforce.get_client(transport=transports.salesforce, retry=retry, **options) as sf,
                config.cxone.get_client(transport=transports.cxone, retry=retry, **options) as cx,
            ):
                yield Context(config=config, salesforce=sf, cxone=cx, store=store)
        finally:
            store.close()

    async def runner(self, ctx: Context, holder: str = "run-1", **options: Any) -> SyncRunner:
        # Ticks on a fake clock: each waits for its own writes, so a test reads every result after its tick.
        options.setdefault("write_wait_seconds", ctx.config.sync.write_deadline_seconds)
        runner = SyncRunner(ctx, holder=holder, clock=self.clock, **options)
        assert await runner.acquire(), "the sync lease should be free"
        await joined_ahead()  # the CXone sessions the runner joins ahead of need: a known state to start from
        return runner

    async def ticks(self, runner: SyncRunner, count: int, seconds: float = 1.0) -> None:
        """`count` ticks, the clock moving `seconds` after each (as the loop's interval would)."""
        for _ in range(count):
            await runner.tick()
            self.clock.advance(seconds)

    async def settle(self, runner: SyncRunner, *, quiet_ticks: int = 3, limit: int = 40) -> None:
        """Tick until `quiet_ticks` ticks in a row wrote nothing and no write awaits its echo."""
        quiet = 0
        for _ in range(limit):
            before = sum(self.writes().values())
            await self.ticks(runner, 1)
            pending = any(
                c is not None and c.is_live
                for m in runner.memory.values()
                for c in (m.cxone_command, m.salesforce_command)
            )
            quiet = quiet + 1 if sum(self.writes().values()) == before and not pending else 0
            if quiet >= quiet_ticks:
                return
        raise AssertionError(f"the sync did not settle within {limit} ticks")


async def onboarded_world(
    tmp_path: Path, agents: int = AGENTS, store_url: str | None = None, **stack_options: Any
) -> World:
    """A fresh demo center in the in-process emulators, onboarded (statuses, access, links, rule);
    its state store at `store_url` (default: SQLite beside the config)."""
    stack = EmulatorStack.in_process(agents=agents, **stack_options)
    config_path = await write_emulator_config(stack, tmp_path / "presence-sync.yaml")
    if store_url is not None:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        data["sync"]["store_url"] = store_url
        config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    world = World(stack, config_path, SyncClock(stack))
    async with world.context() as ctx:
        report = await run_steps(ctx)
    assert report.succeeded, report
    return world
