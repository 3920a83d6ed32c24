"""The sync's side of the console channel: Salesforce writes as console commands, outcomes and pushes back.

With `console.channel: gateway` a Salesforce write is a `ConsoleCommand` submitted to the broker
(`ConsoleWriter`), which the gateway hands to the agent's console only. What became of it, and the
status changes consoles push, come back through `ConsoleEventSource`, a change source like the polls,
reading the broker's events after a cursor the runner saves with each tick (`CONSOLE_CURSOR`):

| broker event | what the engine gets |
|---|---|
| `applied` | nothing more: the console reports the change it made (a push naming the command) |
| `failed` | a permanent `WriteResult` with the console's error: recorded, not retried blindly |
| `lost` | a transient `WriteResult` naming why (no console; no answer in time): retried with backoff |
| `ignored`, `not as expected` | a transient `WriteResult` naming what the console showed: the agent changed it after the sync decided; their push normally supersedes the write, else it is retried with what the sync knows by then |
| `ignored`, other reasons | nothing (a superseded, repeated or stale command: a newer one carries the intent) |
| a pushed change | an observation of the agent's Salesforce status, as a poll would give, one round trip later |
| a push naming a command of ours | an observation naming that command: its echo by the console's word, even of a superseded write (the engine then knows what Salesforce shows, and converges over it if it is no longer wanted) |

A retry of a write is a new broker command (`<engine command id>.<attempt>`), since the broker ignores an
id it holds already; a replayed tick (same attempt) is ignored there, so nothing is applied twice.

Brokers: with no `console.broker_url` the sync runs the gateway itself on an in-process broker shared by
every sync window of the process (`embedded_gateway`); with one, it opens the PostgreSQL broker that the
separately run gateways (`presence-sync gateway`) use.

    channel = await open_console_channel(config.console, agents_by_user, status_ids, cursor)
    results = await channel.writer.submit(writes, targets)     # one WriteResult per write
    polled = await channel.source.fetch(now)                   # observations + polled.write_results
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from presence_sync.connectors.console.broker import CommandOutcome, ConsoleBroker, ConsoleCommand, InProcessBroker
from presence_sync.connectors.console.gateway import GatewaySettings, create_gateway_app
from presence_sync.connectors.console.protocol import CONSOLE_PATH, NOT_AS_EXPECTED, salesforce_id_18
from presence_sync.engine import OMNI_OFFLINE, Observation, Side, Write, WriteOutcome, WriteResult, salesforce_value
from presence_sync.models.config import ConsoleSettings
from presence_sync.tasks.sync.apply import WriteTargets, salesforce_target
from presence_sync.tasks.sync.sources import HandOut, Polled

logger = logging.getLogger(__name__)

CONSOLE_CURSOR = "console-events"
CONSOLE_STATUS_CURSOR = "console-status"  # JSON: connected consoles, poll relaxed, polls saved (for `status`)
READ_LIMIT = 5000
PUSH_SOURCE_PREFIX = "console-push:"
WATCH_SECONDS = 30.0  # how long one wait for news lasts before it is asked again (a broker reconnect)
PUSHES_REMEMBERED = 4
# A pushed change and the spell the poll reads for it are stamped by the console's and Salesforce's clocks.
PUSH_MATCH_TOLERANCE = timedelta(seconds=2)
# How the audit names console outcomes (validate's diagnosis finds them by these words).
LOST = "console command lost: "
REFUSED = "the agent's console refused it: "
CHANGED_SINCE = "the agent changed the status after the sync decided; their console shows "


def broker_command_id(write: Write) -> str:
    """The broker's id for one attempt of a write (the broker ignores an id it already holds)."""
    return f"{write.command_id}.{write.attempt}"


def engine_command_id(broker_id: str) -> str:
    return broker_id.rsplit(".", 1)[0]


def is_sync_command(broker_id: str) -> bool:
    """Whether a broker command id is one the sync gave (`<engine command id>.<attempt>`)."""
    _, dot, attempt = broker_id.rpartition(".")
    return bool(dot) and attempt.isdigit()


def _id18(user_id: str) -> str:
    try:
        return salesforce_id_18(user_id)
    except ValueError:
        return user_id


