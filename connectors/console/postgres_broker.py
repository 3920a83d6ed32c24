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

Group commit: a gateway's hot calls (`claim_token`, `open_connection`, `close_connection`,
`claim_commands`, `record_ack`, `record_push`) are queued, and everything queued while one
transaction runs goes into the next, a statement per kind (not per message) and one event append.
With 10,000 consoles at 100 commands/s that is a transaction every few milliseconds instead of
one round trip per message, all of them waiting in line for the one connection.

One broker object serves one event loop (its connections are asyncio connections).

    broker = await PostgresBroker.open("postgresql://presence@db/presence")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

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
-- A command's compare-and-set (ConsoleCommand.if_showing): a JSON array of names, null for none.
ALTER TABLE console_command ADD COLUMN IF NOT EXISTS if_showing jsonb;
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
    if_showing = row.get("if_showing")
    return ConsoleCommand(row["command_id"], row["user_id"], row["action"], row["issued_at"], row["expires_at"],
                          row["status_id"], row["status"], None if if_showing is None else tuple(if_showing))


_Kind = Literal["token", "open", "close", "ack", "push", "claim"]


@dataclass
class _Batch:
    """Calls queued for the next transaction, by kind, each with the future its caller awaits."""

    items: dict[_Kind, list[Any]] = field(default_factory=lambda: {kind: [] for kind in _KINDS})
    futures: dict[_Kind, list[asyncio.Future[Any]]] = field(default_factory=lambda: {kind: [] for kind in _KINDS})

    def __bool__(self) -> bool:
        return any(self.items.values())

    def add(self, kind: _Kind, item: Any, future: asyncio.Future[Any]) -> None:
        self.items[kind].append(item)
        self.futures[kind].append(future)

    def resolve(self, results: dict[_Kind, list[Any]]) -> None:
        for kind, futures in self.futures.items():
            for future, result in zip(futures, results[kind], strict=True):
                if not future.done():  # its caller may have been cancelled meanwhile
                    future.set_result(result)

    def fail(self, error: Exception) -> None:
        for future in self._waiting():
            future.set_exception(error)

    def cancel(self) -> None:
        for future in self._waiting():
            future.cancel()

    def _waiting(self) -> list[asyncio.Future[Any]]:
        return [future for futures in self.futures.values() for future in futures if not future.done()]


