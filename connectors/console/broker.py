"""The broker between the sync and the console gateway: commands one way, outcomes and pushes back.

The sync side puts commands (`submit`) and reads what became of them and what consoles pushed
(`read_events` after a cursor it keeps, `wait_for_events` to wake up within one round trip). The
gateway side registers its connections, takes the commands for the users connected to it
(`claim_commands`), and puts acknowledgements (`record_ack`) and pushed status changes
(`record_push`). Either side may turn overdue commands into `lost` outcomes (`expire_overdue`;
`read_events` does it first).

A command's life: `pending` (queued) -> `delivered` (sent to one console of its user) -> `applied`,
`failed` or `ignored` (acknowledged), or `lost` at `expires_at` (never delivered: no console; or
delivered and never acknowledged). It stays in the broker until then, so a gateway restart or a
console reconnecting (to any replica) loses nothing: a command delivered to a connection that has
since closed is delivered again, and the console's applier ignores a command id it already handled.
Of several undelivered commands for one user only the newest is delivered; the older ones end
`ignored` with reason `superseded` (only the latest matters). A submit of a command id the broker
already holds is ignored, so a sync window that replays its last tick applies nothing twice. A late
acknowledgement of a command already recorded `lost` is still recorded (the event tells the truth).

Implementations: `InProcessBroker` (one process: the embedded demo and tests; nothing survives the
process) and `PostgresBroker` (`postgres_broker.py`: tables + LISTEN/NOTIFY; gateways and sync
windows in separate processes and machines).

    broker = InProcessBroker()
    await broker.submit([ConsoleCommand.set_status("005...", "0N5...", "On_Break", timeout=timedelta(seconds=30))])
    events = await broker.read_events(after=cursor)       # CommandOutcome / StatusPush, each with .seq
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from presence_sync.connectors.console.protocol import Ack, ConsoleStatus, StatusChanged, iso, salesforce_id_18

Action = Literal["set_status", "logout"]
Outcome = Literal["applied", "failed", "ignored", "lost"]
ACKNOWLEDGED: frozenset[str] = frozenset({"applied", "failed", "ignored"})
DEFAULT_ACK_TIMEOUT = timedelta(seconds=30)
# A connection whose gateway has not said it is alive for this long is gone (its gateway died).
CONNECTION_STALE_AFTER = timedelta(seconds=60)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ConsoleCommand:
    """One Salesforce presence change for one agent's console to apply.

    Example:
        ConsoleCommand.set_status("005xx0000012345AAA", "0N5xx0000000001AAA", "On_Break")
        ConsoleCommand.logout("005xx0000012345AAA", timeout=timedelta(seconds=20))
    """

    command_id: str
    user_id: str
    action: Action
    issued_at: datetime
    expires_at: datetime
    status_id: str | None = None
    status: str | None = None  # the status's developer name, for people reading logs and audits
    # Compare-and-set: the developer names the console may show for the command to apply (None in
    # the tuple: logged out of Omni). Showing anything else, the agent changed it after the sync
    # decided, and the console acknowledges `ignored`, `not as expected`. None: apply whatever it shows.
    if_showing: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.command_id) <= 64:
            raise ValueError(f"command_id must be 1 to 64 characters; got {self.command_id!r}")
        object.__setattr__(self, "user_id", salesforce_id_18(self.user_id))
        if self.action == "set_status":
            if not self.status_id:
                raise ValueError("a set_status command needs the ServicePresenceStatus Id (status_id)")
            object.__setattr__(self, "status_id", salesforce_id_18(self.status_id))
        elif self.action == "logout":
            if self.status_id is not None:
                raise ValueError("a logout command carries no status_id")
        else:
            raise ValueError(f"action must be 'set_status' or 'logout'; got {self.action!r}")
        for name in ("issued_at", "expires_at"):
            moment: datetime = getattr(self, name)
            if moment.tzinfo is None:
                raise ValueError(f"{name} needs a time zone")
            object.__setattr__(self, name, moment.astimezone(UTC))
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        if self.if_showing is not None:
            if not self.if_showing:
                raise ValueError("if_showing needs at least one status (or None for no precondition)")
            object.__setattr__(self, "if_showing", tuple(self.if_showing))

    @classmethod
    def set_status(cls, user_id: str, status_id: str, status: str | None = None, *, command_id: str | None = None,
                   issued_at: datetime | None = None, timeout: timedelta = DEFAULT_ACK_TIMEOUT,
                   if_showing: Sequence[str | None] | None = None) -> ConsoleCommand:
        issued = issued_at or utc_now()
        return cls(command_id or uuid.uuid4().hex, user_id, "set_status", issued, issued + timeout, status_id, status,
                   None if if_showing is None else tuple(if_showing))

    @classmethod
    def logout(cls, user_id: str, *, command_id: str | None = None, issued_at: datetime | None = None,
               timeout: timedelta = DEFAULT_ACK_TIMEOUT, if_showing: Sequence[str | None] | None = None) -> ConsoleCommand:
        issued = issued_at or utc_now()
        return cls(command_id or uuid.uuid4().hex, user_id, "logout", issued, issued + timeout,
                   if_showing=None if if_showing is None else tuple(if_showing))

    def to_message(self) -> dict[str, object]:
        """The `command` frame the gateway sends to the console."""
        message: dict[str, object] = {
            "type": "command",
            "command_id": self.command_id,
            "issued_at": iso(self.issued_at),
            "user_id": self.user_id,
            "action": self.action,
        }
        if self.action == "set_status":
            message["status_id"] = self.status_id
            message["status"] = self.status
        if self.if_showing is not None:
            message["if_showing"] = list(self.if_showing)
        return message


@dataclass(frozen=True)
class CommandOutcome:
    """What became of a command: acknowledged by a console, or `lost` (with the reason) at its expiry."""

    command_id: str
    user_id: str
    outcome: Outcome
    at: datetime
    status: ConsoleStatus | None = None  # after `applied`: what the console shows (None: logged out)
    error: str | None = None  # after `failed`: the console API's error
    reason: str | None = None  # after `ignored` / `lost`: why
    connection_id: str | None = None
    seq: int = 0


@dataclass(frozen=True)
class StatusPush:
    """A status change a console reported (`event` `logout`: the agent left Omni-Channel)."""

    user_id: str
    event: Literal["status_changed", "logout"]
    at: datetime  # when the console saw it
    status: ConsoleStatus | None
    reason: str | None
    command_id: str | None  # the command of ours that caused it, if any
    connection_id: str
    received_at: datetime
    seq: int = 0


ConsoleEvent = CommandOutcome | StatusPush


@dataclass(frozen=True)
class ConsoleConnection:
    """One authenticated console connection on one gateway."""

    connection_id: str
    user_id: str
    org_id: str
    gateway_id: str
    connected_at: datetime


class CommandListener(ABC):
    """Tells a gateway which users have new commands (from any sync process)."""

    @abstractmethod
    async def wait(self, timeout: float) -> set[str]:
        """User ids with new commands since the last call; empty after `timeout` seconds of nothing."""

    @abstractmethod
    async def close(self) -> None: ...


class ConsoleBroker(ABC):
    """The exchange between sync windows and console gateways (see the module docstring)."""

    # ---- the sync side

    @abstractmethod
    async def submit(self, commands: Sequence[ConsoleCommand]) -> int:
        """Queue commands until acknowledged or expired; returns how many were new (repeats are ignored)."""

    @abstractmethod
    async def read_events(self, after: int = 0, *, limit: int = 1000,
                          user_ids: Collection[str] | None = None) -> list[ConsoleEvent]:
        """Outcomes and pushes with `seq > after`, in order (expires overdue commands first)."""

    @abstractmethod
    async def wait_for_events(self, after: int, timeout: float) -> bool:
        """Return as soon as events past `after` may exist (True), or after `timeout` seconds (False)."""

    @abstractmethod
    async def connected_consoles(self) -> dict[str, int]:
        """Open console connections per user id, over every gateway."""

    # ---- the gateway side

    @abstractmethod
    async def open_connection(self, connection: ConsoleConnection) -> None: ...

    @abstractmethod
    async def close_connection(self, connection_id: str) -> None: ...

    @abstractmethod
    async def keep_alive(self, gateway_id: str) -> None:
        """The gateway's connections are still open (a gateway that dies stops saying so)."""

    @abstractmethod
    async def claim_commands(self, user_id: str, connection_id: str) -> list[ConsoleCommand]:
        """The commands to send to this connection now, oldest first; marks them delivered to it."""

    @abstractmethod
    async def claimable_users(self, user_ids: Collection[str]) -> set[str]:
        """Which of these users have commands `claim_commands` would hand out now (one query for a sweep)."""

    @abstractmethod
    async def record_ack(self, connection: ConsoleConnection, ack: Ack) -> bool:
        """Record a console's acknowledgement; False when it is not for a live command of this user."""

    @abstractmethod
    async def record_push(self, connection: ConsoleConnection, push: StatusChanged) -> None: ...

    @abstractmethod
    async def claim_token(self, token_id: str, expires_at: datetime) -> bool:
        """True the first time a token id is presented; False for a replay (remembered until expiry)."""

    @abstractmethod
    def command_listener(self) -> CommandListener: ...

    # ---- either side

    @abstractmethod
    async def expire_overdue(self) -> int:
        """Record `lost` for every command past its expiry without an acknowledgement; returns how many."""

    async def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections."""


def lost_reason(delivered_at: datetime | None, connection_id: str | None, issued_at: datetime,
                expires_at: datetime) -> str:
    """The words the audit, `status` and `validate` show for a lost command."""
    waited = int((expires_at - issued_at).total_seconds())
    if delivered_at is None:
        return f"no console connected for this agent within {waited} s"
    return f"delivered to console {connection_id} at {iso(delivered_at)}; no acknowledgement within {waited} s"


def outcome_from_ack(command: ConsoleCommand, connection: ConsoleConnection, ack: Ack, at: datetime) -> CommandOutcome:
    return CommandOutcome(
        command_id=command.command_id,
        user_id=command.user_id,
        outcome=ack.outcome,
        at=at,
        status=ack.status if ack.outcome != "failed" else None,
        error=(ack.error or "the console gave no error text") if ack.outcome == "failed" else None,
        reason=ack.reason,
        connection_id=connection.connection_id,
    )


def push_from_message(connection: ConsoleConnection, push: StatusChanged, received_at: datetime) -> StatusPush:
    return StatusPush(
        user_id=connection.user_id,
        event=push.event,
        at=push.at,
        status=push.status if push.event == "status_changed" else None,
        reason=push.reason,
        command_id=push.command_id,
        connection_id=connection.connection_id,
        received_at=received_at,
    )


class Signal:
    """Wakes coroutines waiting in any thread's event loop (the embedded demo may run several loops)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def notify_all(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, set()
        for loop, future in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, timeout: float, ready: Callable[[], bool]) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._lock:
            self._waiters.add(entry)
        try:
            if ready():
                return True
            try:
                await asyncio.wait_for(future, timeout)
            except TimeoutError:
                return ready()
            return True
        finally:
            with self._lock:
                self._waiters.discard(entry)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class _CommandRecord:
    command: ConsoleCommand
    state: Literal["pending", "delivered", "applied", "failed", "ignored", "lost"] = "pending"
    delivered_to: str | None = None
    delivered_at: datetime | None = None


