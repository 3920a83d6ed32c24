"""The PostgreSQL broker: console commands, outcomes and pushes in tables, wake-ups by LISTEN/NOTIFY.

PostgreSQL because the production state store already is PostgreSQL: no new service to run, back
up or secure, and a command, its acknowledgement and the sync's cursor can live in one database.
Redis streams would do too, but would be one more stateful service for a few hundred messages a
second at most (10,000 agents), which PostgreSQL handles with room to spare.

Tables (created on first `open`, prefixed `console_`, in the connection's search path):

| table | holds |
|---|---|
| `console_command` | every command until `retention` after it ended; `state` pending/delivered/applied/failed/ignored/lost |
| `console_event` | outcomes and pushes, numbered by `seq`: the sync's cursor. One counter row (`console_event_counter`) hands out `seq` inside the inserting transaction, so events commit in `seq` order and a reader never skips one that commits late |
| `console_connection` | open console connections; each gateway refreshes `last_seen` every sweep, so a dead gateway's connections go stale after `stale_after` and their commands go to other consoles |
| `console_token` | token ids already used, until their expiry (replay protection across replicas) |

Channels: `console_commands` (payload: a user id with new commands) wakes gateways;
`console_events` wakes sync readers. A missed notification costs at most one gateway sweep.

One broker object serves one event loop (its connections are asyncio connections).

    broker = await PostgresBroker.open("postgresql://presence@db/presence")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from presence_sync.connectors.console.broker import (
    CONNECTION_STALE_AFTER,
    Clock,
    CommandListener,
    CommandOutcome,
    ConsoleBroker,
    ConsoleCommand,
    ConsoleConnection,
    ConsoleEvent,
    QueuedListener,
    Signal,
    StatusPush,
    lost_reason,
    outcome_from_ack,
    push_from_message,
    utc_now,
)
from presence_sync.connectors.console.protocol import Ack, ConsoleStatus, StatusChanged, salesforce_id_18

logger = logging.getLogger(__name__)

COMMANDS_CHANNEL = "console_commands"
EVENTS_CHANNEL = "console_events"

SCHEMA = """
CREATE TABLE IF NOT EXISTS console_command (
    command_id   text PRIMARY KEY,
    user_id      text NOT NULL,
    action       text NOT NULL,
    status_id    text,
    status       text,
    issued_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    state        text NOT NULL DEFAULT 'pending',
    delivered_to text,
    delivered_at timestamptz,
    ended_at     timestamptz
);
CREATE INDEX IF NOT EXISTS console_command_open_by_user
    ON console_command (user_id, issued_at) WHERE state IN ('pending', 'delivered');
CREATE INDEX IF NOT EXISTS console_command_open_by_expiry
    ON console_command (expires_at) WHERE state IN ('pending', 'delivered');
