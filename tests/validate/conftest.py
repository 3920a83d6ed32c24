"""An onboarded demo contact center on the in-process emulators, and its connectors, per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import write_emulator_config
from presence_sync.tasks.context import Context, Transports, open_context
from presence_sync.tasks.onboarding import run_steps

AGENTS = 12
TEST_AGENT = "agent1@example.com"


@dataclass
class Center:
    stack: EmulatorStack
    ctx: Context
    config_path: Path

    def transports(self) -> Transports:
        return Transports(*self.stack.transports())

    def cxone_agent_id(self, email: str = TEST_AGENT) -> int:
        return int(self.stack.cxone.tenant.find_agent(email)["agentId"])

    def salesforce_user_id(self, email: str = TEST_AGENT) -> str:
        user = self.stack.salesforce.user_by_username(email)
        assert user is not None
        return user.id

    def cxone_shows(self, email: str = TEST_AGENT) -> str:
        state = self.stack.cxone.tenant.state(self.cxone_agent_id(email))
        return f"{state['agentStateName']}:{state['outStateDescription']}"

    def salesforce_shows(self, email: str = TEST_AGENT) -> str | None:
        return self.stack.salesforce.current_presence(self.salesforce_user_id(email))

    def commands_published(self) -> int:
        return int(self.stack.salesforce.applier.stats()["published"])


@pytest.fixture
async def center(tmp_path: Path) -> AsyncIterator[Center]:
    stack = EmulatorStack.in_process(agents=AGENTS, seed=3)
    config_path = await write_emulator_config(stack, tmp_path / "presence-sync.yaml")
    async with open_context(config_path, Transports(*stack.transports())) as ctx:
        report = await run_steps(ctx, plan_only=False)
        assert report.succeeded, report
        yield Center(stack, ctx, config_path)
