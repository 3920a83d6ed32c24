"""Two shards of the sync side by side on one store: each carries its own agents, never another's.

The two windows run concurrently in this process, each with its own connectors, against the same
emulators. What each shard's connectors sent is logged on the wire (a recording transport: the
emulators' own request counts can't tell two clients apart), and compared with the emulators' state.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from typer.testing import CliRunner

from presence_sync.cli import sync as cli_sync
from presence_sync.cli.main import app
from presence_sync.engine import CxoneState, CxoneStateName, Shard
from presence_sync.engine.shards import shard_of
from presence_sync.tasks.context import Context, Transports
from presence_sync.tasks.sync.runner import ForeignAgentError
from presence_sync.tasks.sync.shard_state import current_shards, shard_activity
from presence_sync.tasks.sync.status import read_status, sync_activity
from presence_sync.tasks.sync.window import reconcile_shards, run_window
from tests.console.support import postgres_database
from tests.sync.support import World, agent_id, onboarded_world

AGENTS = 9  # CRC-32 puts agents 4-7 in shard 1/2, the others in 2/2; agent 10 would be on the chat team
HALVES = (Shard(1, 2), Shard(2, 2))
_CXONE_STATE = re.compile(r"/agent-sessions/([^/]+)/state$")
_SF_USER = re.compile(rb'"UserId__c"\s*:\s*"(\w+)"')


class WriteLog(httpx.AsyncBaseTransport):
    """Passes requests on to the emulator; notes the writes (POST/PATCH) with their path and body."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.writes: list[tuple[str, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method in ("POST", "PATCH"):
            self.writes.append((request.url.path, await request.aread()))
        return await self.inner.handle_async_request(request)


def written_agents(world: World, salesforce: WriteLog, cxone: WriteLog) -> set[int]:
    """The agents whose state one shard's connectors set, in either system."""
    agent_of_session = {world.stack.cxone.tenant.session_of(agent_id(i)): agent_id(i) for i in range(1, AGENTS + 1)}
    agent_of_user = {world.sf_user(i): agent_id(i) for i in range(1, AGENTS + 1)}
    agents = {agent_of_session[m[1]] for path, _ in cxone.writes if (m := _CXONE_STATE.search(path))}
    agents |= {agent_of_user[user.decode()] for _, body in salesforce.writes for user in _SF_USER.findall(body)
               if user.decode() in agent_of_user}
    return agents


async def until(check: Callable[[], bool], timeout: float = 90.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.05)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    """None (SQLite beside the config), or a PostgreSQL database of this test's own, dropped afterwards."""
    if request.param == "sqlite":
        yield None
        return
    async with postgres_database("ps_shards") as url:
        yield url


