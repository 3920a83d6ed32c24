"""The console gateway: an ASGI app that agents' console components keep a WebSocket open to.

Each connection proves with a token (`tokens.py`) that it is one Salesforce user's console, and
from then on receives that user's commands and nothing else; its acknowledgements and pushed status
changes go to the broker (`broker.py`), where the sync reads them. The protocol, its limits and its
close codes are in `protocol.py`; `presence-sync gateway` serves this app with uvicorn.

Delivery: a user may have several consoles open (tabs, a second browser). A command goes to the
newest of them, once; if that connection closes before acknowledging, the command goes to the next
one (on this or any other replica). Sending it to all of them would have each one apply it.

    settings = GatewaySettings(secrets=[SecretStr(os.environ["PRESENCE_SYNC_GATEWAY_SECRET"])])
    app = create_gateway_app(settings, InProcessBroker())      # uvicorn.run(app, ...)

Nothing secret is logged: tokens are neither logged nor echoed, refusals say why without content.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets as random_source
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from presence_sync.connectors.console.broker import ConsoleBroker, ConsoleConnection, utc_now
from presence_sync.connectors.console.protocol import (
    AUTH_TIMEOUT_SECONDS,
    CONSOLE_PATH,
    HEARTBEAT_SECONDS,
    MAX_CONSOLES_PER_USER,
    MAX_MESSAGE_BYTES,
    MESSAGE_BURST,
    MESSAGES_PER_SECOND,
    PONG,
    PROTOCOL_VERSION,
    Ack,
    CloseCode,
    Hello,
    Ping,
    ProtocolViolation,
    Renew,
    StatusChanged,
    parse_console_message,
    renewed,
    salesforce_id_18,
    welcome,
)
from presence_sync.connectors.console.tokens import CLOCK_LEEWAY, MAX_LIFETIME, TokenClaims, TokenVerifier, check_secret

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
OUTBOX_LIMIT = 1000  # a console this far behind is not reading: close it, it reconnects and catches up


class GatewaySettings(BaseModel):
    """What a gateway needs; `presence-sync gateway` fills it from the environment and options.

    Example:
        GatewaySettings(secrets=[SecretStr(current), SecretStr(previous)], org_ids={"00D..."},
                        allowed_origins={"https://acme.lightning.force.com"})
    """

    model_config = ConfigDict(frozen=True)

    secrets: Annotated[tuple[SecretStr, ...], Field(min_length=1)]
    org_ids: frozenset[str] | None = None  # None: any org whose token verifies (one secret per org anyway)
    allowed_origins: frozenset[str] | None = None  # None: any Origin (the token is what authenticates)
    max_message_bytes: int = MAX_MESSAGE_BYTES
    messages_per_second: float = MESSAGES_PER_SECOND
    burst: int = MESSAGE_BURST
    auth_timeout_seconds: float = AUTH_TIMEOUT_SECONDS
    heartbeat_seconds: int = HEARTBEAT_SECONDS
    max_consoles_per_user: int = MAX_CONSOLES_PER_USER
    max_token_lifetime: timedelta = MAX_LIFETIME
    clock_leeway: timedelta = CLOCK_LEEWAY
    sweep_seconds: float = 5.0
    gateway_id: str = Field(default_factory=lambda: f"gw-{random_source.token_hex(4)}")

    @field_validator("secrets")
    @classmethod
    def _strong(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        return tuple(check_secret(secret) for secret in value)

    @field_validator("org_ids")
    @classmethod
    def _org_ids(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        if value is None:
            return None
        for org_id in value:
            if not salesforce_id_18(org_id).startswith("00D"):
                raise ValueError(f"{org_id!r} is not an org id (00D..., Setup -> Company Information)")
        return frozenset(salesforce_id_18(org_id) for org_id in value)

    def __repr_args__(self) -> Any:
        # SecretStr hides values already; keep the count visible and nothing else of them.
        for name, value in super().__repr_args__():
            yield (name, f"<{len(value)} hidden>") if name == "secrets" else (name, value)


class _RateLimit:
    """A token bucket: `burst` messages at once, refilled at `per_second`."""

    def __init__(self, per_second: float, burst: int) -> None:
        self._per_second = per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._per_second)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


_CLOSE = object()


@dataclass(eq=False)
class _Console:
    connection: ConsoleConnection
    websocket: WebSocket
    token_expires_at: datetime
    outbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    close_code: int | None = None
    close_reason: str = ""

    def send(self, message: dict[str, Any]) -> None:
        if self.close_code is not None:
            return
        if self.outbox.qsize() >= OUTBOX_LIMIT:
            self.close(CloseCode.RATE_LIMITED, "console not reading its messages")
            return
        self.outbox.put_nowait(message)

    def close(self, code: int, reason: str) -> None:
        """Close after what is already queued (one writer sends every frame, the close frame too)."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.outbox.put_nowait(_CLOSE)


