"""Onboarding against the in-process emulators: a fresh demo contact center and its ready config per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from presence_sync.emulators.stack import EmulatorStack
from tests.onboarding.onboarding_support import AGENTS


@pytest.fixture
def stack() -> Iterator[EmulatorStack]:
    stack = EmulatorStack.in_process(agents=AGENTS)
    with stack.routed():
        yield stack


@pytest.fixture
async def config_path(stack: EmulatorStack, tmp_path: Path) -> Path:
    return await stack.write_config(tmp_path / "presence-sync.yaml")
