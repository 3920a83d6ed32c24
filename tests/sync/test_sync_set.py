"""`set`: a supervisor sets one agent in one system, the running sync carries it, both systems agree.

The sync ticks in the background (as a window would) while `set_agent` sets and watches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from presence_sync.engine import CxoneState, CxoneStateName
from presence_sync.tasks.context import Context
from presence_sync.tasks.supervise import SetRequestError, set_agent
from presence_sync.tasks.validate import Cause
from tests.sync.support import World, agent_id, onboarded_world

AGENTS = 12  # agent 10 is on the Chat Team


@pytest.fixture
async def world(tmp_path: Path) -> World:
    return await onboarded_world(tmp_path, agents=AGENTS)


@asynccontextmanager
async def syncing(world: World, ctx: Context) -> AsyncIterator[None]:
    """A sync window ticking in the background until the block ends."""
    runner = await world.runner(ctx)
    await world.settle(runner)
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            await world.ticks(runner, 1)
            await asyncio.sleep(0.02)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()
        await task
        await runner.close()


async def test_set_in_salesforce_is_carried_to_cxone_and_both_agree(world: World, ctx: Context) -> None:
    async with syncing(world, ctx):
        outcome = await set_agent(ctx, "agent1@example.com", salesforce="On_Break", timeout_seconds=30)

    assert outcome.ok, outcome.headline
    assert world.sf(1) == "On_Break" and world.cx(1) == CxoneState(CxoneStateName.UNAVAILABLE, "Break")
    assert (outcome.rule_name, outcome.expected) == ("Default Presence", "CXone Unavailable: Break")
    assert "both systems agree" in outcome.headline and "(rule 'Default Presence')" in outcome.headline
    writes = [row for row in ctx.store.reports.audit_for(agent_id(1), limit=20) if row.outcome == "write"]
    assert writes[0].direction == "salesforce->cxone" and writes[0].rule_name == "Default Presence"


async def test_set_in_cxone_is_carried_to_salesforce_by_the_agents_own_rule(world: World, ctx: Context) -> None:
    async with syncing(world, ctx):
        voice = await set_agent(ctx, "agent3@example.com", cxone="Unavailable: CRM Work", timeout_seconds=30)
        chat = await set_agent(ctx, str(agent_id(10)), cxone="unavailable: CRM Work", timeout_seconds=30)

    assert voice.ok and chat.ok, (voice.headline, chat.headline)
    assert world.sf(3) == "Case_Work"  # Default Presence
    assert world.sf(10) == "Available_for_Chats"  # Chat Presence: CRM Work is chatting
    assert (chat.value, chat.rule_name) == ("Unavailable: CRM Work", "Chat Presence")


async def test_set_to_what_both_systems_show_already_changes_nothing(world: World, ctx: Context) -> None:
    async with syncing(world, ctx):
        before = world.writes()
        outcome = await set_agent(ctx, "agent1@example.com", cxone="Available", timeout_seconds=30)
    assert outcome.ok and outcome.already and world.writes() == before


async def test_set_to_what_only_its_own_system_shows_is_refused_as_no_change(world: World, ctx: Context) -> None:
    world.pick_cx(1, "Unavailable", "Lunch")  # no sync ran: Salesforce is still logged out of Omni
    outcome = await set_agent(ctx, "agent1@example.com", cxone="Unavailable: Lunch", timeout_seconds=1)

    assert outcome.refusal is not None and outcome.refusal.cause is Cause.ALREADY_SHOWN
    assert "setting it again is no change" in outcome.refusal.explanation
    assert "presence-sync reconcile" in outcome.refusal.fix


async def test_set_is_refused_without_a_sync_to_carry_it(world: World, ctx: Context) -> None:
    outcome = await set_agent(ctx, "agent1@example.com", salesforce="On_Break", timeout_seconds=1, poll_seconds=0.05)

    assert not outcome.ok and outcome.refusal is not None
    assert outcome.refusal.cause is Cause.SYNC_NOT_RUNNING
    assert "no sync run holds the sync lease" in str(outcome.refusal)
    assert world.sf(1) is None  # nothing was set (the seeded console is logged out of Omni)


@pytest.mark.parametrize(
    ("agent", "values", "cause", "words"),
    [
        ("agent99@example.com", {"salesforce": "On_Break"}, Cause.NOT_LINKED, "no linked agent matches"),
        ("agent1@example.com", {"salesforce": "On_Brake"}, Cause.UNMAPPED, "did you mean 'On_Break'"),
        ("agent2@example.com", {"cxone": "Unavailable: CRM Work"}, Cause.STATE_REJECTED, "no unavailable code 'CRM Work'"),
        ("agent1@example.com", {"cxone": "ACW"}, Cause.STATE_REJECTED, "system-managed"),
        ("agent1@example.com", {"cxone": "Unavailable"}, Cause.UNMAPPED, "so nothing would carry it to Salesforce"),
        # Chat Presence has no row for On_a_Call and no skip validation (Default Presence's would map it to Unavailable)
        ("agent10@example.com", {"salesforce": "On_a_Call"}, Cause.UNMAPPED, "so nothing would carry On_a_Call to CXone"),
    ],
)
async def test_set_is_refused_with_the_reason_and_the_fix(
    world: World, ctx: Context, agent: str, values: dict[str, Any], cause: Cause, words: str
) -> None:
    before = world.writes()
    outcome = await set_agent(ctx, agent, timeout_seconds=1, **values)

    assert outcome.refusal is not None and outcome.refusal.cause is cause, outcome.headline
    assert words in str(outcome.refusal) and outcome.refusal.fix
    assert world.writes() == before


async def test_set_is_refused_for_an_agent_on_a_contact_or_without_a_rule(world: World) -> None:
    def voice_team_a_only(data: dict[str, Any]) -> None:
        data["rules"][0]["teams"] = ["Voice Team A"]

    async with world.context(await world.onboard_variant(voice_team_a_only)) as ctx:
        world.contact(1, "offer", "accept")
        on_call = await set_agent(ctx, "agent1@example.com", salesforce="On_Break", timeout_seconds=1)
        no_rule = await set_agent(ctx, "agent2@example.com", salesforce="On_Break", timeout_seconds=1)

    assert on_call.refusal is not None and on_call.refusal.cause is Cause.ON_CONTACT
    assert "InboundContact" in on_call.refusal.explanation and "once the contact" in on_call.refusal.fix
    assert no_rule.refusal is not None and no_rule.refusal.cause is Cause.NO_RULE
    assert world.cx(1).name is CxoneStateName.INBOUND_CONTACT


async def test_set_needs_exactly_one_value(ctx: Context) -> None:
    with pytest.raises(SetRequestError, match="exactly one of --salesforce STATUS or --cxone STATE"):
        await set_agent(ctx, "agent1@example.com", salesforce="On_Break", cxone="Available")
    with pytest.raises(SetRequestError):
        await set_agent(ctx, "agent1@example.com")
