"""Helpers for the console channel's tests: secrets, tokens, brokers and a real gateway on a loopback port.

`broker` runs every test that uses it against the in-process broker and, when PostgreSQL answers at
PRESENCE_SYNC_TEST_PG_URL, against the PostgreSQL broker in a database of its own (created and
dropped here). `serve_gateway` starts the gateway app under uvicorn on a free port, in the test's
own event loop, so tests talk to it over real WebSocket connections.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import psycopg
import pytest
import uvicorn
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from presence_sync.connectors.console.broker import ConsoleBroker, InProcessBroker
from presence_sync.connectors.console.gateway import GatewaySettings, create_gateway_app
from presence_sync.connectors.console.tokens import mint_token

PG_URL = os.environ.get("PRESENCE_SYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

SECRET = SecretStr("test-gateway-secret-0123456789-abcdefghijklmnop")
OTHER_SECRET = SecretStr("another-org-secret-0123456789-abcdefghijklmnop")
ORG = "00D000000000001EAA"
USER_A = "005000000000001AAA"
USER_B = "005000000000002AAA"
STATUS_BREAK = "0N5000000000003CAA"
DEADLINE = 20.0  # seconds: generous, for an oversubscribed 2-core machine


class FakeClock:
    """Time the test moves by hand (broker expiry, token checks)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def token_for(user_id: str = USER_A, *, secret: SecretStr = SECRET, org_id: str = ORG, now: datetime | None = None,
              lifetime: timedelta = timedelta(minutes=15)) -> str:
    return mint_token(secret, user_id=user_id, org_id=org_id, now=now, lifetime=lifetime)


def settings(**overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {"secrets": (SECRET,), "sweep_seconds": 0.5}
    values.update(overrides)
    return GatewaySettings(**values)


# ---- brokers


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@cache
def postgres_unreachable() -> str | None:
    try:
        with psycopg.connect(_libpq(PG_URL), connect_timeout=3):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL not reachable at {PG_URL.rsplit('@', 1)[-1]}: {str(error).strip()}"


@asynccontextmanager
async def postgres_database(prefix: str = "ps_console") -> AsyncIterator[str]:
    """A database of its own for one test (`<prefix>_<random>`), dropped afterwards; yields its libpq URL."""
    reason = postgres_unreachable()
    if reason:
        pytest.skip(reason)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _libpq(PG_URL)
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


BrokerFactory = Callable[..., Any]


@pytest.fixture(params=["memory", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def broker_factory(request: pytest.FixtureRequest) -> AsyncIterator[BrokerFactory]:
    """`await broker_factory(clock=...)`: brokers of the parametrised kind sharing one backing store."""
    opened: list[ConsoleBroker] = []
    if request.param == "memory":
        shared: dict[str, InProcessBroker] = {}

        async def make_memory(**options: Any) -> ConsoleBroker:
            # One process, one broker object: "another broker" is the same exchange.
            if "broker" not in shared:
                shared["broker"] = InProcessBroker(**options)
            return shared["broker"]

        yield make_memory
        return
    from presence_sync.connectors.console.postgres_broker import PostgresBroker

    async with postgres_database() as url:

        async def make_postgres(**options: Any) -> ConsoleBroker:
            broker = await PostgresBroker.open(url, **options)
            opened.append(broker)
            return broker

        try:
            yield make_postgres
        finally:
            for broker in opened:
                await broker.close()


@pytest.fixture
async def broker(broker_factory: BrokerFactory) -> ConsoleBroker:
    return await broker_factory()


# ---- a gateway on a loopback port


def free_socket(port: int = 0) -> socket.socket:
    """A loopback socket on `port` (0: a free one); a restarted gateway takes its predecessor's port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class RunningGateway:
    def __init__(self, url: str, server: uvicorn.Server, app: Any) -> None:
        self.url = url
        self.server = server
        self.app = app

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway


@asynccontextmanager
async def serve_gateway(gateway_settings: GatewaySettings, broker: ConsoleBroker, *, port: int = 0,
                        **options: Any) -> AsyncIterator[RunningGateway]:
    app = create_gateway_app(gateway_settings, broker, **options)
    sock = free_socket(port)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws_max_size=1 << 20, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(DEADLINE):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield RunningGateway(f"ws://127.0.0.1:{sock.getsockname()[1]}/console", server, app)
    finally:
        server.should_exit = True
        await task
        sock.close()


class Console:
    """A test's console: a real WebSocket client speaking the protocol."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, token: str | None = None, **options: Any) -> AsyncIterator[Console]:
        async with connect(url, open_timeout=DEADLINE, **options) as ws:
            console = cls(ws)
            if token is not None:
                await console.send({"type": "hello", "protocol": 1, "token": token, "client": "test"})
            yield console

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        async with asyncio.timeout(DEADLINE):
            return json.loads(await self.ws.recv())

    async def welcomed(self) -> dict[str, Any]:
        message = await self.receive()
        assert message["type"] == "welcome", message
        return message

    async def next_command(self) -> dict[str, Any]:
        while True:
            message = await self.receive()
            if message["type"] == "command":
                return message

    async def closed(self) -> tuple[int, str]:
        """Read until the gateway closes; the close code and reason."""
        try:
            async with asyncio.timeout(DEADLINE):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as closed:
            frame = closed.rcvd
            return (frame.code, frame.reason) if frame else (1006, "")
        raise AssertionError("unreachable")

    async def ack(self, command: dict[str, Any], outcome: str = "applied", **fields: Any) -> None:
        await self.send({"type": "ack", "command_id": command["command_id"], "outcome": outcome, **fields})


async def events_until(broker: ConsoleBroker, count: int, after: int = 0) -> list[Any]:
    """The first `count` events past `after`, waiting for them (generous deadline, no fixed sleeps)."""
    async with asyncio.timeout(DEADLINE):
        while True:
            events = await broker.read_events(after)
            if len(events) >= count:
                return events
            await broker.wait_for_events(events[-1].seq if events else after, timeout=1.0)
