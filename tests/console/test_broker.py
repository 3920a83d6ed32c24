"""The broker's contract, the same for the in-process and the PostgreSQL broker.

Time is a FakeClock the test moves: expiry is decided by the clock, not by waiting.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from presence_sync.connectors.console.broker import CommandOutcome, ConsoleCommand, ConsoleConnection, StatusPush
from presence_sync.connectors.console.protocol import Ack, StatusChanged, salesforce_id_18
from tests.console.support import DEADLINE, ORG, STATUS_BREAK, USER_A, USER_B, BrokerFactory, FakeClock

TIMEOUT = timedelta(seconds=30)


def connection(user_id: str = USER_A, name: str = "c1", gateway: str = "gw-1", clock: FakeClock | None = None):
    return ConsoleConnection(f"{gateway}-{name}", user_id, ORG, gateway, (clock or FakeClock())())


def command(clock: FakeClock, user_id: str = USER_A, name: str = "cmd-1", **options) -> ConsoleCommand:
    return ConsoleCommand.set_status(user_id, STATUS_BREAK, "On_Break", command_id=name, issued_at=clock(),
                                     timeout=options.pop("timeout", TIMEOUT), **options)


def ack(command_id: str, outcome: str = "applied", **fields) -> Ack:
    if outcome == "applied" and "status" not in fields:
        fields["status"] = {"status_id": STATUS_BREAK, "status": "On_Break", "label": "On Break"}
    return Ack.model_validate({"type": "ack", "command_id": command_id, "outcome": outcome, **fields})


async def test_a_command_goes_to_its_users_connection_once_and_its_ack_comes_back(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    a, b = connection(USER_A, clock=clock), connection(USER_B, "c2", clock=clock)
    await broker.open_connection(a)
    await broker.open_connection(b)
    assert await broker.submit([command(clock)]) == 1
    assert await broker.claim_commands(USER_B, b.connection_id) == []
    [claimed] = await broker.claim_commands(USER_A, a.connection_id)
    assert claimed.command_id == "cmd-1" and claimed.status_id == STATUS_BREAK
    assert await broker.claim_commands(USER_A, a.connection_id) == []  # delivered once

    assert not await broker.record_ack(b, ack("cmd-1"))  # B can't answer for A's command
    assert await broker.record_ack(a, ack("cmd-1"))
    assert not await broker.record_ack(a, ack("cmd-1"))  # the second answer changes nothing
    [outcome] = await broker.read_events()
    assert isinstance(outcome, CommandOutcome)
    assert (outcome.command_id, outcome.user_id, outcome.outcome) == ("cmd-1", USER_A, "applied")
    assert outcome.status is not None and outcome.status.status == "On_Break"
    assert outcome.connection_id == a.connection_id


async def test_a_compare_and_set_command_keeps_its_precondition_to_the_console(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    a = connection(USER_A, clock=clock)
    await broker.open_connection(a)
    await broker.submit([command(clock, if_showing=["Available", None])])
    [claimed] = await broker.claim_commands(USER_A, a.connection_id)
    assert claimed.if_showing == ("Available", None)
    assert claimed.to_message()["if_showing"] == ["Available", None]
    refused = ack("cmd-1", "ignored", reason="not as expected",
                  status={"status_id": STATUS_BREAK, "status": "Lunch", "label": "Lunch"})
    assert await broker.record_ack(a, refused)
    [outcome] = await broker.read_events()
    assert isinstance(outcome, CommandOutcome) and (outcome.outcome, outcome.reason) == ("ignored", "not as expected")
    assert outcome.status is not None and outcome.status.status == "Lunch"


async def test_a_repeated_submit_is_ignored(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    first = command(clock)
    assert await broker.submit([first]) == 1
    assert await broker.submit([first, command(clock, name="cmd-2")]) == 1


async def test_a_failed_ack_carries_the_console_error(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    a = connection(clock=clock)
    await broker.open_connection(a)
    await broker.submit([command(clock)])
    await broker.claim_commands(USER_A, a.connection_id)
    await broker.record_ack(a, ack("cmd-1", "failed", error="You don't have access to this presence status."))
    [outcome] = await broker.read_events()
    assert outcome.outcome == "failed" and outcome.error == "You don't have access to this presence status."


async def test_a_push_stamped_by_a_console_clock_far_behind_is_kept_for_the_retention(broker_factory: BrokerFactory) -> None:
    # Retention counts from when the broker recorded an event; a push's `at` is the console's clock.
    clock = FakeClock()
    broker = await broker_factory(clock=clock, retention=timedelta(hours=1))
    await broker.record_push(connection(clock=clock), StatusChanged.model_validate({
        "type": "status_changed", "event": "status_changed", "reason": "OmniManualStatusChange",
        "status": {"status_id": STATUS_BREAK, "status": "On_Break"}, "at": (clock() - timedelta(days=2)).isoformat()}))

    [push] = await broker.read_events()  # a read prunes first: the push outlives it
    assert isinstance(push, StatusPush) and push.reason == "OmniManualStatusChange"
    clock.advance(2 * 3600)
    assert await broker.read_events() == []  # and goes once the retention has passed since it was recorded


async def test_without_a_console_a_command_is_lost_at_its_expiry_saying_so(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    await broker.submit([command(clock)])
    clock.advance(29)
    assert await broker.read_events() == []
    clock.advance(2)
    [lost] = await broker.read_events()
    assert lost.outcome == "lost" and lost.command_id == "cmd-1"
    assert lost.reason == "no console connected for this agent within 30 s"
    a = connection(clock=clock)
    await broker.open_connection(a)
    assert await broker.claim_commands(USER_A, a.connection_id) == []  # never delivered after its expiry


async def test_delivered_but_unanswered_is_lost_naming_the_console(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    a = connection(clock=clock)
    await broker.open_connection(a)
    await broker.submit([command(clock)])
    await broker.claim_commands(USER_A, a.connection_id)
    clock.advance(31)
    assert await broker.expire_overdue() == 1
    [lost] = await broker.read_events()
    assert lost.outcome == "lost"
    assert lost.reason.startswith(f"delivered to console {a.connection_id} at ")
    assert lost.reason.endswith("no acknowledgement within 30 s")
    # A late answer is still recorded: the events tell what really happened.
    assert await broker.record_ack(a, ack("cmd-1"))
    assert [event.outcome for event in await broker.read_events()] == ["lost", "applied"]


async def test_a_command_left_by_a_closed_connection_goes_to_the_next(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    first, second = connection(name="c1", clock=clock), connection(name="c2", clock=clock)
    await broker.open_connection(first)
    await broker.open_connection(second)
    await broker.submit([command(clock)])
    assert len(await broker.claim_commands(USER_A, first.connection_id)) == 1
    assert await broker.claim_commands(USER_A, second.connection_id) == []  # the first still has it
    assert await broker.claimable_users([USER_A, USER_B]) == set()
    await broker.close_connection(first.connection_id)
    assert await broker.claimable_users([USER_A, USER_B]) == {USER_A}
    [again] = await broker.claim_commands(USER_A, second.connection_id)
    assert again.command_id == "cmd-1"


async def test_only_the_newest_undelivered_command_is_delivered(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    await broker.submit([command(clock, name="old")])
    clock.advance(1)
    await broker.submit([command(clock, name="new")])
    a = connection(clock=clock)
    await broker.open_connection(a)
    assert [c.command_id for c in await broker.claim_commands(USER_A, a.connection_id)] == ["new"]
    [superseded] = await broker.read_events()
    assert (superseded.command_id, superseded.outcome) == ("old", "ignored")
    assert superseded.reason == "superseded by command new before a console acknowledged it"


async def test_pushes_are_events_in_order_and_filterable_by_user(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    a, b = connection(USER_A, clock=clock), connection(USER_B, "c2", clock=clock)
    for index, conn in enumerate([a, b, a]):
        await broker.record_push(conn, StatusChanged.model_validate({
            "type": "status_changed", "event": "status_changed", "reason": "OmniManualStatusChange",
            "status": {"status_id": STATUS_BREAK, "status": "On_Break"}, "at": clock().isoformat(),
            "command_id": f"cmd-{index}" if index == 2 else None,
        }))
    await broker.record_push(b, StatusChanged.model_validate({
        "type": "status_changed", "event": "logout", "status": None, "reason": None, "at": clock().isoformat()}))
    events = await broker.read_events()
    assert all(isinstance(event, StatusPush) for event in events)
    assert [event.seq for event in events] == sorted(event.seq for event in events)
    assert [event.user_id for event in events] == [USER_A, USER_B, USER_A, USER_B]
    assert events[2].command_id == "cmd-2" and events[0].reason == "OmniManualStatusChange"
    assert events[3].event == "logout" and events[3].status is None
    only_a = await broker.read_events(user_ids=[USER_A])
    assert [event.seq for event in only_a] == [events[0].seq, events[2].seq]
    assert await broker.read_events(after=events[1].seq, limit=1) == [events[2]]


async def test_a_token_id_is_accepted_once_until_it_expires(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    other = await broker_factory(clock=clock)  # another gateway replica on the same broker
    until = clock() + timedelta(minutes=15)
    assert await broker.claim_token("jti-0123456789", until)
    assert not await broker.claim_token("jti-0123456789", until)
    assert not await other.claim_token("jti-0123456789", until)
    assert await other.claim_token("jti-abcdefghij", until)


async def test_connected_consoles_count_every_gateway(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    other = await broker_factory(clock=clock)
    await broker.open_connection(connection(USER_A, "c1", "gw-1", clock))
    await other.open_connection(connection(USER_A, "c2", "gw-2", clock))
    await other.open_connection(connection(USER_B, "c3", "gw-2", clock))
    assert await broker.connected_consoles() == {USER_A: 2, USER_B: 1}
    await other.close_connection("gw-2-c2")
    assert await broker.connected_consoles() == {USER_A: 1, USER_B: 1}


async def test_a_listener_hears_of_new_commands_and_a_reader_of_new_events(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    gateway_side = await broker_factory(clock=clock)
    listener = gateway_side.command_listener()
    try:
        await listener.wait(0.01)  # subscribed before the submit
        waiting = asyncio.create_task(listener.wait(DEADLINE))
        await broker.submit([command(clock), command(clock, USER_B, "cmd-2")])
        assert await waiting == {USER_A, USER_B}
    finally:
        await listener.close()

    reader = asyncio.create_task(broker.wait_for_events(0, DEADLINE))
    a = connection(clock=clock)
    await gateway_side.open_connection(a)
    await gateway_side.claim_commands(USER_A, a.connection_id)
    await gateway_side.record_ack(a, ack("cmd-1"))
    assert await reader
    assert not await broker.wait_for_events((await broker.read_events())[-1].seq, 0.05)


async def test_two_replicas_claiming_at_once_deliver_a_command_once(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    first, second = await broker_factory(clock=clock), await broker_factory(clock=clock)
    one, two = connection(name="c1", gateway="gw-1", clock=clock), connection(name="c2", gateway="gw-2", clock=clock)
    await first.open_connection(one)
    await second.open_connection(two)
    await first.submit([command(clock, name=f"cmd-{index}") for index in range(3)])
    claims = await asyncio.gather(*(
        broker.claim_commands(USER_A, conn.connection_id) for broker, conn in [(first, one), (second, two)] * 5
    ))
    assert [c.command_id for claim in claims for c in claim] == ["cmd-2"]


async def test_a_dead_gateways_commands_go_to_other_consoles_once_its_connections_are_stale(
    broker_factory: BrokerFactory, request: pytest.FixtureRequest
) -> None:
    if "memory" in request.node.callspec.id:
        pytest.skip("in one process a dead gateway takes the in-process broker with it")
    clock = FakeClock()
    dead = await broker_factory(clock=clock, stale_after=timedelta(seconds=60))
    alive = await broker_factory(clock=clock, stale_after=timedelta(seconds=60))
    lost_console, new_console = connection(name="c1", gateway="gw-dead", clock=clock), connection(
        name="c2", gateway="gw-alive", clock=clock)
    await dead.open_connection(lost_console)
    await dead.submit([command(clock, timeout=timedelta(minutes=5))])
    assert len(await dead.claim_commands(USER_A, lost_console.connection_id)) == 1
    # The dead gateway never says it is alive again; the other one keeps saying so.
    await alive.open_connection(new_console)
    clock.advance(30)
    await alive.keep_alive("gw-alive")
    assert await alive.claim_commands(USER_A, new_console.connection_id) == []
    assert await alive.connected_consoles() == {USER_A: 2}
    clock.advance(45)
    await alive.keep_alive("gw-alive")
    assert await alive.connected_consoles() == {USER_A: 1}
    assert [c.command_id for c in await alive.claim_commands(USER_A, new_console.connection_id)] == ["cmd-1"]


async def test_many_consoles_calling_at_once_are_answered_as_if_each_called_alone(
    broker_factory: BrokerFactory, request: pytest.FixtureRequest
) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    users = [salesforce_id_18(f"005000000{n:06d}") for n in range(40)]
    consoles = [connection(user, f"c{n}", clock=clock) for n, user in enumerate(users)]
    spare = connection(users[0], "spare", clock=clock)
    until = clock() + timedelta(minutes=15)
    tokens = await asyncio.gather(*(broker.claim_token(f"jti-{n:010d}", until) for n in [*range(40), 7]))
    assert tokens.count(True) == 40 and tokens[-1] is False  # one token presented twice at once: one replay
    await asyncio.gather(*(broker.open_connection(conn) for conn in [*consoles, spare]))
    assert await broker.connected_consoles() == {user: 2 if user == users[0] else 1 for user in users}
    await broker.submit([command(clock, users[0], "old")])
    clock.advance(1)
    await broker.submit([command(clock, user, f"cmd-{n}") for n, user in enumerate(users)])

    claims = await asyncio.gather(*(broker.claim_commands(conn.user_id, conn.connection_id)
                                    for conn in [*consoles, spare]))
    assert sorted(c.command_id for claim in claims for c in claim) == sorted(f"cmd-{n}" for n in range(40))
    assert all(c.user_id == conn.user_id for claim, conn in zip(claims, [*consoles, spare]) for c in claim)
    if "postgresql" in request.node.callspec.id:
        batches = broker.batches
    acked = await asyncio.gather(*(broker.record_ack(conn, ack(f"cmd-{n}")) for n, conn in enumerate(consoles)),
                                 broker.record_ack(consoles[0], ack("cmd-0")), broker.record_ack(consoles[1], ack("cmd-0")))
    assert acked.count(True) == 40 and acked[40:] == [False, False]  # a repeat, and another user's command
    if "postgresql" in request.node.callspec.id:
        assert broker.batches == batches + 1  # 42 acknowledgements, one transaction
    await asyncio.gather(*(broker.record_push(conn, StatusChanged.model_validate({
        "type": "status_changed", "event": "status_changed", "reason": "OmniToolkitStatusChange",
        "status": {"status_id": STATUS_BREAK, "status": "On_Break"}, "at": clock().isoformat(),
        "command_id": f"cmd-{n}"})) for n, conn in enumerate(consoles)))

    events = await broker.read_events()
    assert [event.seq for event in events] == list(range(1, 82))
    assert [(e.command_id, e.outcome) for e in events if isinstance(e, CommandOutcome)].count(("old", "ignored")) == 1
    applied = {(e.user_id, e.command_id) for e in events if isinstance(e, CommandOutcome) and e.outcome == "applied"}
    assert applied == {(user, f"cmd-{n}") for n, user in enumerate(users)}
    assert sum(isinstance(event, StatusPush) for event in events) == 40
