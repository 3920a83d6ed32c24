"""Bad, slow and partial answers (issue 11), against the emulators' targeted faults, counted not timed.

In each: while the fault lasts, the changes that do not need the faulted system or record are carried;
nothing is written twice (the emulators' write counts); once it clears, everything converges. HTTP and
poll deadlines are short here, so a silent or trickling answer costs a tick about two seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncio

import pytest

from presence_sync.emulators.faults import FaultSettings
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.sources import CXONE_CURSOR, SALESFORCE_CURSOR
from presence_sync.tasks.sync.status import read_status
from tests.sync.support import World
from tests.sync.test_sync_faults import CHANGES_IN_CXONE, CHANGES_IN_SALESFORCE, EXPECTED, converged, make_changes

SHORT_DEADLINES = {
    "request_deadline_seconds": 0.5,  # one HTTP attempt
    "poll_deadline_seconds": 2.0,  # one system's poll, all its attempts
    "write_deadline_seconds": 20.0,  # generous: a write is never cut off on a busy machine
    "max_response_bytes": 256 * 1024,
}
TICKS_LIMIT = 12  # generous: a condition that holds is met in 1-3 ticks
CXONE_STATES = "*/agents/states"
SALESFORCE_QUERY = "*/query"


@pytest.fixture
async def fast(world: World) -> AsyncIterator[Context]:
    """A context whose connectors and polls give up quickly (the same store as `world`'s)."""
    path = world.variant(lambda data: data.setdefault("sync", {}).update(SHORT_DEADLINES), "fast.yaml")
    async with world.context(path) as context:
        yield context


def fault(world: World, system: str, **targeted: Any) -> None:
    emulator = world.stack.salesforce if system == "salesforce" else world.stack.cxone
    emulator.faults.configure(FaultSettings.model_validate({"targeted": [targeted]}))


def clear_faults(world: World) -> None:
    world.faults()


async def tick_until(world: World, runner: Any, condition: Any, seconds: float = 1.0) -> None:
    for _ in range(TICKS_LIMIT):
        await world.ticks(runner, 1, seconds=seconds)
        if condition():
            return
    raise AssertionError(f"not met within {TICKS_LIMIT} ticks")


def carried_to_salesforce(world: World) -> bool:
    return all(world.sf(i) == EXPECTED[i][1] for i in CHANGES_IN_CXONE)


def carried_to_cxone(world: World) -> bool:
    return all(world.cx(i) == EXPECTED[i][0] for i in CHANGES_IN_SALESFORCE)


STALLS = [
    pytest.param({"kind": "silent", "max_hold_s": 60}, id="silent"),
    pytest.param({"kind": "slow_body", "bytes_per_s": 1}, id="slow-loris"),
    pytest.param({"kind": "html_error", "status": 502}, id="html-502"),
    pytest.param({"kind": "oversized_body", "extra_bytes": 1024 * 1024}, id="oversized"),
]


@pytest.mark.parametrize("stall", STALLS)
async def test_a_stuck_salesforce_poll_does_not_hold_cxone_changes(world: World, fast: Context, stall: dict[str, Any]) -> None:
    runner = await world.runner(fast)
    await world.settle(runner)
    before = world.writes()
    fault(world, "salesforce", path=SALESFORCE_QUERY, count=None, **stall)
    make_changes(world)

    await tick_until(world, runner, lambda: carried_to_salesforce(world))  # CXone still polled, Salesforce written
    assert not carried_to_cxone(world)  # Salesforce's own changes wait for its poll
    assert world.stack.salesforce.faults.stats.injected[stall["kind"]] > 0

    clear_faults(world)
    await tick_until(world, runner, lambda: not converged(world))
    await world.settle(runner)
    assert converged(world) == {}
    assert world.writes() - before == Counter(salesforce=2, cxone=3)


@pytest.mark.parametrize("stall", STALLS)
async def test_a_stuck_cxone_poll_does_not_hold_salesforce_changes(world: World, fast: Context, stall: dict[str, Any]) -> None:
    runner = await world.runner(fast)
    await world.settle(runner)
    before = world.writes()
    fault(world, "cxone", path=CXONE_STATES, count=None, **stall)
    make_changes(world)

    await tick_until(world, runner, lambda: carried_to_cxone(world))  # Salesforce still polled, CXone written
    assert not carried_to_salesforce(world)
    assert world.stack.cxone.faults.stats.injected[stall["kind"]] > 0

    clear_faults(world)
    await tick_until(world, runner, lambda: not converged(world))
    await world.settle(runner)
    assert converged(world) == {}
    assert world.writes() - before == Counter(salesforce=2, cxone=3)


async def test_a_malformed_record_is_skipped_counted_and_the_rest_of_its_page_used(world: World, fast: Context) -> None:
    runner = await world.runner(fast)
    await world.settle(runner)
    before = world.writes()
    fault(world, "cxone", path=CXONE_STATES, count=1, field="agentStateName", value="OnFire", kind="malformed_record")
    make_changes(world)

    await world.ticks(runner, 1)
    assert world.stack.cxone.faults.stats.injected["malformed_record"] == 1
    carried = [i for i in CHANGES_IN_CXONE if world.sf(i) == EXPECTED[i][1]]
    await world.settle(runner)
    carried = [i for i in CHANGES_IN_CXONE if world.sf(i) == EXPECTED[i][1]]
    assert len(carried) == len(CHANGES_IN_CXONE) - 1  # only the spoiled record's agent is left out
    assert carried_to_cxone(world)  # and nothing else waits
    assert read_status(fast.store).rejected_records == {"CXone": 1}

    report = await runner.reconcile()  # what a skipped record hid, the reconcile pass repairs
    assert report.failed == []
    await world.settle(runner)
    assert converged(world) == {}
    assert world.writes() - before == Counter(salesforce=2, cxone=3)
    assert read_status(fast.store).rejected_records == {"CXone": 1}  # counted once


async def test_short_pages_are_read_to_the_end(world: World, fast: Context) -> None:
    runner = await world.runner(fast)
    await world.settle(runner)
    before = world.writes()
    fault(world, "cxone", path=CXONE_STATES, count=None, kind="short_pages", records_per_page=1)
    make_changes(world)

    await world.settle(runner)
    assert converged(world) == {}
    assert world.stack.cxone.faults.stats.injected["short_pages"] > 0
    assert world.writes() - before == Counter(salesforce=2, cxone=3)


@pytest.mark.parametrize("kind", ["drop_after", "drop_before"])
async def test_a_write_whose_answer_was_lost_is_not_sent_twice(world: World, fast: Context, kind: str) -> None:
    runner = await world.runner(fast)
    await world.settle(runner)
    before = world.writes()
    fault(world, "cxone", path="*/agent-sessions/*/state", method="POST", count=3, kind=kind)
    make_changes(world)

    await tick_until(world, runner, lambda: carried_to_cxone(world))
    assert world.stack.cxone.faults.stats.injected[kind] == 3
    await world.settle(runner)
    assert converged(world) == {}
    # Each CXone change is set once when its answer was lost after it took effect; a request dropped
    # before it took effect is sent again once (the emulator counts the dropped request too).
    resent = 3 if kind == "drop_before" else 0
    assert world.writes() - before == Counter(salesforce=2, cxone=3 + resent)


async def test_a_salesforce_publish_whose_answer_was_lost_is_not_sent_twice(world: World, fast: Context) -> None:
    runner = await world.runner(fast)
    await world.settle(runner)
    before = world.writes()
    fault(world, "salesforce", path="*/composite/sobjects", method="POST", count=1, kind="drop_after")
    make_changes(world)

    await tick_until(world, runner, lambda: carried_to_salesforce(world))
    assert world.stack.salesforce.faults.stats.injected["drop_after"] == 1
    await world.settle(runner)
    assert converged(world) == {}
    assert world.writes() - before == Counter(salesforce=2, cxone=3)


async def test_a_salesforce_read_stuck_after_its_first_page_still_carries_that_page(world: World, fast: Context) -> None:
    """A poll's pages are taken in as they arrive (a burst's read is ten): what the first page says is
    carried even though the read never ends, and the saved watermark stays where it was, so nothing the
    read would have covered is lost. The page says it again each poll; it is written once."""
    runner = await world.runner(fast)
    await world.settle(runner)
    before = world.writes()
    watermark = fast.store.sync.get_cursor(SALESFORCE_CURSOR)
    world.stack.salesforce.cursors.page_size = 1  # one spell a page: the earliest of the current ones
    fault(world, "salesforce", path=SALESFORCE_QUERY + "/*", count=None, kind="silent", max_hold_s=60)  # every next page
    make_changes(world)

    first, *rest = CHANGES_IN_SALESFORCE  # changed first: the first page's spell
    await tick_until(world, runner, lambda: world.cx(first) == EXPECTED[first][0])
    await world.ticks(runner, 2)  # the same first page, read again
    assert all(world.cx(i) != EXPECTED[i][0] for i in rest)
    assert fast.store.sync.get_cursor(SALESFORCE_CURSOR) == watermark
    assert world.stack.salesforce.faults.stats.injected["silent"] > 0
    assert world.writes()["cxone"] - before["cxone"] == 1

    clear_faults(world)
    await world.settle(runner)
    assert converged(world) == {}
    assert fast.store.sync.get_cursor(SALESFORCE_CURSOR) != watermark
    assert world.writes() - before == Counter(salesforce=2, cxone=3)


async def test_a_cxone_read_stuck_after_its_first_page_still_carries_that_page(
    world: World, fast: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CXone poll's pages are decided as they arrive (the listing asks for the pages after the first at
    once): what the first page says is carried although the others never come, and the saved cursor stays
    where it was, so nothing the read would have covered is lost. The stall is made in the client, not
    the emulator: an emulator fault hits a path's next requests, the first page's among them."""
    runner = await world.runner(fast)
    await world.settle(runner)
    before = world.writes()
    cursor = fast.store.sync.get_cursor(CXONE_CURSOR)
    monkeypatch.setattr(fast.cxone, "_page_size", 1)  # one state a page: the earliest change first
    never = asyncio.Event()
    call = fast.cxone._call

    async def later_pages_stall(method: str, path: str, **request: Any) -> Any:
        if path == "/agents/states" and request.get("params", {}).get("skip", "0") != "0":
            await never.wait()  # until the poll's deadline
        return await call(method, path, **request)

    monkeypatch.setattr(fast.cxone, "_call", later_pages_stall)
    make_changes(world)

    first, *rest = CHANGES_IN_CXONE  # changed first: the first page's state
    await tick_until(world, runner, lambda: world.sf(first) == EXPECTED[first][1])
    await world.ticks(runner, 2)  # the same first page, read again
    assert all(world.sf(i) != EXPECTED[i][1] for i in rest)
    assert fast.store.sync.get_cursor(CXONE_CURSOR) == cursor
    assert world.writes()["salesforce"] - before["salesforce"] == 1

    monkeypatch.setattr(fast.cxone, "_call", call)
    await world.settle(runner)
    assert converged(world) == {}
    assert fast.store.sync.get_cursor(CXONE_CURSOR) != cursor
    assert world.writes() - before == Counter(salesforce=2, cxone=3)