class ConsoleWriter:
    """Salesforce writes as console commands (the Salesforce applier's write sink for the gateway channel).

    Example:
        writer = ConsoleWriter(broker, timedelta(seconds=30))
        results = await writer.submit(writes, targets)   # OK: submitted; the outcome comes as an event
    """

    def __init__(self, broker: ConsoleBroker, timeout: timedelta) -> None:
        self.broker = broker
        self.timeout = timeout

    async def submit(self, writes: Sequence[Write], targets: WriteTargets) -> list[WriteResult]:
        results: list[WriteResult] = []
        ready: list[tuple[Write, ConsoleCommand]] = []
        for write in writes:
            target = salesforce_target(write, targets)
            if isinstance(target, WriteResult):
                results.append(target)
                continue
            user_id, status_id = target
            if_showing = None if write.applies_if_showing is None else [
                salesforce_value(name) for name in write.applies_if_showing
            ]
            if write.target == OMNI_OFFLINE:  # Omni-Channel has no "Offline" status: the console logs out
                command = ConsoleCommand.logout(user_id, command_id=broker_command_id(write), timeout=self.timeout,
                                                if_showing=if_showing)
            else:
                command = ConsoleCommand.set_status(
                    user_id, status_id, str(write.target), command_id=broker_command_id(write), timeout=self.timeout,
                    if_showing=if_showing,
                )
            ready.append((write, command))
        if not ready:
            return results
        try:
            await self.broker.submit([command for _, command in ready])
        except Exception as error:  # the broker is a database: any failure to reach it is worth a retry
            reason = f"the console broker did not take the command ({type(error).__name__}: {error})"
            return [*results, *(WriteResult(w.agent_id, w.command_id, WriteOutcome.TRANSIENT, reason) for w, _ in ready)]
        results += [WriteResult(write.agent_id, write.command_id, WriteOutcome.OK) for write, _ in ready]
        return results


