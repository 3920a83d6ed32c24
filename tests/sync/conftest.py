"""Fixtures of the sync tests: an onboarded in-process contact center (see support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from presence_sync.tasks.context import Context
from tests.sync.support import World, onboarded_world


@pytest.fixture
async def world(tmp_path: Path) -> World:
    return await onboarded_world(tmp_path)


@pytest.fixture
async def ctx(world: World) -> AsyncIterator[Context]:
    async with world.context() as context:
        yield context