async def test_two_shards_carry_every_agent_and_never_write_each_others(
    tmp_path: Path, store_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await onboarded_world(tmp_path, agents=AGENTS, store_url=store_url)
    logs = {shard: tuple(WriteLog(t) for t in world.stack.transports()) for shard in HALVES}  # type: ignore[arg-type]
    owners = {shard: {agent_id(i) for i in range(1, AGENTS + 1) if shard.owns(agent_id(i))} for shard in HALVES}
    assert all(owners.values()), "both shards should have agents"

    async with (
        world.context(transports=Transports(*logs[HALVES[0]])) as first,
        world.context(transports=Transports(*logs[HALVES[1]])) as second,
        world.context() as watcher,
    ):
        windows = [
            asyncio.create_task(run_window(ctx, seconds=300, holder=f"sync/{shard}", interval_seconds=0.2,
                                           shard=shard, clock=world.clock))
            for ctx, shard in ((first, HALVES[0]), (second, HALVES[1]))
        ]
        try:
            # Both hold their leases and have ticked: their initial alignments are done.
            def both_ticking() -> bool:
                shards = shard_activity(watcher.store)
                return len(shards) == 2 and all(a.running and a.last_tick_at for a in shards)

            await until(both_ticking)
            status = read_status(watcher.store)
            assert [(str(r.activity.shard), r.activity.holder, r.activity.agents) for r in status.shards] == [
                ("1/2", "sync/1/2", len(owners[HALVES[0]])), ("2/2", "sync/2/2", len(owners[HALVES[1]]))]
            assert sync_activity(watcher.store, agent_id=agent_id(4)).holder == "sync/1/2"
            assert sync_activity(watcher.store, agent_id=agent_id(1)).holder == "sync/2/2"
            # An unsharded run would sync the same agents: it does not get a lease beside them.
            whole = await run_window(watcher, seconds=0.5, holder="sync/whole", interval_seconds=0.2, clock=world.clock)
            assert not whole.held_lease and whole.other_count
            assert "another shard count (sync/1/2 (shard 1/2), sync/2/2 (shard 2/2))" in whole.headline

            for i in range(1, AGENTS + 1):  # odd agents change in CXone, even ones in Salesforce
                if i % 2:
                    world.pick_cx(i, "Unavailable", "Break")
                else:
                    world.pick_sf(i, "Lunch")
            await until(lambda: all(
                world.sf(i) == "On_Break" if i % 2 else world.cx(i) == CxoneState(CxoneStateName.UNAVAILABLE, "Lunch")
                for i in range(1, AGENTS + 1)
            ))

            # Reconcile across shards asks each shard's running window, and merges their reports.
            report = await reconcile_shards(watcher, holder="reconcile/all", clock=world.clock, poll_seconds=0.05)
            assert report.agents_checked == AGENTS and report.repairs == []
            assert set(report.held_by.split(", ")) == {"sync/1/2 (shard 1/2)", "sync/2/2 (shard 2/2)"}
        finally:
            for window in windows:
                window.cancel()
            await asyncio.gather(*windows, return_exceptions=True)

        written = {shard: written_agents(world, *logs[shard]) for shard in HALVES}
        assert written[HALVES[0]] and written[HALVES[1]]
        assert not written[HALVES[0]] & written[HALVES[1]], "an agent was written by both shards"
        for shard in HALVES:
            assert written[shard] <= owners[shard], f"shard {shard} wrote agents of the other shard"
        assert {shard_of(a, 2) for a in written[HALVES[0]]} == {HALVES[0]}

        # With no window running, reconcile does each shard's pass itself, under the shard's lease.
        assert current_shards(watcher.store) == list(HALVES)
        world.pick_cx(5, "Unavailable", "Lunch")  # shard 1/2's agent, on Break; no window polls it
        world.pick_cx(1, "Unavailable", "Lunch")  # shard 2/2's
        report = await reconcile_shards(watcher, holder="reconcile/all", clock=world.clock)
        assert sorted((r.agent_id, r.target, r.result) for r in report.repairs) == [
            (agent_id(1), "Lunch", "ok"), (agent_id(5), "Lunch", "ok")]
        assert set(report.held_by.split(", ")) == {"reconcile/all (shard 1/2)", "reconcile/all (shard 2/2)"}
        assert (world.sf(1), world.sf(5)) == ("Lunch", "Lunch")
        one = await reconcile_shards(watcher, holder="reconcile/one", clock=world.clock, shard=HALVES[0])
        assert (one.agents_checked, one.held_by) == (len(owners[HALVES[0]]), "reconcile/one (shard 1/2)")
        status = read_status(watcher.store)
        assert [(str(r.activity.shard), r.activity.lease_state) for r in status.shards] == [("1/2", "free"), ("2/2", "free")]
        assert set(status.cursors) == {"cxone:1/2", "salesforce:1/2", "cxone:2/2", "salesforce:2/2"}
        assert all(status.cursors.values())
        monkeypatch.setattr(cli_sync.console, "width", 220)  # rows whole, not wrapped
        shown = CliRunner().invoke(app, ["status", str(world.config_path)])
        assert shown.exit_code == 0, shown.output
        assert re.search(r"1/2\s.*free", shown.output) and re.search(r"2/2\s.*free", shown.output)


async def test_a_shard_refuses_to_save_or_write_another_shards_agent(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx, shard=Shard(1, 2))
    await world.ticks(runner, 2)
    own, foreign = agent_id(4), agent_id(1)
    assert set(runner.memory) == {a for a in runner.memory if runner.shard.owns(a)} and own in runner.memory
    saved_before = ctx.store.sync.load_agent_memory([foreign])

    runner.memory[foreign] = runner.memory[own]
    runner._pending.agents.add(foreign)  # as a bug that let a foreign agent through would
    with pytest.raises(ForeignAgentError, match=f"agents of other shards \\({foreign}\\)"):
        await runner._commit()

    assert ctx.store.sync.load_agent_memory([foreign]) == saved_before
    assert [a.kind for a in runner.stats.anomalies] == ["foreign-agent"]
    await runner.release()