_KINDS: tuple[_Kind, ...] = ("token", "open", "close", "ack", "push", "claim")


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
        self._batch = _Batch()
        self._committer: asyncio.Task[None] | None = None
        self.batches = 0  # transactions of group-committed calls (a test counts them)

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
        if self._committer is not None:
            with contextlib.suppress(Exception):
                await self._committer  # what callers already queued is written (its errors went to them)
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
        """Number, store and announce events in the caller's transaction, in one statement.

        The counter row's lock, held to commit, makes events commit in `seq` order."""
        if not events:
            return
        users, kinds, ats, bodies = (list(column) for column in zip(*map(_event_row, events), strict=True))
        await conn.execute(
            """WITH counter AS (
                   UPDATE console_event_counter SET seq = seq + %(count)s WHERE id = 1 RETURNING seq),
               stored AS (
                   INSERT INTO console_event (seq, user_id, kind, at, body, recorded_at)
                   SELECT counter.seq - %(count)s + e.n, e.user_id, e.kind, e.at, e.body::jsonb, %(recorded)s
                   FROM counter, unnest(%(users)s::text[], %(kinds)s::text[], %(ats)s::timestamptz[], %(bodies)s::text[])
                        WITH ORDINALITY AS e(user_id, kind, at, body, n))
               SELECT pg_notify(%(channel)s, '')""",
            {"count": len(events), "recorded": self.clock(), "users": users, "kinds": kinds, "ats": ats,
             "bodies": bodies, "channel": EVENTS_CHANNEL})

    # ---- the sync side

    async def submit(self, commands: Sequence[ConsoleCommand]) -> int:
        if not commands:
            return 0
        async with self._transaction() as conn:
            added: list[str] = []
            for command in commands:
                cursor = await conn.execute(
                    """INSERT INTO console_command
                           (command_id, user_id, action, status_id, status, issued_at, expires_at, if_showing)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (command_id) DO NOTHING RETURNING user_id""",
                    (command.command_id, command.user_id, command.action, command.status_id, command.status,
                     command.issued_at, command.expires_at,
                     None if command.if_showing is None else json.dumps(list(command.if_showing))),
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
        await self._queued("open", connection)

    async def close_connection(self, connection_id: str) -> None:
        await self._queued("close", connection_id)

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
        return await self._queued("claim", (salesforce_id_18(user_id), connection_id))

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
        return await self._queued("ack", (connection, ack))

    async def record_push(self, connection: ConsoleConnection, push: StatusChanged) -> None:
        await self._queued("push", (connection, push))

    async def claim_token(self, token_id: str, expires_at: datetime) -> bool:
        return await self._queued("token", (token_id, expires_at))

    # ---- group commit (see the module docstring)

    async def _queued(self, kind: _Kind, item: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._batch.add(kind, item, future)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_batches(), name="console-broker-commit")
        return await future

    async def _commit_batches(self) -> None:
        while self._batch:
            batch, self._batch = self._batch, _Batch()
            try:
                async with self._transaction() as conn:
                    results = await self._write(conn, batch)
            except asyncio.CancelledError:
                batch.cancel()
                raise
            except Exception as error:  # noqa: BLE001 - every caller of the batch gets the error, as it would alone
                batch.fail(error)
            else:
                batch.resolve(results)
            self.batches += 1

    async def _write(self, conn: psycopg.AsyncConnection[Any], batch: _Batch) -> dict[_Kind, list[Any]]:
        """One transaction for a whole batch; a fixed order of kinds is one valid order of concurrent calls."""
        now = self.clock()
        results: dict[_Kind, list[Any]] = {
            "token": await self._claim_tokens(conn, batch.items["token"], now),
            "open": await self._open_connections(conn, batch.items["open"], now),
            "close": await self._close_connections(conn, batch.items["close"]),
        }
        results["ack"], outcomes = await self._record_acks(conn, batch.items["ack"], now)
        pushes = [push_from_message(connection, push, now) for connection, push in batch.items["push"]]
        results["push"] = [None] * len(pushes)
        results["claim"], superseded = await self._claim(conn, batch.items["claim"], now)
        await self._append(conn, [*outcomes, *pushes, *superseded])
        return results

    @staticmethod
    async def _claim_tokens(conn: psycopg.AsyncConnection[Any], tokens: list[tuple[str, datetime]],
                            now: datetime) -> list[bool]:
        if not tokens:
            return []
        first: dict[str, int] = {}
        for index, (token_id, _) in enumerate(tokens):
            first.setdefault(token_id, index)  # the same token twice in one batch: the second is a replay
        cursor = await conn.execute(
            """INSERT INTO console_token (token_id, expires_at)
               SELECT * FROM unnest(%s::text[], %s::timestamptz[])
               ON CONFLICT (token_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
               WHERE console_token.expires_at <= %s
               RETURNING token_id""",
            (list(first), [tokens[index][1] for index in first.values()], now))
        claimed = {row["token_id"] for row in await cursor.fetchall()}
        return [token_id in claimed and first[token_id] == index for index, (token_id, _) in enumerate(tokens)]

    @staticmethod
    async def _open_connections(conn: psycopg.AsyncConnection[Any], connections: list[ConsoleConnection],
                                now: datetime) -> list[None]:
        if connections:
            await conn.execute(
                """INSERT INTO console_connection (connection_id, user_id, org_id, gateway_id, connected_at, last_seen)
                   SELECT *, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])""",
                (now, *(list(column) for column in zip(*(
                    (c.connection_id, c.user_id, c.org_id, c.gateway_id, c.connected_at) for c in connections),
                    strict=True))))
        return [None] * len(connections)

    @staticmethod
    async def _close_connections(conn: psycopg.AsyncConnection[Any], connection_ids: list[str]) -> list[None]:
        if connection_ids:
            await conn.execute("DELETE FROM console_connection WHERE connection_id = ANY(%s)", (connection_ids,))
        return [None] * len(connection_ids)

    @staticmethod
    async def _record_acks(conn: psycopg.AsyncConnection[Any], acks: list[tuple[ConsoleConnection, Ack]],
                           now: datetime) -> tuple[list[bool], list[CommandOutcome]]:
        if not acks:
            return [], []
        first: dict[tuple[str, str], int] = {}
        for index, (connection, ack) in enumerate(acks):
            first.setdefault((ack.command_id, connection.user_id), index)  # a repeat in one batch changes nothing
        cursor = await conn.execute(
            """UPDATE console_command c SET state = a.outcome, ended_at = %s
               FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[]) AS a(command_id, user_id, outcome, position)
               WHERE c.command_id = a.command_id AND c.user_id = a.user_id
                 AND c.state IN ('pending', 'delivered', 'lost')
               RETURNING c.*, a.position""",
            (now, [acks[i][1].command_id for i in first.values()], [acks[i][0].user_id for i in first.values()],
             [acks[i][1].outcome for i in first.values()], list(first.values())))
        recorded = {row["position"]: row for row in await cursor.fetchall()}
        outcomes = [outcome_from_ack(_command_from_row(recorded[index]), *acks[index], now) for index in sorted(recorded)]
        return [index in recorded for index in range(len(acks))], outcomes

    async def _claim(self, conn: psycopg.AsyncConnection[Any], claims: list[tuple[str, str]],
                     now: datetime) -> tuple[list[list[ConsoleCommand]], list[CommandOutcome]]:
        if not claims:
            return [], []
        first: dict[str, int] = {}
        for index, (user_id, _) in enumerate(claims):
            first.setdefault(user_id, index)  # the first claim of a user gets its command, the rest find it taken
        # One claim per user at a time, over every replica: a command goes to one console. Locks are
        # taken in one order by every replica, so two batches cannot wait on each other.
        await conn.execute(
            """SELECT pg_advisory_xact_lock(k) FROM (
                   SELECT DISTINCT hashtext('console-user:' || u) AS k FROM unnest(%s::text[]) AS u ORDER BY k) AS keys""",
            (list(first),))
        cursor = await conn.execute(
            f"SELECT * FROM console_command WHERE user_id = ANY(%(users)s) AND {self._CLAIMABLE} ORDER BY issued_at",
            {"users": list(first), "now": now, "fresh": now - self._stale_after})
        claimable: dict[str, list[ConsoleCommand]] = {}
        for row in await cursor.fetchall():
            claimable.setdefault(row["user_id"], []).append(_command_from_row(row))
        handed: list[list[ConsoleCommand]] = [[] for _ in claims]
        superseded: list[CommandOutcome] = []
        for user_id, commands in claimable.items():
            newest = commands[-1]
            handed[first[user_id]] = [newest]
            superseded += [CommandOutcome(command.command_id, user_id, "ignored", now,
                                          reason=f"superseded by command {newest.command_id} before a console "
                                                 f"acknowledged it")
                           for command in commands[:-1]]
        if superseded:
            await conn.execute(
                "UPDATE console_command SET state = 'ignored', ended_at = %s WHERE command_id = ANY(%s)",
                (now, [outcome.command_id for outcome in superseded]))
        if claimable:
            await conn.execute(
                """UPDATE console_command c SET state = 'delivered', delivered_to = d.connection_id, delivered_at = %s
                   FROM unnest(%s::text[], %s::text[]) AS d(command_id, connection_id)
                   WHERE c.command_id = d.command_id""",
                (now, [commands[-1].command_id for commands in claimable.values()],
                 [claims[first[user_id]][1] for user_id in claimable]))
        return handed, superseded

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