class ConsoleEventSource:
    """The broker's outcomes and pushes past the saved cursor, as observations and write results."""

    system = "Console"
    pages_at_once = False  # one read, no pages

    def __init__(self, broker: ConsoleBroker, cursor: str | None, agents_by_user: Mapping[str, int],
                 status_names: Mapping[str, str], relaxed_factor: float = 1.0) -> None:
        self.broker = broker
        self.cursor = int(cursor) if cursor and cursor.isdigit() else 0
        self.agents_by_user = {_id18(user): agent for user, agent in agents_by_user.items()}
        self.status_names = {_id18(status_id): name for status_id, name in status_names.items()}
        self.relaxed_factor = relaxed_factor
        self.connected_users: frozenset[str] = frozenset()
        self.connected_consoles = 0
        self.polls_saved = 0.0  # UserServicePresence polls not made (each at least one API call)
        self.lost = 0  # commands no console took (none connected, or no answer in time), since opened
        self._pushed: dict[int, list[tuple[str | None, datetime]]] = {}  # the last few pushes per agent
        self._committed = asyncio.Event()

    async def watch(self, news: Callable[[], None]) -> None:
        """Call `news()` as soon as outcomes or pushes past the cursor arrive (the window ticks at once).

        Runs until cancelled; after each call it waits for a tick to commit them, so news is told once.
        """
        while True:
            try:
                arrived = await self.broker.wait_for_events(self.cursor, WATCH_SECONDS)
            except Exception as error:  # the broker is read again by every tick: news just waits for it
                logger.warning("console channel: waiting for pushes failed (%s); retrying", error)
                await asyncio.sleep(WATCH_SECONDS)
                continue
            if arrived:
                self._committed.clear()
                news()
                await self._committed.wait()

    def ready(self, now: datetime) -> bool:
        return True

    @property
    def all_connected(self) -> bool:
        """Every linked agent's console is connected: their changes are pushed, the poll is the fallback."""
        return bool(self.agents_by_user) and self.connected_users.issuperset(self.agents_by_user)

    def poll_factor(self) -> float:
        """How much longer the UserServicePresence poll waits now (called once per poll)."""
        if not self.all_connected:
            return 1.0
        self.polls_saved += self.relaxed_factor - 1
        return self.relaxed_factor

    def report(self, now: datetime) -> dict[str, Any]:
        """What `status` shows of the console channel (saved with each tick)."""
        return {
            "connected_agents": len(self.connected_users & self.agents_by_user.keys()),
            "linked_agents": len(self.agents_by_user),
            "connected_consoles": self.connected_consoles,
            "poll_relaxed": self.all_connected,
            "relaxed_poll_factor": self.relaxed_factor,
            "polls_saved": round(self.polls_saved),
            "at": now.isoformat(),
        }

    async def fetch(self, now: datetime, early: HandOut | None = None) -> Polled:
        events, consoles = await asyncio.gather(self.broker.read_events(self.cursor, limit=READ_LIMIT),
                                                self.broker.connected_consoles())
        self.connected_users = frozenset(user for user, count in consoles.items() if count)
        self.connected_consoles = sum(consoles.values())
        polled = Polled()
        polled.cursors[CONSOLE_STATUS_CURSOR] = json.dumps(self.report(now))
        for event in events:
            agent_id = self.agents_by_user.get(event.user_id)
            if agent_id is None:
                continue
            if isinstance(event, CommandOutcome):
                self._outcome(polled, agent_id, event)
                continue
            name = self._status_name(event.status)
            self._remember(agent_id, name, event.at)
            if event.event == "status_changed" and name is None:
                polled.problems.append(f"console push for agent {agent_id}: unknown presence status")
                continue
            ours = engine_command_id(event.command_id) if event.command_id and is_sync_command(event.command_id) else None
            polled.observations.append(Observation(
                agent_id, Side.SALESFORCE, name if event.event == "status_changed" else None, event.at,
                f"{PUSH_SOURCE_PREFIX}{event.seq}", ours,
            ))
        if events:
            polled.cursors[CONSOLE_CURSOR] = str(events[-1].seq)
        return polled

    def _remember(self, agent_id: int, value: str | None, at: datetime) -> None:
        recent = self._pushed.setdefault(agent_id, [])
        recent.append((value, at))
        del recent[:-PUSHES_REMEMBERED]

    def reported(self, observation: Observation) -> bool:
        """Whether a console already pushed this change (the poll reads the same spell later: not news)."""
        return any(
            value == observation.value and abs(at - observation.at) <= PUSH_MATCH_TOLERANCE
            for value, at in self._pushed.get(observation.agent_id, ())
        )

    def _outcome(self, polled: Polled, agent_id: int, event: CommandOutcome) -> None:
        # `applied` is confirmed by the console's own report of the change (the toolkit push naming the
        # command, dated by the console like every push) or, failing that, by the poll: the ack's time
        # is the gateway's, and the engine dates echoes against the systems' clocks.
        command_id = engine_command_id(event.command_id)
        if event.outcome == "failed":
            polled.write_results.append(WriteResult(
                agent_id, command_id, WriteOutcome.PERMANENT, f"{REFUSED}{event.error}"))
        elif event.outcome == "ignored" and event.reason == NOT_AS_EXPECTED:
            shown = self._status_name(event.status) if event.status is not None else "logged out of Omni-Channel"
            polled.write_results.append(WriteResult(
                agent_id, command_id, WriteOutcome.TRANSIENT, f"{CHANGED_SINCE}{shown or 'an unknown status'}"))
        elif event.outcome == "lost":
            self.lost += 1
            polled.write_results.append(WriteResult(
                agent_id, command_id, WriteOutcome.TRANSIENT, f"{LOST}{event.reason}"))

    def _status_name(self, status: Any) -> str | None:
        if status is None:
            return None
        return self.status_names.get(_id18(status.status_id)) or status.status

    def committed(self, polled: Polled) -> None:
        cursor = polled.cursors.get(CONSOLE_CURSOR)
        if cursor is not None:
            self.cursor = int(cursor)
        self._committed.set()


@dataclass
class ConsoleChannel:
    """What a sync holder uses of the console channel; `close()` releases a broker it opened."""

    broker: ConsoleBroker
    writer: ConsoleWriter
    source: ConsoleEventSource
    owns_broker: bool
    gateway_url: str | None = None

    async def close(self) -> None:
        if self.owns_broker:
            await self.broker.close()


