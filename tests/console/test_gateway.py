"""The console gateway over real loopback WebSocket connections (uvicorn on a free port).

"Nothing else arrived" is checked with a barrier, never a sleep: after the command that must not
reach a console, the test sends that console one of its own; the next command it reads must be that one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from websockets.exceptions import InvalidStatus

from presence_sync.connectors.console.broker import CommandOutcome, ConsoleBroker, ConsoleCommand, StatusPush
from presence_sync.connectors.console.protocol import CloseCode
from tests.console.support import (
    OTHER_SECRET,
    SECRET,
    STATUS_BREAK,
    USER_A,
    USER_B,
    BrokerFactory,
    Console,
    FakeClock,
    events_until,
    serve_gateway,
    settings,
    token_for,
)

STATUS_LUNCH = "0N5000000000004CAA"


def command_for(user_id: str, name: str, status_id: str = STATUS_BREAK, timeout: float = 60) -> ConsoleCommand:
    return ConsoleCommand.set_status(user_id, status_id, "On_Break", command_id=name, timeout=timedelta(seconds=timeout))


async def test_a_command_reaches_only_the_newest_console_of_its_user(broker: ConsoleBroker) -> None:
    async with serve_gateway(settings(), broker) as gw:
        async with Console.connect(gw.url, token_for(USER_A)) as a_old, \
                Console.connect(gw.url, token_for(USER_A)) as a_new, \
                Console.connect(gw.url, token_for(USER_B)) as b:
            assert (await a_old.welcomed())["user_id"] == USER_A
            await a_new.welcomed()
            assert (await b.welcomed())["user_id"] == USER_B

            await broker.submit([command_for(USER_A, "for-a")])
            received = await a_new.next_command()
            assert received["command_id"] == "for-a" and received["user_id"] == USER_A
            assert received["action"] == "set_status" and received["status_id"] == STATUS_BREAK
            await a_new.ack(received, status={"status_id": STATUS_BREAK, "status": "On_Break"})
            await events_until(broker, 1)

            # Barriers: B's and A's older console's next commands are their own, not A's.
            await broker.submit([command_for(USER_B, "for-b")])
            assert (await b.next_command())["command_id"] == "for-b"
            await a_new.ws.close()
            await broker.submit([command_for(USER_A, "for-a-again")])
            assert (await a_old.next_command())["command_id"] == "for-a-again"


async def test_a_token_for_a_cannot_receive_or_answer_bs_commands(broker: ConsoleBroker) -> None:
    async with serve_gateway(settings(), broker) as gw:
        await broker.submit([command_for(USER_B, "for-b")])
        async with Console.connect(gw.url, token_for(USER_A)) as a:
            await a.welcomed()
            await a.ack({"command_id": "for-b"}, status={"status_id": STATUS_BREAK})  # guessed id
            await broker.submit([command_for(USER_A, "for-a")])
            assert (await a.next_command())["command_id"] == "for-a"
            await a.ack({"command_id": "for-a"}, status={"status_id": STATUS_BREAK})
            [outcome] = await events_until(broker, 1)
            assert outcome.command_id == "for-a"
        async with Console.connect(gw.url, token_for(USER_B)) as b:
            await b.welcomed()
            assert (await b.next_command())["command_id"] == "for-b"  # still waiting for B, unanswered


async def test_acks_and_pushes_reach_the_broker(broker: ConsoleBroker) -> None:
    async with serve_gateway(settings(), broker) as gw, Console.connect(gw.url, token_for(USER_A)) as a:
        await a.welcomed()
        await broker.submit([command_for(USER_A, "ok")])
        applied = await a.next_command()
        await a.send({"type": "status_changed", "event": "status_changed", "reason": "OmniToolkitStatusChange",
                      "status": {"status_id": STATUS_BREAK, "status": "On_Break", "label": "On Break"},
                      "at": "2026-11-25T10:00:01.250Z", "command_id": "ok"})
        await a.ack(applied, status={"status_id": STATUS_BREAK, "status": "On_Break", "label": "On Break"})
        await broker.submit([command_for(USER_A, "denied", STATUS_LUNCH)])
        denied = await a.next_command()
        await a.ack(denied, "failed", error="Agent does not have access to the presence status")
        await a.send({"type": "status_changed", "event": "status_changed", "reason": "OmniManualStatusChange",
                      "status": {"status_id": STATUS_LUNCH, "status": "Lunch"}, "at": "2026-11-25T10:00:05Z"})

        push, outcome, failure, manual = await events_until(broker, 4)
        assert isinstance(push, StatusPush) and push.command_id == "ok" and push.reason == "OmniToolkitStatusChange"
        assert push.user_id == USER_A and push.status is not None and push.status.status == "On_Break"
        assert isinstance(outcome, CommandOutcome) and (outcome.command_id, outcome.outcome) == ("ok", "applied")
        assert outcome.status is not None and outcome.status.label == "On Break"
        assert (failure.outcome, failure.error) == ("failed", "Agent does not have access to the presence status")
        assert isinstance(manual, StatusPush) and manual.reason == "OmniManualStatusChange" and manual.command_id is None
        assert await broker.connected_consoles() == {USER_A: 1}


async def test_a_command_queued_without_a_console_is_delivered_on_connect(broker: ConsoleBroker) -> None:
    await broker.submit([command_for(USER_A, "queued")])
    async with serve_gateway(settings(), broker) as gw, Console.connect(gw.url, token_for(USER_A)) as a:
        await a.welcomed()
        assert (await a.next_command())["command_id"] == "queued"


async def test_a_command_queued_without_a_console_expires_as_lost(broker_factory: BrokerFactory) -> None:
    clock = FakeClock()
    broker = await broker_factory(clock=clock)
    async with serve_gateway(settings(), broker, clock=clock):
        await broker.submit([ConsoleCommand.set_status(USER_A, STATUS_BREAK, command_id="nobody", issued_at=clock(),
                                                       timeout=timedelta(seconds=20))])
        clock.advance(21)
        [lost] = await events_until(broker, 1)
        assert (lost.command_id, lost.outcome) == ("nobody", "lost")
        assert lost.reason == "no console connected for this agent within 20 s"


async def test_an_unanswered_command_is_sent_again_after_a_reconnect(broker: ConsoleBroker) -> None:
    async with serve_gateway(settings(), broker) as gw:
        async with Console.connect(gw.url, token_for(USER_A)) as a:
            await a.welcomed()
            await broker.submit([command_for(USER_A, "in-flight")])
            assert (await a.next_command())["command_id"] == "in-flight"
        async with Console.connect(gw.url, token_for(USER_A)) as again:  # a fresh token: tokens are single-use
            await again.welcomed()
            assert (await again.next_command())["command_id"] == "in-flight"


async def test_nothing_is_lost_when_the_gateway_restarts(broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    async with serve_gateway(settings(), broker) as first, Console.connect(first.url, token_for(USER_A)) as a:
        await a.welcomed()
        await broker.submit([command_for(USER_A, "across-restart")])
        assert (await a.next_command())["command_id"] == "across-restart"
        first.server.should_exit = True
        code, _ = await a.closed()
        assert code in (CloseCode.GOING_AWAY, 1012)  # 1012: uvicorn's "service restart" on shutdown
    restarted_broker = await broker_factory()  # a new process's broker on the same store
    async with serve_gateway(settings(), restarted_broker) as second, Console.connect(second.url, token_for(USER_A)) as a:
        await a.welcomed()
        command = await a.next_command()
        assert command["command_id"] == "across-restart"
        await a.ack(command, status={"status_id": STATUS_BREAK})
        [outcome] = await events_until(broker, 1)
        assert outcome.outcome == "applied"


@pytest.mark.parametrize(
    ("hello", "code"),
    [
        (lambda: {"type": "hello", "protocol": 1, "token": token_for(USER_A, secret=OTHER_SECRET)}, CloseCode.TOKEN_INVALID),
        (lambda: {"type": "hello", "protocol": 1,
                  "token": token_for(USER_A, lifetime=timedelta(minutes=1), now=FakeClock().advance(-3600))},
         CloseCode.TOKEN_EXPIRED),
        (lambda: {"type": "hello", "protocol": 1, "token": "forged.token.value"}, CloseCode.TOKEN_INVALID),
        (lambda: {"type": "hello", "protocol": 2, "token": token_for(USER_A)}, CloseCode.PROTOCOL_UNSUPPORTED),
        (lambda: {"type": "ping"}, CloseCode.BAD_MESSAGE),
    ],
    ids=["forged", "expired", "garbage", "protocol-2", "no-hello-first"],
)
async def test_a_bad_hello_is_closed_with_its_code(broker: ConsoleBroker, hello, code: CloseCode) -> None:
    async with serve_gateway(settings(), broker) as gw, Console.connect(gw.url) as console:
        await console.send(hello())
        assert (await console.closed())[0] == code


async def test_a_replayed_token_is_refused(broker: ConsoleBroker) -> None:
    token = token_for(USER_A)
    async with serve_gateway(settings(), broker) as gw:
        async with Console.connect(gw.url, token) as first:
            await first.welcomed()
            async with Console.connect(gw.url, token) as replay:
                assert await replay.closed() == (CloseCode.TOKEN_REPLAYED, "token already used; fetch a new one")


async def test_silence_after_connecting_is_closed(broker: ConsoleBroker) -> None:
    async with serve_gateway(settings(auth_timeout_seconds=0.3), broker) as gw, Console.connect(gw.url) as console:
        assert (await console.closed())[0] == CloseCode.AUTH_TIMEOUT


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ('{"type": "ping", "padding": "' + "x" * 5000 + '"}', CloseCode.MESSAGE_TOO_BIG),
        ('{"type": "subscribe_all"}', CloseCode.UNKNOWN_TYPE),
        ("not json", CloseCode.BAD_MESSAGE),
        ('{"type": "ack", "command_id": "x", "outcome": "maybe"}', CloseCode.BAD_MESSAGE),
        ('{"type": "hello", "protocol": 1, "token": "again"}', CloseCode.BAD_MESSAGE),
    ],
    ids=["oversized", "unknown-type", "not-json", "bad-field", "second-hello"],
)
async def test_a_bad_message_is_closed_with_its_code(broker: ConsoleBroker, message: str, code: CloseCode) -> None:
    async with serve_gateway(settings(), broker) as gw, Console.connect(gw.url, token_for(USER_A)) as console:
        await console.welcomed()
        await console.ws.send(message)
        assert (await console.closed())[0] == code


async def test_too_frequent_messages_are_closed(broker: ConsoleBroker) -> None:
    async with serve_gateway(settings(burst=5, messages_per_second=0.1), broker) as gw, \
            Console.connect(gw.url, token_for(USER_A)) as console:
        await console.welcomed()
        for _ in range(10):
            await console.send({"type": "ping"})
        assert await console.closed() == (CloseCode.RATE_LIMITED, "too many messages")


async def test_a_renewal_extends_the_connection_and_must_be_fresh_and_the_same_user(broker: ConsoleBroker) -> None:
    async with serve_gateway(settings(), broker) as gw, Console.connect(gw.url, token_for(USER_A)) as console:
        await console.welcomed()
        fresh = token_for(USER_A, lifetime=timedelta(minutes=30))
        await console.send({"type": "renew", "token": fresh})
        assert (await console.receive())["type"] == "renewed"
        await console.send({"type": "renew", "token": fresh})
        assert (await console.closed())[0] == CloseCode.TOKEN_REPLAYED
    async with serve_gateway(settings(), broker) as gw, Console.connect(gw.url, token_for(USER_A)) as console:
        await console.welcomed()
        await console.send({"type": "renew", "token": token_for(USER_B)})
        assert (await console.closed())[0] == CloseCode.WRONG_USER


async def test_a_connection_whose_token_expires_unrenewed_is_closed(broker: ConsoleBroker) -> None:
    short = settings(clock_leeway=timedelta(0))
    async with serve_gateway(short, broker) as gw, \
            Console.connect(gw.url, token_for(USER_A, lifetime=timedelta(seconds=2))) as console:
        await console.welcomed()
        assert await console.closed() == (CloseCode.TOKEN_EXPIRED, "token expired; renew before it expires")


async def test_a_user_with_too_many_consoles_loses_the_oldest(broker: ConsoleBroker) -> None:
    async with serve_gateway(settings(max_consoles_per_user=2), broker) as gw:
        async with Console.connect(gw.url, token_for(USER_A)) as oldest, \
                Console.connect(gw.url, token_for(USER_A)) as second:
            await oldest.welcomed()
            await second.welcomed()
            async with Console.connect(gw.url, token_for(USER_A)) as third:
                await third.welcomed()
                assert (await oldest.closed())[0] == CloseCode.REPLACED
                await third.send({"type": "ping"})
                assert (await third.receive())["type"] == "pong"


async def test_an_origin_not_allowed_is_refused_at_the_handshake(broker: ConsoleBroker) -> None:
    allowed = settings(allowed_origins=frozenset({"https://acme.lightning.force.com"}))
    async with serve_gateway(allowed, broker) as gw:
        with pytest.raises(InvalidStatus) as refused:
            async with Console.connect(gw.url, origin="https://evil.example"):
                pass
        assert refused.value.response.status_code == 403
        async with Console.connect(gw.url, token_for(USER_A), origin="https://acme.lightning.force.com") as console:
            await console.welcomed()


async def test_nothing_secret_is_logged(broker: ConsoleBroker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [token_for(USER_A), token_for(USER_A, secret=OTHER_SECRET), token_for(USER_B)]
    async with serve_gateway(settings(), broker) as gw:
        async with Console.connect(gw.url, tokens[0]) as good:
            await good.welcomed()
            await good.send({"type": "renew", "token": tokens[2]})
            await good.closed()
        async with Console.connect(gw.url, tokens[1]) as forged:
            await forged.closed()
        async with Console.connect(gw.url, tokens[0]) as replay:
            await replay.closed()
        health = gw.gateway.health()
    logged = caplog.text + repr(health)
    assert "closed (4008" in logged and "closed (4003" in logged and "closed (4004" in logged
    for secret in (SECRET, OTHER_SECRET):
        assert secret.get_secret_value() not in logged
    for token in tokens:
        for part in token.split("."):
            assert part not in logged


async def test_health_counts_connections(broker: ConsoleBroker) -> None:
    async with serve_gateway(settings(), broker) as gw, Console.connect(gw.url, token_for(USER_A)) as console:
        await console.welcomed()
        health = gw.gateway.health()
        assert health["connections"] == 1 and health["users"] == 1 and health["status"] == "ok"
