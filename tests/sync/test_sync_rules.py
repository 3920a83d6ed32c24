"""End to end against the emulators (issue 10): several rules, a user override, logouts both ways, never
during a contact, and a sync that follows onboarding and refresh-users while it runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from presence_sync.engine import CxoneStateName
from presence_sync.tasks.context import Context
from presence_sync.tasks.onboarding import StepName, run_steps
from presence_sync.tasks.sync.status import read_audit, read_status
from tests.sync.support import World, agent_id, onboarded_world

AGENTS = 12  # agent 10 is on the Chat Team
LOGOUT_ROUTE = "POST /incontactapi/services/{version}/agents/{agentId}/logout"


@pytest.fixture
async def world(tmp_path: Path) -> World:
    return await onboarded_world(tmp_path, agents=AGENTS)


def _chat_for_agent3(data: dict[str, Any]) -> None:
    data["rules"][1]["users"] = ["agent3@example.com"]  # on Voice Team A, but synced by Chat Presence


def rules_of(ctx: Context, i: int) -> set[str | None]:
    return {row.rule_name for row in read_audit(ctx.store, agent=str(agent_id(i)), limit=500)}


async def test_each_agent_is_carried_by_its_own_rule_and_a_user_override_by_its_rule(world: World) -> None:
    async with world.context(await world.onboard_variant(_chat_for_agent3)) as ctx:
        runner = await world.runner(ctx)
        await world.settle(runner)
        # CXone Available (everyone's morning) maps differently by rule.
        assert [world.sf(i) for i in (1, 2, 3, 10)] == ["Available_for_Chats", "Available_for_Chats", "Available", "Available"]

        world.pick_sf(10, "Available_for_Chats")  # the chat team: chats only, CXone holds the calls
        world.pick_sf(3, "Available_for_Chats")  # the override: the same
        world.pick_sf(2, "Available_for_Chats")  # a voice agent: Available in CXone (already)
        world.pick_sf(1, "On_Break")
        await world.settle(runner)

        assert world.cx(10) == world.cx(3) == _unavailable("CRM Work")
        assert world.cx(2).name is CxoneStateName.AVAILABLE
        assert world.cx(1) == _unavailable("Break")
        assert rules_of(ctx, 10) == rules_of(ctx, 3) == {"Chat Presence"}
        assert rules_of(ctx, 1) == rules_of(ctx, 2) == {"Default Presence"}
        coverage = read_status(ctx.store).coverage
        assert coverage is not None
        assert coverage.agents_per_rule == {"Chat Presence": 2, "Default Presence": AGENTS - 2}
        assert coverage.without_rule_count == 0
        await runner.close()


async def test_agents_without_a_rule_are_not_synced_and_status_lists_them(world: World) -> None:
    def voice_team_a_only(data: dict[str, Any]) -> None:
        data["rules"][0]["teams"] = ["Voice Team A"]

    async with world.context(await world.onboard_variant(voice_team_a_only)) as ctx:
        runner = await world.runner(ctx)
        await world.settle(runner)
        before = world.writes()
        world.pick_sf(2, "On_Break")  # Voice Team B: no rule any more
        await world.settle(runner)

        assert world.writes() == before and world.cx(2).name is CxoneStateName.AVAILABLE
        assert [row.outcome for row in read_audit(ctx.store, agent=str(agent_id(2)), limit=5)][-1] == "no_rule"
        coverage = read_status(ctx.store).coverage
        assert coverage is not None
        assert coverage.without_rule_count == 5  # agents 2, 4, 6, 8, 12
        assert any(f"({agent_id(2)}, team Voice Team B)" in line for line in coverage.without_rule)
        await runner.close()


async def test_a_cxone_logout_logs_the_agent_out_of_omni_and_back_in_it_is_a_change_like_any_other(
    world: World, ctx: Context
) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    before = world.writes()

    world.stack.cxone.tenant.set_session(agent_id(1), open=False)
    await world.settle(runner)
    assert world.sf(1) is None  # logged out of Omni-Channel by the applier (statusId "0")
    assert world.writes() - before == Counter(salesforce=1)  # and its echo was not carried back
    outcomes = [(row.direction, row.outcome, row.to_value) for row in read_audit(ctx.store, agent=str(agent_id(1)))]
    assert ("cxone->salesforce", "write", "Offline") in outcomes and ("cxone->salesforce", "echo", "Offline") in outcomes

    world.stack.cxone.tenant.set_session(agent_id(1), open=True)  # back in CXone's default Unavailable
    await world.settle(runner)
    assert world.sf(1) is None  # the rule maps nothing for it: Salesforce stays where the logout put it
    world.pick_cx(1, "Available")
    await world.settle(runner)
    assert world.sf(1) == "Available_for_Chats"
    await runner.close()


async def test_an_omni_logout_puts_cxone_in_its_default_unavailable(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    before = world.writes()

    world.pick_sf(2, None)
    await world.settle(runner)

    assert world.cx(2) == _unavailable()
    assert world.sf(2) is None
    assert world.writes() - before == Counter(cxone=1)
    world.pick_sf(2, "Lunch")  # logging back in to Omni maps by the rule
    await world.settle(runner)
    assert world.cx(2) == _unavailable("Lunch")
    await runner.close()


async def test_no_logout_reaches_an_agent_on_a_contact_until_it_ends(world: World) -> None:
    def end_the_session(data: dict[str, Any]) -> None:
        data["rules"][0]["on_omni_logout"] = "LoggedOut"

    async with world.context(await world.onboard_variant(end_the_session)) as ctx:
        runner = await world.runner(ctx)
        await world.settle(runner)
        world.contact(4, "offer", "accept")  # on a call
        world.contact(6, "offer", "accept")
        await world.settle(runner)
        assert world.sf(4) == "On_a_Call"

        world.pick_sf(4, None)  # Omni logout during the call: ends the CXone session only after it
        world.stack.cxone.tenant.set_session(agent_id(6), open=False)  # CXone logout: Omni logout at once
        await world.settle(runner)
        assert world.cx(4).name is CxoneStateName.INBOUND_CONTACT
        assert world.api_requests("cxone", "/logout") == 0
        assert world.sf(6) is None

        world.contact(4, "end", "end_acw")  # the call and its after-call work end
        await world.settle(runner)
        assert world.cx(4).is_logged_out and world.sf(4) is None
        assert world.stack.cxone.faults.stats.by_route[LOGOUT_ROUTE] == 1
        await runner.close()


async def test_the_sync_follows_onboarding_and_refresh_users_while_it_runs(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    assert world.sf(5) == world.sf(7) == "Available_for_Chats"

    def agent5_chats(data: dict[str, Any]) -> None:
        data["rules"][1]["users"] = ["agent5@example.com"]

    await world.onboard_variant(agent5_chats)  # onboarding, while the sync runs
    await world.settle(runner)
    assert world.sf(5) == "Available"  # Chat Presence publishes CXone Available as Available
    reasons = [row.reason for row in read_audit(ctx.store, agent=str(agent_id(5)), limit=20)]
    assert any("the agent's rule changed (now 'Chat Presence')" in reason for reason in reasons)

    tenant = world.stack.cxone.tenant
    chat_team = next(t["teamId"] for t in tenant.teams_page(0, 10).records if t["teamName"] == "Chat Team")
    tenant.update_agent(agent_id(7), team_id=chat_team)  # agent 7 joins the chat team
    async with world.context() as refresher:
        assert (await run_steps(refresher, [StepName.CXONE_USERS])).succeeded  # refresh-users
    await world.settle(runner)
    assert world.sf(7) == "Available"
    await runner.close()


def _unavailable(code: str | None = None) -> Any:
    from presence_sync.engine import CxoneState

    return CxoneState(CxoneStateName.UNAVAILABLE, code)
