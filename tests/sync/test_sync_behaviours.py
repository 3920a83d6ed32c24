"""The seed's rule behaviours end to end: the sync tick against the in-process emulators.

Every test counts the writes that reached each system (presence commands published to Salesforce,
state requests to CXone) against the changes the rule needs: no more, no fewer.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import event

from presence_sync.engine import CxoneState, CxoneStateName
from presence_sync.models.store import PresenceRule
from presence_sync.tasks.context import Context
from tests.sync.support import AGENTS, World, agent_id


def audit_of(ctx: Context, i: int) -> list[tuple[str, str, str | None, str | None]]:
    """(direction, outcome, from, to) of agent i's decisions, oldest first; without the "duplicate" rows
    of a poll overlap reading a change again, which come or not with the machine's timing (CXone's
    `updatedSince` is inclusive)."""
    rows = reversed(ctx.store.reports.audit_for(agent_id(i), limit=500))
    return [(a.direction, a.outcome, a.from_value, a.to_value) for a in rows if a.outcome != "duplicate"]


def unavailable(code: str | None = None) -> CxoneState:
    return CxoneState(CxoneStateName.UNAVAILABLE, code)


AVAILABLE = CxoneState(CxoneStateName.AVAILABLE)


async def test_the_first_window_brings_salesforce_to_the_rule_then_stays_quiet(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)

    # Seeded: every agent Available in CXone ("Open"), logged out of Omni; the rule publishes Available_for_Chats.
    assert all(world.sf(i) == "Available_for_Chats" for i in range(1, AGENTS + 1))
    assert world.writes() == Counter(salesforce=AGENTS, cxone=0)
    echoes = [a for a in ctx.store.reports.audit_for(limit=500) if a.outcome == "echo"]
    # The first window aligns agents seen for the first time: no human change, so no lag is measured.
    assert len(echoes) == AGENTS and all(a.latency_ms is None and "initial alignment" in a.reason for a in echoes)

    await world.ticks(runner, 5)
    assert world.writes() == Counter(salesforce=AGENTS, cxone=0)


async def test_the_seed_example_available_for_chats_and_open_map_both_ways(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    before = world.writes()

    world.pick_cx(1, "Unavailable", "Break")  # CXone -> Salesforce: On_Break
    await world.settle(runner)
    assert world.sf(1) == "On_Break"

    world.pick_sf(1, "Available_for_Chats")  # Salesforce -> CXone: Available ("Open")
    await world.settle(runner)
    assert world.cx(1) == AVAILABLE
    assert world.writes() - before == Counter(salesforce=1, cxone=1)
    assert audit_of(ctx, 1)[-4:] == [
        ("cxone->salesforce", "write", "Unavailable: Break", "On_Break"),
        ("cxone->salesforce", "echo", None, "On_Break"),  # our own write coming back: not synced back
        ("salesforce->cxone", "write", "Available_for_Chats", "Available"),
        ("salesforce->cxone", "echo", None, "Available"),
    ]


async def test_a_ping_pong_trap_stays_quiet(world: World, ctx: Context) -> None:
    # Salesforce "Available" -> CXone Available, whose publisher row says Available_for_Chats: without
    # echo suppression the two would chase each other for ever.
    runner = await world.runner(ctx)
    await world.settle(runner)
    before = world.writes()

    for i in (1, 2, 3):
        world.pick_sf(i, "Available")
    world.pick_cx(4, "Unavailable", "Lunch")
    await world.settle(runner)
    await world.ticks(runner, 5)

    assert [world.sf(i) for i in (1, 2, 3)] == ["Available"] * 3  # the person's choice stands
    assert all(world.cx(i) == AVAILABLE for i in (1, 2, 3))
    assert world.sf(4) == "Lunch"
    # CXone already showed Available for 1-3: nothing to write there; one command for agent 4.
    assert world.writes() - before == Counter(salesforce=1)


async def test_salesforce_statuses_reach_cxone_with_their_codes(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    before = world.writes()

    world.pick_sf(1, "On_Break")
    world.pick_sf(3, "Lunch")
    world.pick_sf(5, "Case_Work")  # Team A has CRM Work
    await world.settle(runner)

    assert (world.cx(1), world.cx(3), world.cx(5)) == (unavailable("Break"), unavailable("Lunch"), unavailable("CRM Work"))
    assert world.writes() - before == Counter(cxone=3)


async def test_previous_state_returns_cxone_to_where_it_was_before_after_a_contact(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)

    world.pick_cx(1, "Unavailable", "Break")
    await world.settle(runner)
    world.contact(1, "dial")  # an outbound call from Break
    await world.settle(runner)
    assert world.sf(1) == "On_a_Call"
    world.contact(1, "end")
    await world.settle(runner)
    assert world.sf(1) == "After_Call_Work"
    world.contact(1, "end_acw")  # back to Break
    await world.settle(runner)
    assert world.sf(1) == "On_Break"

    world.pick_sf(1, "Available_for_Chats")  # the agent makes themselves available in Salesforce
    await world.settle(runner)
    assert world.cx(1) == AVAILABLE
    before = world.writes()
    world.pick_sf(1, "Resume_Previous")  # ... and changes their mind
    await world.settle(runner)

    assert world.cx(1) == unavailable("Break")
    assert world.sf(1) == "Resume_Previous"
    assert world.writes() - before == Counter(cxone=1)


async def test_acw_and_refused_are_published(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)

    world.contact(1, "offer", "accept")
    await world.settle(runner)
    assert world.sf(1) == "On_a_Call"
    world.contact(1, "end")
    await world.settle(runner)
    assert world.sf(1) == "After_Call_Work"
    world.contact(1, "end_acw")
    await world.settle(runner)
    assert world.sf(1) == "Available_for_Chats"

    world.contact(2, "offer", "refuse")
    await world.settle(runner)
    assert world.sf(2) == "Missed_Contact"
    assert world.cx(2).key == "Refused"  # system-managed: never written back


async def test_a_salesforce_change_during_a_contact_is_applied_when_it_ends(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    world.contact(1, "offer", "accept")
    await world.settle(runner)

    world.pick_sf(1, "Lunch")  # while on the call: the live contact wins for now
    await world.settle(runner)
    assert world.cx(1).name is CxoneStateName.INBOUND_CONTACT
    assert ("salesforce->cxone", "deferred", "Lunch", None) in audit_of(ctx, 1)

    world.contact(1, "end", "end_acw")
    await world.settle(runner)
    assert world.cx(1) == unavailable("Lunch")


async def test_unmapped_statuses_use_the_default_unavailable_with_skip_validation(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    before = world.writes()

    world.pick_sf(2, "Case_Work")  # Team B lacks CRM Work
    world.pick_sf(3, "On_a_Call")  # no subscriber row for On_a_Call
    await world.settle(runner)

    assert world.cx(2) == unavailable() and world.cx(3) == unavailable()
    assert world.writes() - before == Counter(cxone=2)
    assert world.sf(2) == "Case_Work" and world.sf(3) == "On_a_Call"  # and no ping-pong back


async def test_without_skip_validation_unmapped_changes_write_nothing_and_say_why(world: World, ctx: Context) -> None:
    stored = ctx.store.setup.get_rule("Default Presence")
    assert stored is not None
    strict = PresenceRule(name=stored.name, skip_validation=False, publisher_rows=stored.publisher_rows,
                          subscriber_rows=stored.subscriber_rows)
    ctx.store.setup.replace_rule(strict, teams={a.target_id: a.target_name for a in ctx.store.setup.list_rule_assignments()})
    runner = await world.runner(ctx)
    await world.settle(runner)
    before = world.writes()

    world.pick_sf(2, "Case_Work")  # Team B lacks CRM Work
    world.pick_sf(3, "On_a_Call")  # no subscriber row
    world.pick_cx(5, "Unavailable")  # the default Unavailable has no publisher row
    await world.settle(runner)

    assert world.writes() - before == Counter()
    assert world.cx(2) == AVAILABLE and world.cx(3) == AVAILABLE
    reasons = {a.agent_id: a.reason for a in ctx.store.reports.audit_for(limit=500) if a.outcome == "unmapped"}
    assert "no unavailable code 'CRM Work'" in reasons[agent_id(2)]
    assert "no subscriber row for On_a_Call" in reasons[agent_id(3)]
    assert "no publisher row for CXone Unavailable" in reasons[agent_id(5)]


async def test_an_agent_whose_salesforce_console_is_closed_is_given_up_with_that_cause(
    world: World, ctx: Context
) -> None:
    world.stack.salesforce.set_console(world.sf_user(1), open=False)
    runner = await world.runner(ctx)
    policy = runner.policy
    # Each command waits for its echo, then retries after a backoff: move time along in big steps.
    for _ in range(4 * policy.max_attempts):
        await world.ticks(runner, 1, seconds=policy.echo_timeout_seconds)

    assert world.sf(1) is None  # never applied: the console is closed
    gave_up = [a for a in ctx.store.reports.audit_for(agent_id(1), limit=500) if a.outcome == "gave_up"]
    assert len(gave_up) == 1
    assert "console (presence applier) may be closed" in gave_up[0].reason
    lost = world.stack.salesforce.applier.stats()["lost"]["console_closed"]
    assert lost == policy.max_attempts  # tried exactly max_attempts times, then stopped
    failed = ctx.store.reports.list_writes()
    assert [(w.agent_id, w.status.value) for w in failed] == [(agent_id(1), "gave_up")]
    assert all(world.sf(i) == "Available_for_Chats" for i in range(2, AGENTS + 1))


def _logouts_do_nothing(data: dict[str, Any]) -> None:
    for rule in data["rules"]:
        rule["on_cxone_logout"] = rule["on_omni_logout"] = "nothing"


async def test_an_agent_logged_out_of_cxone_is_left_alone_when_the_rule_says_nothing(world: World) -> None:
    async with world.context(await world.onboard_variant(_logouts_do_nothing)) as ctx:
        await _logged_out_of_cxone_is_left_alone(world, ctx)


async def _logged_out_of_cxone_is_left_alone(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    before = world.writes()

    world.stack.cxone.tenant.set_session(agent_id(1), open=False)
    await world.settle(runner)
    assert world.sf(1) == "Available_for_Chats"  # the rule maps nothing for LoggedOut
    world.pick_sf(1, "On_Break")
    await world.settle(runner)

    assert world.cx(1).is_logged_out
    assert world.writes() - before == Counter()
    outcomes = [(d, o) for d, o, _, _ in audit_of(ctx, 1)]
    assert ("cxone->salesforce", "logged_out") in outcomes and ("salesforce->cxone", "logged_out") in outcomes


async def test_an_agent_logged_out_before_the_write_is_recorded_as_failed_not_retried(world: World) -> None:
    # The rule says nothing on a CXone logout, so that the failed write is all there is to see.
    async with world.context(await world.onboard_variant(_logouts_do_nothing)) as ctx:
        await _logged_out_before_the_write(world, ctx)


async def _logged_out_before_the_write(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    world.pick_sf(1, "On_Break")
    # Logged out in CXone between our poll and our write: the Agent API answers 409.
    joins = world.api_requests("cxone", "agent-sessions/join")
    original = ctx.cxone.set_state

    async def log_out_first(agent: int, state: str, reason: str | None = None) -> None:
        world.stack.cxone.tenant.set_session(agent, open=False)
        await original(agent, state, reason)  # type: ignore[arg-type]

    ctx.cxone.set_state = log_out_first  # type: ignore[method-assign]
    await world.ticks(runner, 2)
    ctx.cxone.set_state = original  # type: ignore[method-assign]
    await world.settle(runner)

    failed = [a for a in ctx.store.reports.audit_for(agent_id(1), limit=100) if a.outcome == "failed"]
    assert len(failed) == 1 and "logged out" in failed[0].reason
    assert world.api_requests("cxone", "agent-sessions/join") - joins == 1  # one attempt (409), never repeated
    assert world.sf(1) == "On_Break" and world.cx(1).is_logged_out


async def test_a_tick_costs_the_same_reads_and_statements_for_one_change_or_many(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    statements: list[str] = []
    event.listen(ctx.store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    async def one_tick_costs() -> tuple[int, int, int, int]:
        statements.clear()
        reads = (world.api_requests("cxone", "GET"), world.api_requests("salesforce", "GET"))
        composite = world.api_requests("salesforce", "/composite/sobjects")
        await world.ticks(runner, 1)
        return (
            world.api_requests("cxone", "GET") - reads[0],
            world.api_requests("salesforce", "GET") - reads[1],
            world.api_requests("salesforce", "/composite/sobjects") - composite,
            len(statements),
        )

    world.pick_cx(1, "Unavailable", "Break")
    one = await one_tick_costs()
    await world.settle(runner)
    for i in range(2, AGENTS + 1):
        world.pick_cx(i, "Unavailable", "Lunch")
    many = await one_tick_costs()

    assert one == many  # one read of each system, one batched publish, the same store statements
    assert one[:3] == (1, 1, 1)
    assert world.writes()["salesforce"] == AGENTS + AGENTS  # the first window's, then one per change
