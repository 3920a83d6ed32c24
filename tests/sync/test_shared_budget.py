"""The API budget shared by the sync shards: chunks of slots from Prefect's global rate limits, a local fallback."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter

import pytest
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from presence_sync.cli.main import app
from presence_sync.connectors import RateLimited
from presence_sync.flows.shared_budget import install_limits, take_slots
from presence_sync.models.config import SharedBudgetSettings, load_config
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.shared_budget import SharedBudget, SharedPacer, SlotsUnavailable, size_limits
from tests.sync.support import World


class Keeper:
    """Stands in for Prefect's rate limits: counts the calls and the slots taken."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls = 0
        self.slots: Counter[str] = Counter()
        self.fail = fail

    async def __call__(self, limit: str, slots: int, timeout: float) -> None:
        self.calls += 1
        await asyncio.sleep(0)  # a round trip: other requests queue up behind the refill meanwhile
        if self.fail is not None:
            raise self.fail
        self.slots[limit] += slots


async def test_a_thousand_requests_cost_one_keeper_call_per_chunk_and_never_more_than_the_slots_taken() -> None:
    keeper = Keeper()
    pacer = SharedPacer("CXone", "cx", keeper, chunk=16)
    await asyncio.gather(*(pacer() for _ in range(1000)))
    assert pacer.requests == 1000
    assert keeper.calls == pacer.calls == math.ceil(1000 / 16) == 63  # 63 Prefect calls per 1,000 requests
    assert 1000 <= keeper.slots["cx"] < 1000 + 16


async def test_without_a_usable_limit_requests_go_ahead_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    keeper = Keeper(fail=SlotsUnavailable("Concurrency limits ['cx'] must be created before acquiring slots"))
    pacer = SharedPacer("CXone", "cx", keeper, chunk=16, retry_seconds=60, monotonic=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        await asyncio.gather(*(pacer() for _ in range(500)))
        assert pacer.requests == 500 and not pacer.shared
        assert keeper.calls == 1  # not asked again within retry_seconds: no call per request, no stall
        now[0] += 61
        await pacer()
        assert keeper.calls == 2  # asked again after retry_seconds; still missing: no second warning
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "limits install" in warnings[0].getMessage()

    keeper.fail = None
    now[0] += 61
    await pacer()
    assert pacer.shared and keeper.slots["cx"] == 16


async def test_no_slot_in_time_fails_the_request_as_rate_limited_which_is_retried_later() -> None:
    pacer = SharedPacer("Salesforce", "sf", Keeper(fail=TimeoutError()), wait_seconds=5)
    with pytest.raises(RateLimited, match="no free slot within 5 s") as raised:
        await pacer()
    assert raised.value.transient


async def test_every_api_request_of_a_sync_window_takes_its_slot(world: World, ctx: Context) -> None:
    keeper = Keeper()
    budget = SharedBudget.from_settings(SharedBudgetSettings(enabled=True, chunk=4), keeper)
    budget.attach(ctx)
    def api_calls() -> dict[str, int]:  # logins and discovery are not API budget: not paced
        return {system: world.api_requests(system, "") - world.api_requests(system, "auth")
                - world.api_requests(system, "well-known") for system in ("salesforce", "cxone")}

    before = api_calls()
    runner = await world.runner(ctx)
    await world.ticks(runner, 3)
    await runner.close()
    sent = {system: count - before[system] for system, count in api_calls().items()}
    for system, pacer in (("salesforce", budget.pacers["Salesforce"]), ("cxone", budget.pacers["CXone"])):
        assert pacer.requests == sent[system] > 0, (system, world.stack.cxone.faults.stats.by_route)
        assert keeper.slots[pacer.limit] >= pacer.requests
        assert pacer.calls == math.ceil(pacer.requests / 4)


def test_the_limits_are_sized_for_the_whole_contact_center_whatever_the_shards() -> None:
    settings = SharedBudgetSettings(cxone_requests_per_second=100)
    one, four = (size_limits(settings, reserve_fraction=0.2, salesforce_daily=10_100_000, shards=n) for n in (1, 4))
    assert [s.per_second for s in one] == [s.per_second for s in four] == [pytest.approx(93.5185), 100.0]
    assert four[0].per_day == 8_080_000  # 10.1 M a day less the 20 % reserve
    assert [s.limit for s in four] == [5611, 128]  # a minute's burst; two 16-slot chunks for each of 4 shards


@pytest.mark.prefect
async def test_limits_install_creates_then_resizes_the_limits_and_the_sync_takes_slots_from_them(
    prefect_harness: None, world: World
) -> None:
    config = load_config(world.config_path)
    settings = config.sync.shared_budget
    [sf_first, _] = await install_limits(config, shards=1, transports=world.transports())
    assert sf_first.per_day == round(world.stack.salesforce.budget.limit * 0.8)  # the org's /limits, less the reserve
    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "limits", "install", str(world.config_path), "--shards", "40", "--salesforce-daily-requests", "1000000"])
    assert result.exit_code == 0, result.output
    assert "sync.shared_budget.enabled: true" in result.output  # the config does not use them yet
    async with get_client() as client:
        sf = await client.read_global_concurrency_limit_by_name(settings.salesforce_limit)
        cx = await client.read_global_concurrency_limit_by_name(settings.cxone_limit)
        names = [limit.name for limit in await client.read_global_concurrency_limits(limit=50)]
    assert (sf.limit, sf.slot_decay_per_second) == (1280, pytest.approx(1_000_000 * 0.8 / 86_400, rel=1e-3))
    assert (cx.limit, cx.slot_decay_per_second) == (1280, settings.cxone_requests_per_second)
    assert names.count(settings.salesforce_limit) == 1  # updated, not created twice

    pacer = SharedPacer("CXone", settings.cxone_limit, take_slots, chunk=16)
    await asyncio.gather(*(pacer() for _ in range(100)))
    assert pacer.shared and pacer.calls == 7
    async with get_client() as client:
        taken = await client.read_global_concurrency_limit_by_name(settings.cxone_limit)
    assert taken.active_slots > 0  # the slots were taken from Prefect's limit (decaying at 50 a second)

    missing = SharedPacer("CXone", "presence-sync-no-such-limit", take_slots)
    await missing()
    assert not missing.shared  # a missing limit: the request went ahead, paced locally
