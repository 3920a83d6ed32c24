"""Joining CXone sessions ahead of need (tasks/sync/sessions.py): half the bound always, the rest only
while no CXone write waits."""

from __future__ import annotations

import asyncio

from presence_sync.tasks.sync.sessions import join_ahead


class Joins:
    """A client's session cache and joins, counting how many are in flight at once."""

    def __init__(self) -> None:
        self.sessions: dict[int, str] = {}
        self.in_flight = 0
        self.most = 0
        self.release = asyncio.Event()

    def has_session(self, agent_id: int) -> bool:
        return agent_id in self.sessions

    async def join_session(self, agent_id: int) -> str:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        self.sessions[agent_id] = f"s{agent_id}"
        return self.sessions[agent_id]


async def _until(check: object) -> None:
    async with asyncio.timeout(60):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0)


async def test_the_spare_half_joins_only_while_no_write_waits() -> None:
    joins, idle = Joins(), asyncio.Event()
    task = asyncio.ensure_future(join_ahead(joins, range(100), concurrency=4, spare=4, until_idle=idle.wait))  # type: ignore[arg-type]
    await _until(lambda: joins.in_flight == 4)
    for _ in range(20):
        await asyncio.sleep(0)
    assert joins.most == 4  # writes are waiting: only the always-on half joins

    idle.set()
    await _until(lambda: joins.in_flight == 8)
    joins.release.set()
    assert await task == 100
    assert joins.most == 8 and sorted(joins.sessions) == list(range(100))


async def test_without_an_idle_signal_only_the_bound_joins() -> None:
    joins = Joins()
    joins.release.set()
    assert await join_ahead(joins, range(10), concurrency=3, spare=5) == 10  # type: ignore[arg-type]
    assert joins.most <= 3


async def test_agents_with_a_session_are_not_joined_again() -> None:
    joins = Joins()
    joins.release.set()
    joins.sessions = {1: "kept", 2: "kept"}
    assert await join_ahead(joins, range(5), concurrency=2, spare=2, until_idle=lambda: asyncio.sleep(0)) == 3  # type: ignore[arg-type]
    assert joins.sessions[1] == "kept"