async def open_console_channel(settings: ConsoleSettings, agents_by_user: Mapping[str, int],
                               status_ids: Mapping[str, str], cursor: str | None,
                               known: Mapping[int, tuple[str | None, datetime]] | None = None) -> ConsoleChannel | None:
    """The channel for `console.channel: gateway`; None for the platform-event path.

    `known`: what each agent's Salesforce side last showed, and since when (the sync's memory), so that
    a spell a previous window learnt of from a push is no news when this window's first poll reads it.
    """
    if not settings.gateway:
        return None
    if settings.broker_url is None:
        embedded = embedded_gateway(settings)
        broker: ConsoleBroker = embedded.broker
        owns, url = False, embedded.url
    else:
        from presence_sync.connectors.console.postgres_broker import PostgresBroker

        broker = await PostgresBroker.open(settings.broker_url.get_secret_value())
        owns, url = True, None
    names = {status_id: name for name, status_id in status_ids.items()}
    source = ConsoleEventSource(broker, cursor, agents_by_user, names, settings.relaxed_poll_factor)
    for agent_id, (value, at) in (known or {}).items():
        source._remember(agent_id, value, at)
    return ConsoleChannel(
        broker=broker,
        writer=ConsoleWriter(broker, timedelta(seconds=settings.ack_timeout_seconds)),
        source=source,
        owns_broker=owns,
        gateway_url=url,
    )


async def submit_command(settings: ConsoleSettings, command: ConsoleCommand) -> None:
    """One command through the config's broker, outside a sync window (validation's own hop)."""
    channel = await open_console_channel(settings, {}, {}, None)
    if channel is None:
        raise ValueError("console.channel is not `gateway`: commands go out as platform events")
    try:
        await channel.broker.submit([command])
    finally:
        await channel.close()


# ---- the embedded gateway (one process: the demo, a single machine)


@dataclass
class EmbeddedGateway:
    """A console gateway served from a thread of this process, with its in-process broker."""

    broker: InProcessBroker
    url: str  # ws://host:port/console
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


_embedded: dict[str, EmbeddedGateway] = {}
_embedded_lock = threading.Lock()


def embedded_gateway(settings: ConsoleSettings) -> EmbeddedGateway:
    """The process's gateway for these settings, started on first use; sync windows share it."""
    assert settings.gateway_secret is not None
    secret = settings.gateway_secret
    digest = hashlib.sha256(secret.get_secret_value().encode()).hexdigest()[:16]
    key = f"{settings.gateway_host}:{settings.gateway_port}:{digest}"
    with _embedded_lock:
        running = _embedded.get(key)
        if running is None or not running.thread.is_alive():
            running = _embedded[key] = _start_gateway(settings)
        return running


def stop_embedded_gateways() -> None:
    with _embedded_lock:
        running = list(_embedded.values())
        _embedded.clear()
    for gateway in running:
        gateway.stop()


def _start_gateway(settings: ConsoleSettings) -> EmbeddedGateway:
    import uvicorn

    assert settings.gateway_secret is not None
    broker = InProcessBroker()
    app = create_gateway_app(GatewaySettings(secrets=(settings.gateway_secret,), sweep_seconds=1.0), broker)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.gateway_host, settings.gateway_port))
    except OSError as error:
        sock.close()
        raise OSError(f"the embedded console gateway cannot listen on {settings.gateway_host}:"
                      f"{settings.gateway_port}: {error.strerror}; set console.gateway_port to a free port") from None
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                           ws_max_size=64 * 1024))
    started = threading.Event()

    def run() -> None:
        async def main() -> None:
            task = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            started.set()
            await task

        try:
            asyncio.run(main())
        finally:
            started.set()
            sock.close()

    thread = threading.Thread(target=run, name=f"console-gateway-{port}", daemon=True)
    thread.start()
    started.wait(30)
    if not server.started:
        raise RuntimeError(f"the embedded console gateway on {settings.gateway_host}:{port} did not start")
    host = settings.gateway_host if ":" not in settings.gateway_host else f"[{settings.gateway_host}]"
    logger.info("console gateway listening on ws://%s:%s%s", host, port, CONSOLE_PATH)
    return EmbeddedGateway(broker, f"ws://{host}:{port}{CONSOLE_PATH}", server, thread)
