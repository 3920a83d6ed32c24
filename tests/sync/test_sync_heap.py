"""The sync's process keeps the cyclic collector out of the way: what is alive at load is exempt from
its passes, and the passes come at `GC_THRESHOLDS` (a burst at the defaults spent a fifth of its CPU there)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from presence_sync.tasks.sync.runner import GC_THRESHOLDS
from tests.sync.support import onboarded_world


@pytest.fixture
def default_collector() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    yield
    gc.set_threshold(*before)


async def test_a_loaded_runner_freezes_what_is_alive_and_collects_less_often(
    tmp_path: Path, default_collector: None
) -> None:
    world = await onboarded_world(tmp_path, agents=5)
    async with world.context() as ctx:
        runner = await world.runner(ctx)
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        await runner.close()