class ConsoleGateway:
    """The connections of one gateway process, and the loop that hands them their commands."""

    def __init__(self, settings: GatewaySettings, broker: ConsoleBroker, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.broker = broker
        self._clock = clock
        self._verifier = TokenVerifier(
            settings.secrets,
            org_ids=settings.org_ids,
            max_lifetime=settings.max_token_lifetime,
            leeway=settings.clock_leeway,
            clock=clock,
        )
        self._consoles: dict[str, dict[str, _Console]] = {}  # user id -> connection id -> console, oldest first
        self._user_locks: dict[str, asyncio.Lock] = {}
        self.closes: Counter[int] = Counter()
        self.counts: Counter[str] = Counter()

    # ---- lifecycle

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the dispatcher while the app serves; on the way out close every console (1001)."""
        dispatcher = asyncio.create_task(self._dispatch(), name=f"console-dispatch-{self.settings.gateway_id}")
        try:
            yield
        finally:
            for consoles in list(self._consoles.values()):
                for console in list(consoles.values()):
                    console.close(CloseCode.GOING_AWAY, "gateway shutting down")
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher

    @property
    def connection_count(self) -> int:
        return sum(len(consoles) for consoles in self._consoles.values())

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "gateway_id": self.settings.gateway_id,
            "connections": self.connection_count,
            "users": len(self._consoles),
            "closes": {str(code): count for code, count in sorted(self.closes.items())},
            "counts": dict(self.counts),
        }

    # ---- one connection

    async def serve(self, websocket: WebSocket) -> None:
        origin = websocket.headers.get("origin")
        if self.settings.allowed_origins is not None and origin not in self.settings.allowed_origins:
            logger.warning("console connection refused: origin %r is not allowed", origin)
            self.counts["origin_refused"] += 1
            await websocket.close(code=1008)  # before accept: the handshake fails with HTTP 403
            return
        await websocket.accept()
        console: _Console | None = None
        writer: asyncio.Task[None] | None = None
        try:
            claims = await self._authenticate(websocket)
            console = self._register(websocket, claims)
            writer = asyncio.create_task(self._write(console), name=f"console-write-{console.connection.connection_id}")
            await self.broker.open_connection(console.connection)
            console.send(welcome(
                connection_id=console.connection.connection_id,
                user_id=claims.user_id,
                token_expires_at=claims.expires_at,
                heartbeat_seconds=self.settings.heartbeat_seconds,
                max_message_bytes=self.settings.max_message_bytes,
                messages_per_second=self.settings.messages_per_second,
                burst=self.settings.burst,
            ))
            logger.info("console %s connected for user %s", console.connection.connection_id, claims.user_id)
            await self._deliver(claims.user_id)
            await self._converse(console)
        except ProtocolViolation as violation:
            self._refuse(console, websocket, violation)
            if console is None:
                await self._close_unregistered(websocket, violation)
        except WebSocketDisconnect:
            pass
        finally:
            if console is not None:
                await self._unregister(console)
            if writer is not None:
                await writer

    async def _authenticate(self, websocket: WebSocket) -> TokenClaims:
        try:
            first = await asyncio.wait_for(self._receive(websocket), self.settings.auth_timeout_seconds)
        except TimeoutError:
            raise ProtocolViolation(CloseCode.AUTH_TIMEOUT, "no hello within the auth timeout") from None
        if not isinstance(first, Hello):
            raise ProtocolViolation(CloseCode.BAD_MESSAGE, "hello must come first")
        if first.protocol != PROTOCOL_VERSION:
            raise ProtocolViolation(CloseCode.PROTOCOL_UNSUPPORTED, f"this gateway speaks protocol {PROTOCOL_VERSION}")
        return await self._accept_token(first.token)

    async def _accept_token(self, token: str) -> TokenClaims:
        claims = self._verifier.verify(token)
        if not await self.broker.claim_token(claims.token_id, claims.expires_at + self.settings.clock_leeway):
            raise ProtocolViolation(CloseCode.TOKEN_REPLAYED, "token already used; fetch a new one")
        return claims

    async def _converse(self, console: _Console) -> None:
        limit = _RateLimit(self.settings.messages_per_second, self.settings.burst)
        while True:
            remaining = (console.token_expires_at + self.settings.clock_leeway - self._clock()).total_seconds()
            if remaining <= 0:
                raise ProtocolViolation(CloseCode.TOKEN_EXPIRED, "token expired; renew before it expires")
            try:
                message = await asyncio.wait_for(self._receive(console.websocket), remaining)
            except TimeoutError:
                continue  # the loop's check closes it
            if not limit.allow():
                raise ProtocolViolation(CloseCode.RATE_LIMITED, "too many messages")
            self.counts[message.type] += 1
            if isinstance(message, Ack):
                if not await self.broker.record_ack(console.connection, message):
                    self.counts["ack_unmatched"] += 1
                    logger.debug("ack for %s matched no open command of user %s", message.command_id,
                                 console.connection.user_id)
            elif isinstance(message, StatusChanged):
                await self.broker.record_push(console.connection, message)
            elif isinstance(message, Renew):
                claims = self._verifier.verify(message.token)
                if (claims.user_id, claims.org_id) != (console.connection.user_id, console.connection.org_id):
                    raise ProtocolViolation(CloseCode.WRONG_USER, "renewal token for another user")
                await self._accept_token(message.token)
                console.token_expires_at = claims.expires_at
                console.send(renewed(claims.expires_at))
            elif isinstance(message, Ping):
                console.send(PONG)
            else:  # a second hello
                raise ProtocolViolation(CloseCode.BAD_MESSAGE, "already authenticated")

    async def _receive(self, websocket: WebSocket) -> Hello | Ack | StatusChanged | Renew | Ping:
        frame = await websocket.receive()
        if frame["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(frame.get("code", 1000))
        if frame.get("text") is not None:
            return parse_console_message(frame["text"], max_bytes=self.settings.max_message_bytes)
        raise ProtocolViolation(CloseCode.BAD_MESSAGE, "text frames only")

    async def _write(self, console: _Console) -> None:
        websocket = console.websocket
        try:
            while True:
                message = await console.outbox.get()
                if message is _CLOSE:
                    await websocket.close(code=console.close_code or 1000, reason=console.close_reason)
                    return
                await websocket.send_text(json.dumps(message, separators=(",", ":")))
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The peer went away (or closed first); the reader sees the disconnect and cleans up.
            return

    def _refuse(self, console: _Console | None, websocket: WebSocket, violation: ProtocolViolation) -> None:
        self.closes[int(violation.code)] += 1
        user = console.connection.user_id if console else "unauthenticated"
        logger.warning("console connection closed (%d %s) for %s", violation.code, violation.reason, user)
        if console is not None:
            console.close(violation.code, violation.reason)

    async def _close_unregistered(self, websocket: WebSocket, violation: ProtocolViolation) -> None:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.close(code=violation.code, reason=violation.reason)

    # ---- registry and delivery

    def _register(self, websocket: WebSocket, claims: TokenClaims) -> _Console:
        connection = ConsoleConnection(
            connection_id=f"{self.settings.gateway_id}-{random_source.token_hex(6)}",
            user_id=claims.user_id,
            org_id=claims.org_id,
            gateway_id=self.settings.gateway_id,
            connected_at=self._clock(),
        )
        console = _Console(connection, websocket, claims.expires_at)
        consoles = self._consoles.setdefault(claims.user_id, {})
        consoles[connection.connection_id] = console
        while len(consoles) > self.settings.max_consoles_per_user:
            oldest = next(iter(consoles.values()))
            consoles.pop(oldest.connection.connection_id)
            self.closes[CloseCode.REPLACED] += 1
            oldest.close(CloseCode.REPLACED, f"more than {self.settings.max_consoles_per_user} consoles for this user")
        return console

    async def _unregister(self, console: _Console) -> None:
        connection = console.connection
        console.close(console.close_code or 1000, console.close_reason)
        consoles = self._consoles.get(connection.user_id, {})
        consoles.pop(connection.connection_id, None)
        if not consoles:
            self._consoles.pop(connection.user_id, None)
        await self.broker.close_connection(connection.connection_id)
        logger.info("console %s of user %s disconnected", connection.connection_id, connection.user_id)
        if consoles:
            await self._deliver(connection.user_id)  # what it had not acknowledged goes to the next console

    async def _deliver(self, user_id: str) -> None:
        lock = self._user_locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            consoles = self._consoles.get(user_id)
            if not consoles:
                self._user_locks.pop(user_id, None)
                return
            newest = next(reversed(consoles.values()))
            for command in await self.broker.claim_commands(user_id, newest.connection.connection_id):
                newest.send(command.to_message())
                self.counts["command"] += 1

    async def _dispatch(self) -> None:
        listener = self.broker.command_listener()
        next_sweep = time.monotonic()
        try:
            while True:
                try:
                    users = await listener.wait(self.settings.sweep_seconds)
                    await self._deliver_all(users)
                    if time.monotonic() >= next_sweep:
                        next_sweep = time.monotonic() + self.settings.sweep_seconds
                        await self._sweep()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A broker hiccup (database restart) must not end delivery for every console.
                    logger.exception("console dispatcher: retrying after an error")
                    await asyncio.sleep(1)
        finally:
            await listener.close()

    async def _sweep(self) -> None:
        """Catch what a notification missed (a broker reconnect) and keep this gateway's connections alive."""
        await self.broker.keep_alive(self.settings.gateway_id)
        await self.broker.expire_overdue()
        await self._deliver_all(await self.broker.claimable_users(list(self._consoles)))

    async def _deliver_all(self, user_ids: Collection[str]) -> None:
        """Claim for these users at once: a broker that commits in groups makes it one round trip."""
        await asyncio.gather(*(self._deliver(user_id) for user_id in user_ids if user_id in self._consoles))


def create_gateway_app(settings: GatewaySettings, broker: ConsoleBroker, *, clock: Clock = utc_now) -> Starlette:
    """The ASGI app: the console WebSocket at `/console`, `GET /healthz` for load balancers."""
    gateway = ConsoleGateway(settings, broker, clock=clock)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse(gateway.health())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with gateway.running():
            yield

    app = Starlette(
        routes=[WebSocketRoute(CONSOLE_PATH, gateway.serve), Route("/healthz", healthz)],
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
