"""Onboarding against the in-process emulators: a fresh demo contact center and its ready config per test.

The flows and commands a test runs for `config_path` reach the stack through `routed`; helpers that
open a context themselves pass the stack's transports (onboarding_support.transports_of).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import write_emulator_config
from presence_sync.tasks.context import routed
from tests.onboarding.onboarding_support import AGENTS, transports_of


@pytest.fixture
def stack() -> EmulatorStack:
    return EmulatorStack.in_process(agents=AGENTS)


@pytest.fixture
async def config_path(stack: EmulatorStack, tmp_path: Path) -> AsyncIterator[Path]:
    path = await write_emulator_config(stack, tmp_path / "presence-sync.yaml")
    with routed(path, transports_of(stack)):
        yield path