class QueuedListener(CommandListener):
    """A listener fed by its broker (`notify`), from any thread; closing tells the broker to forget it."""

    def __init__(self, on_close: Callable[[QueuedListener], None]) -> None:
        self._on_close = on_close
        self._users: set[str] = set()
        self._lock = threading.Lock()
        self._signal = Signal()

    def notify(self, user_ids: Iterable[str]) -> None:
        with self._lock:
            self._users.update(user_ids)
        self._signal.notify_all()

    async def wait(self, timeout: float) -> set[str]:
        await self._signal.wait(timeout, lambda: bool(self._users))
        with self._lock:
            users, self._users = self._users, set()
        return users

    async def close(self) -> None:
        self._on_close(self)


@dataclass
class InProcessBroker(ConsoleBroker):
    """The broker for one process (the embedded demo, tests): thread-safe, nothing survives the process.

    Example:
        broker = InProcessBroker()
        app = create_gateway(settings, broker)     # the gateway and the sync share the object
    """

    clock: Clock = utc_now
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    retention: timedelta = timedelta(hours=6)
    _commands: dict[str, _CommandRecord] = field(default_factory=dict, init=False, repr=False)
    _open_by_user: dict[str, dict[str, _CommandRecord]] = field(default_factory=dict, init=False, repr=False)
    _events: list[ConsoleEvent] = field(default_factory=list, init=False, repr=False)
    # When each event was recorded, by this broker's clock: retention counts from there, never from an
    # event's `at` (a push carries the console's clock, which may be far behind ours).
    _recorded_at: list[datetime] = field(default_factory=list, init=False, repr=False)
    _dropped_events: int = field(default=0, init=False, repr=False)
    _next_forget: datetime = field(default=datetime.min.replace(tzinfo=UTC), init=False, repr=False)
    _connections: dict[str, ConsoleConnection] = field(default_factory=dict, init=False, repr=False)
    _tokens: dict[str, datetime] = field(default_factory=dict, init=False, repr=False)
    _listeners: set[QueuedListener] = field(default_factory=set, init=False, repr=False)
    _events_signal: Signal = field(default_factory=Signal, init=False, repr=False)

    # ---- the sync side

    async def submit(self, commands: Sequence[ConsoleCommand]) -> int:
        new_users: set[str] = set()
        added = 0
        with self._lock:
            for command in commands:
                if command.command_id not in self._commands:
                    record = _CommandRecord(command)
                    self._commands[command.command_id] = record
                    self._open_by_user.setdefault(command.user_id, {})[command.command_id] = record
                    new_users.add(command.user_id)
                    added += 1
            listeners = list(self._listeners)
        for listener in listeners:
            listener.notify(new_users)
        return added

    async def read_events(self, after: int = 0, *, limit: int = 1000,
                          user_ids: Collection[str] | None = None) -> list[ConsoleEvent]:
        await self.expire_overdue()
        wanted = {salesforce_id_18(user) for user in user_ids} if user_ids is not None else None
        found: list[ConsoleEvent] = []
        with self._lock:
            for event in self._events[max(0, after - self._dropped_events):]:
                if wanted is None or event.user_id in wanted:
                    found.append(event)
                    if len(found) == limit:
                        break
        return found

    async def wait_for_events(self, after: int, timeout: float) -> bool:
        return await self._events_signal.wait(timeout, lambda: self._last_seq() > after)

    def _last_seq(self) -> int:
        return self._dropped_events + len(self._events)

    async def connected_consoles(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock:
            for connection in self._connections.values():
                counts[connection.user_id] = counts.get(connection.user_id, 0) + 1
        return counts

    # ---- the gateway side

    async def open_connection(self, connection: ConsoleConnection) -> None:
        with self._lock:
            self._connections[connection.connection_id] = connection

    async def close_connection(self, connection_id: str) -> None:
        with self._lock:
            self._connections.pop(connection_id, None)

    async def keep_alive(self, gateway_id: str) -> None:
        """Nothing to do: connections live in this process, so they end with it."""

    async def claim_commands(self, user_id: str, connection_id: str) -> list[ConsoleCommand]:
        now = self.clock()
        with self._lock:
            claimable = sorted(
                (record for record in self._open_by_user.get(user_id, {}).values() if self._claimable(record, now)),
                key=lambda record: record.command.issued_at,
            )
            if not claimable:
                return []
            newest = claimable[-1]
            for older in claimable[:-1]:
                self._close(older, "ignored")
                self._append(CommandOutcome(
                    older.command.command_id, user_id, "ignored", now,
                    reason=f"superseded by command {newest.command.command_id} before a console acknowledged it",
                ))
            newest.state, newest.delivered_to, newest.delivered_at = "delivered", connection_id, now
            return [newest.command]

    async def claimable_users(self, user_ids: Collection[str]) -> set[str]:
        now = self.clock()
        with self._lock:
            return {
                user_id for user_id in user_ids
                if any(self._claimable(record, now) for record in self._open_by_user.get(user_id, {}).values())
            }

    def _claimable(self, record: _CommandRecord, now: datetime) -> bool:
        return record.command.expires_at > now and (
            record.state == "pending" or (record.state == "delivered" and record.delivered_to not in self._connections)
        )

    async def record_ack(self, connection: ConsoleConnection, ack: Ack) -> bool:
        with self._lock:
            record = self._commands.get(ack.command_id)
            if record is None or record.command.user_id != connection.user_id or record.state in ACKNOWLEDGED:
                return False
            self._close(record, ack.outcome)
            self._append(outcome_from_ack(record.command, connection, ack, self.clock()))
            return True

    async def record_push(self, connection: ConsoleConnection, push: StatusChanged) -> None:
        with self._lock:
            self._append(push_from_message(connection, push, self.clock()))

    async def claim_token(self, token_id: str, expires_at: datetime) -> bool:
        now = self.clock()
        with self._lock:
            if len(self._tokens) > 1024:
                self._tokens = {key: until for key, until in self._tokens.items() if until > now}
            seen = self._tokens.get(token_id)
            if seen is not None and seen > now:
                return False
            self._tokens[token_id] = expires_at
            return True

    def command_listener(self) -> CommandListener:
        listener = QueuedListener(self._listeners.discard)
        with self._lock:
            self._listeners.add(listener)
        return listener

    # ---- either side

    async def expire_overdue(self) -> int:
        now = self.clock()
        expired = 0
        with self._lock:
            overdue = [record for records in self._open_by_user.values() for record in records.values()
                       if record.command.expires_at <= now]
            for record in sorted(overdue, key=lambda record: record.command.expires_at):
                command = record.command
                self._close(record, "lost")
                reason = lost_reason(record.delivered_at, record.delivered_to, command.issued_at, command.expires_at)
                self._append(CommandOutcome(command.command_id, command.user_id, "lost", command.expires_at,
                                            reason=reason, connection_id=record.delivered_to))
                expired += 1
            if now >= self._next_forget:
                self._forget_before(now - self.retention)
                self._next_forget = now + self.retention / 10
        return expired

    def _close(self, record: _CommandRecord, state: Outcome) -> None:
        record.state = state
        self._open_by_user.get(record.command.user_id, {}).pop(record.command.command_id, None)

    def _forget_before(self, horizon: datetime) -> None:
        """Drop finished commands and events older than the retention (a sync reads far more often)."""
        stale = [key for key, record in self._commands.items()
                 if record.state not in ("pending", "delivered") and record.command.expires_at < horizon]
        for key in stale:
            del self._commands[key]
        keep_from = 0
        while keep_from < len(self._events) and self._recorded_at[keep_from] < horizon:
            keep_from += 1
        if keep_from:
            del self._events[:keep_from]
            del self._recorded_at[:keep_from]
            self._dropped_events += keep_from

    def _append(self, event: ConsoleEvent) -> None:
        # Called with the lock held; seq numbers every event ever appended, from 1.
        self._events.append(replace(event, seq=self._last_seq() + 1))
        self._recorded_at.append(self.clock())
        self._events_signal.notify_all()