CREATE TABLE IF NOT EXISTS console_event (
    seq     bigint PRIMARY KEY,
    user_id text NOT NULL,
    kind    text NOT NULL,
    at      timestamptz NOT NULL,
    body    jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS console_event_by_user ON console_event (user_id, seq);
-- Retention counts from when the broker recorded an event, not from its `at` (a push's is the console's clock).
ALTER TABLE console_event ADD COLUMN IF NOT EXISTS recorded_at timestamptz NOT NULL DEFAULT now();
CREATE TABLE IF NOT EXISTS console_event_counter (id integer PRIMARY KEY, seq bigint NOT NULL);
INSERT INTO console_event_counter (id, seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS console_connection (
    connection_id text PRIMARY KEY,
    user_id       text NOT NULL,
    org_id        text NOT NULL,
    gateway_id    text NOT NULL,
    connected_at  timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS console_connection_by_gateway ON console_connection (gateway_id);
CREATE INDEX IF NOT EXISTS console_connection_by_user ON console_connection (user_id);
CREATE TABLE IF NOT EXISTS console_token (token_id text PRIMARY KEY, expires_at timestamptz NOT NULL);
"""


def libpq_url(url: str) -> str:
    """`postgresql+psycopg://...` (SQLAlchemy style, as the store's URL) to what libpq takes."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def _status_json(status: ConsoleStatus | None) -> dict[str, Any] | None:
    return status.model_dump() if status is not None else None


def _event_row(event: ConsoleEvent) -> tuple[str, str, datetime, str]:
    if isinstance(event, CommandOutcome):
        body = {"command_id": event.command_id, "outcome": event.outcome, "status": _status_json(event.status),
                "error": event.error, "reason": event.reason, "connection_id": event.connection_id,
                "at": event.at.isoformat()}
        return event.user_id, "outcome", event.at, json.dumps(body)
    body = {"event": event.event, "status": _status_json(event.status), "reason": event.reason,
            "command_id": event.command_id, "connection_id": event.connection_id, "at": event.at.isoformat(),
            "received_at": event.received_at.isoformat()}
    return event.user_id, "push", event.at, json.dumps(body)


def _event_from_row(row: dict[str, Any]) -> ConsoleEvent:
    body = row["body"]
    status = ConsoleStatus.model_validate(body["status"]) if body.get("status") else None
    if row["kind"] == "outcome":
        return CommandOutcome(body["command_id"], row["user_id"], body["outcome"], datetime.fromisoformat(body["at"]),
                              status=status, error=body["error"], reason=body["reason"],
                              connection_id=body["connection_id"], seq=row["seq"])
    return StatusPush(row["user_id"], body["event"], datetime.fromisoformat(body["at"]), status, body["reason"],
                      body["command_id"], body["connection_id"], datetime.fromisoformat(body["received_at"]),
                      seq=row["seq"])


def _command_from_row(row: dict[str, Any]) -> ConsoleCommand:
    return ConsoleCommand(row["command_id"], row["user_id"], row["action"], row["issued_at"], row["expires_at"],
                          row["status_id"], row["status"])


class PostgresBroker(ConsoleBroker):
    """`ConsoleBroker` on PostgreSQL (see the module docstring). Open with `await PostgresBroker.open(url)`."""

    def __init__(self, url: str, *, clock: Clock = utc_now, stale_after: timedelta = CONNECTION_STALE_AFTER,
                 retention: timedelta = timedelta(days=1)) -> None:
        self._url = libpq_url(url)
        self.clock = clock
        self._stale_after = stale_after
        self._retention = retention
        self._conn: psycopg.AsyncConnection[dict[str, Any]] | None = None
        self._lock = asyncio.Lock()
        self._listen_task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._listeners: set[QueuedListener] = set()
        self._events_signal = Signal()
        self._event_generation = 0
        self._next_prune = datetime.min.replace(tzinfo=clock().tzinfo)

    @classmethod
    async def open(cls, url: str, **options: Any) -> PostgresBroker:
        broker = cls(url, **options)
        async with broker._transaction() as conn:
            # Two processes starting at once must not race on CREATE TABLE IF NOT EXISTS.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('presence_sync.console_schema'))")
            await conn.execute(SCHEMA)
        broker._listen_task = asyncio.create_task(broker._listen(), name="console-broker-listen")
        try:
            # From here on no notification is missed (a later reconnect is covered by the gateway's sweep).
            await asyncio.wait_for(broker._listening.wait(), timeout=60)
        except TimeoutError:
            await broker.close()
            raise psycopg.OperationalError("the console broker could not LISTEN within 60 s") from None
        return broker

    def __repr__(self) -> str:
        return "PostgresBroker(<connection hidden>)"

    async def close(self) -> None:
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listen_task
        if self._conn is not None:
            await self._conn.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True, row_factory=dict_row)
            try:
                async with self._conn.transaction():
                    yield self._conn
            except psycopg.OperationalError:
                # The server went away: the next call reconnects; the caller decides whether to retry.
                await self._conn.close()
                raise

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {COMMANDS_CHANNEL}")
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self._listening.set()
                    self._wake_event_readers()  # whatever was missed while not listening
                    async for notify in conn.notifies():
                        if notify.channel == EVENTS_CHANNEL:
                            self._wake_event_readers()
                        else:
                            for listener in list(self._listeners):
                                listener.notify([notify.payload])
            except asyncio.CancelledError:
                raise
            except psycopg.Error as error:
                logger.warning("console broker: LISTEN connection lost (%s); reconnecting", type(error).__name__)
                await asyncio.sleep(1)

    def _wake_event_readers(self) -> None:
        self._event_generation += 1
        self._events_signal.notify_all()

    async def _append(self, conn: psycopg.AsyncConnection[Any], events: Sequence[ConsoleEvent]) -> None:
        """Number and store events in the caller's transaction (the counter row orders commits)."""
        if not events:
            return
        row = await (await conn.execute(
            "UPDATE console_event_counter SET seq = seq + %s WHERE id = 1 RETURNING seq", (len(events),))).fetchone()
        first = row["seq"] - len(events) + 1
        recorded_at = self.clock()
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO console_event (seq, user_id, kind, at, body, recorded_at) VALUES (%s, %s, %s, %s, %s, %s)",
                [(first + index, *_event_row(event), recorded_at) for index, event in enumerate(events)],
            )
        await conn.execute("SELECT pg_notify(%s, '')", (EVENTS_CHANNEL,))

    # ---- the sync side

    async def submit(self, commands: Sequence[ConsoleCommand]) -> int:
        if not commands:
            return 0
        async with self._transaction() as conn:
            added: list[str] = []
            for command in commands:
                cursor = await conn.execute(
                    """INSERT INTO console_command (command_id, user_id, action, status_id, status, issued_at, expires_at)
                       VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (command_id) DO NOTHING RETURNING user_id""",
                    (command.command_id, command.user_id, command.action, command.status_id, command.status,
                     command.issued_at, command.expires_at),
                )
                if (row := await cursor.fetchone()) is not None:
                    added.append(row["user_id"])
            for user_id in sorted(set(added)):
                await conn.execute("SELECT pg_notify(%s, %s)", (COMMANDS_CHANNEL, user_id))
        return len(added)

    async def read_events(self, after: int = 0, *, limit: int = 1000,
                          user_ids: Collection[str] | None = None) -> list[ConsoleEvent]:
        await self.expire_overdue()
        async with self._transaction() as conn:
            if user_ids is None:
                cursor = await conn.execute(
                    "SELECT * FROM console_event WHERE seq > %s ORDER BY seq LIMIT %s", (after, limit))
            else:
                cursor = await conn.execute(
                    "SELECT * FROM console_event WHERE seq > %s AND user_id = ANY(%s) ORDER BY seq LIMIT %s",
                    (after, [salesforce_id_18(user) for user in user_ids], limit))
            return [_event_from_row(row) for row in await cursor.fetchall()]

    async def wait_for_events(self, after: int, timeout: float) -> bool:
        generation = self._event_generation  # before the query: a notification in between still wakes us
        async with self._transaction() as conn:
            row = await (await conn.execute("SELECT seq FROM console_event_counter WHERE id = 1")).fetchone()
        if row["seq"] > after:
            return True
        return await self._events_signal.wait(timeout, lambda: self._event_generation != generation)

    async def connected_consoles(self) -> dict[str, int]:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "SELECT user_id, count(*) AS consoles FROM console_connection WHERE last_seen > %s GROUP BY user_id",
                (self.clock() - self._stale_after,))
            return {row["user_id"]: row["consoles"] for row in await cursor.fetchall()}

    # ---- the gateway side

    async def open_connection(self, connection: ConsoleConnection) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                """INSERT INTO console_connection (connection_id, user_id, org_id, gateway_id, connected_at, last_seen)
                   VALUES (%s, %s, %s, %s, %s, %s)""",
                (connection.connection_id, connection.user_id, connection.org_id, connection.gateway_id,
                 connection.connected_at, self.clock()))

    async def close_connection(self, connection_id: str) -> None:
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM console_connection WHERE connection_id = %s", (connection_id,))

    async def keep_alive(self, gateway_id: str) -> None:
        async with self._transaction() as conn:
            await conn.execute("UPDATE console_connection SET last_seen = %s WHERE gateway_id = %s",
                               (self.clock(), gateway_id))

    _CLAIMABLE = """
        state IN ('pending', 'delivered') AND expires_at > %(now)s AND (
            state = 'pending' OR NOT EXISTS (
                SELECT 1 FROM console_connection k
                WHERE k.connection_id = console_command.delivered_to AND k.last_seen > %(fresh)s))"""

    async def claim_commands(self, user_id: str, connection_id: str) -> list[ConsoleCommand]:
        now = self.clock()
        async with self._transaction() as conn:
            # One claim per user at a time, over every replica: a command goes to one console.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"console-user:{user_id}",))
            cursor = await conn.execute(
                f"SELECT * FROM console_command WHERE user_id = %(user)s AND {self._CLAIMABLE} ORDER BY issued_at",
                {"user": user_id, "now": now, "fresh": now - self._stale_after})
            claimable = [_command_from_row(row) for row in await cursor.fetchall()]
            if not claimable:
                return []
            newest, older = claimable[-1], claimable[:-1]
            if older:
                await conn.execute(
                    "UPDATE console_command SET state = 'ignored', ended_at = %s WHERE command_id = ANY(%s)",
                    (now, [command.command_id for command in older]))
                await self._append(conn, [
                    CommandOutcome(command.command_id, user_id, "ignored", now,
                                   reason=f"superseded by command {newest.command_id} before a console acknowledged it")
                    for command in older
                ])
            await conn.execute(
                "UPDATE console_command SET state = 'delivered', delivered_to = %s, delivered_at = %s WHERE command_id = %s",
                (connection_id, now, newest.command_id))
            return [newest]

    async def claimable_users(self, user_ids: Collection[str]) -> set[str]:
        if not user_ids:
            return set()
        now = self.clock()
        async with self._transaction() as conn:
            cursor = await conn.execute(
                f"SELECT DISTINCT user_id FROM console_command WHERE user_id = ANY(%(users)s) AND {self._CLAIMABLE}",
                {"users": list(user_ids), "now": now, "fresh": now - self._stale_after})
            return {row["user_id"] for row in await cursor.fetchall()}

    async def record_ack(self, connection: ConsoleConnection, ack: Ack) -> bool:
        now = self.clock()
        async with self._transaction() as conn:
            cursor = await conn.execute(
                """UPDATE console_command SET state = %s, ended_at = %s
                   WHERE command_id = %s AND user_id = %s AND state IN ('pending', 'delivered', 'lost')
                   RETURNING *""",
                (ack.outcome, now, ack.command_id, connection.user_id))
            row = await cursor.fetchone()
            if row is None:
                return False
            await self._append(conn, [outcome_from_ack(_command_from_row(row), connection, ack, now)])
            return True

    async def record_push(self, connection: ConsoleConnection, push: StatusChanged) -> None:
        async with self._transaction() as conn:
            await self._append(conn, [push_from_message(connection, push, self.clock())])

    async def claim_token(self, token_id: str, expires_at: datetime) -> bool:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                """INSERT INTO console_token (token_id, expires_at) VALUES (%s, %s)
                   ON CONFLICT (token_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
                   WHERE console_token.expires_at <= %s
                   RETURNING token_id""",
                (token_id, expires_at, self.clock()))
            return await cursor.fetchone() is not None

    def command_listener(self) -> CommandListener:
        listener = QueuedListener(self._listeners.discard)
        self._listeners.add(listener)
        return listener

    # ---- either side

    async def expire_overdue(self) -> int:
        now = self.clock()
        async with self._transaction() as conn:
            cursor = await conn.execute(
                """UPDATE console_command SET state = 'lost', ended_at = %s
                   WHERE state IN ('pending', 'delivered') AND expires_at <= %s
                   RETURNING *""",
                (now, now))
            rows = sorted(await cursor.fetchall(), key=lambda row: row["expires_at"])
            await self._append(conn, [
                CommandOutcome(row["command_id"], row["user_id"], "lost", row["expires_at"],
                               reason=lost_reason(row["delivered_at"], row["delivered_to"], row["issued_at"],
                                                  row["expires_at"]),
                               connection_id=row["delivered_to"])
                for row in rows
            ])
            if now >= self._next_prune:
                self._next_prune = now + self._retention / 10
                await self._prune(conn, now)
        return len(rows)

    async def _prune(self, conn: psycopg.AsyncConnection[Any], now: datetime) -> None:
        horizon = now - self._retention
        await conn.execute("DELETE FROM console_command WHERE state NOT IN ('pending', 'delivered') AND ended_at < %s",
                           (horizon,))
        await conn.execute("DELETE FROM console_event WHERE recorded_at < %s", (horizon,))
        await conn.execute("DELETE FROM console_token WHERE expires_at < %s", (now,))
        await conn.execute("DELETE FROM console_connection WHERE last_seen < %s", (horizon,))
