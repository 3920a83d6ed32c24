"""The emulated agents' consoles as clients of a presence-sync console gateway.

Each connected console is what our Lightning component does in a real agent's browser: it opens one
WebSocket to the gateway, says `hello` with a token signed with the org's shared secret (the token the
Apex class mints: HS256 JWT with `sub`, `org`, `aud`, `iat`, `exp`, `jti`), receives the commands
for its own user, applies them to the emulated Omni-Channel presence, acknowledges each one, and
pushes the agent's status changes with Salesforce's reason. This module speaks the protocol on its
own (the emulator imports nothing from the product), the same way the JavaScript component does.

Like the component it remembers the command ids it handled (a repeat is acknowledged `ignored`,
`duplicate`) and the newest command it applied (an older one is `ignored`, `stale`), and ignores a
command received before the agent's own later change (it would undo the person's choice: the toolkit's
`setServicePresenceStatus` even logs a logged-out agent back in). A command with `if_showing` is a
compare-and-set: showing none of those statuses (the agent changed it after the sync decided), the
console leaves it and acknowledges `ignored`, `not as expected`, with what it shows. A console the
control API closes drops its connection and stays away until opened again; a slow console
(`apply_delay_ms`) waits before applying; a status on the console's deny list, or one the profile
does not grant, fails with the Omni toolkit's error.

    consoles = GatewayConsoles(org, presence, clock, lock, applier)
    consoles.start("ws://127.0.0.1:8765/console", secret, user_ids)     # from any thread
    consoles.changed(user_id, status_record, "OmniManualStatusChange")  # the agent clicked a status
    consoles.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets as random_source
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from presence_sync.emulators.faults import EmulatorClock
from presence_sync.emulators.salesforce.org import SalesforceOrg
from presence_sync.emulators.salesforce.presence import PresenceBook
from presence_sync.emulators.salesforce.store import Record

logger = logging.getLogger(__name__)

PROTOCOL = 1
CLIENT = "SalesforceEmulatorConsole/1"
TOKEN_AUDIENCE = "presence-sync-gateway"
TOKEN_LIFETIME = timedelta(minutes=15)
TOOLKIT_REASON = "OmniToolkitStatusChange"
NOT_AS_EXPECTED = "not as expected"  # the ack reason of a compare-and-set command not applied
MANUAL_REASON = "OmniManualStatusChange"
# Close codes after which the component stops for good instead of reconnecting.
STOP_CODES = frozenset({4009, 4010})
MAX_BACKOFF_S = 5.0
HANDLED_MEMORY = 500

ConsoleSettings = Callable[[str], Any]  # user id -> the applier's `Console` (open, apply_delay_ms, denied)


def omni_status(status: Record | None) -> dict[str, Any] | None:
    """A status as the console reports it (`status_id`, developer name, label)."""
    if status is None:
        return None
    return {"status_id": status["Id"], "status": status["DeveloperName"], "label": status["MasterLabel"]}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _ConsoleState:
    """One user's console: its connection task, what it handled, and messages waiting to go up."""

    user_id: str
    task: asyncio.Task[None] | None = None
    outbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    commands: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    connected: bool = False
    stopped_reason: str | None = None
    handled: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest_issued_at: str | None = None
    # The component ignores a command received before the agent's own later change (it would undo it).
    last_other_change_at: float | None = None


class GatewayConsoles:
    """Every emulated console connected to one gateway, on an event loop in a thread of its own."""

    def __init__(self, org: SalesforceOrg, presence: PresenceBook, clock: EmulatorClock,
                 lock: threading.RLock, settings: ConsoleSettings) -> None:
        self.org = org
        self.presence = presence
        self.clock = clock
        self.lock = lock
        self.settings = settings
        self.url: str | None = None
        self._secret: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._consoles: dict[str, _ConsoleState] = {}
        self.counts: Counter[str] = Counter()
        # Per command id: times a console applied it, and times one received it (a redelivery after a
        # reconnect is fine; applying twice would not be).
        self.applied_by_command: Counter[str] = Counter()
        self.received_by_command: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"GatewayConsoles(url={self.url!r}, consoles={len(self._consoles)}, secret=<hidden>)"

    # ---- control (any thread)

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self, url: str, secret: str, user_ids: Iterable[str]) -> None:
        """Connect a console for each user to the gateway at `url` (ws://host:port/console)."""
        if len(secret) < 32:
            raise ValueError("the gateway secret must be at least 32 characters (the gateway refuses shorter ones)")
        self.stop()
        self.url, self._secret = url, secret
        ready = threading.Event()
        loop_box: list[asyncio.AbstractEventLoop] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            loop_box.append(loop)
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="sf-emulator-consoles", daemon=True)
        self._thread.start()
        ready.wait(10)
        self._loop = loop_box[0]
        users = list(user_ids)
        self._call(lambda: [self._open(user_id) for user_id in users])

    def stop(self) -> None:
        """Close every console and end the thread; handled-command memory is forgotten."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None

        async def shutdown() -> None:
            tasks = [state.task for state in self._consoles.values() if state.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._consoles.clear()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    def refresh(self, user_id: str) -> None:
        """The console's settings changed: a closed console disconnects, a reopened one reconnects."""
        self._call(lambda: self._refresh(user_id))

    def changed(self, user_id: str, status: Record | None, reason: str | None, command_id: str | None = None) -> None:
        """The agent's Omni status changed in the console (None: logged out); push it to the gateway."""
        at = _iso(self.clock.now())
        if status is None:
            message = {"type": "status_changed", "event": "logout", "status": None, "reason": reason, "at": at}
        else:
            message = {"type": "status_changed", "event": "status_changed", "status": omni_status(status),
                       "reason": reason, "at": at}
        if command_id is not None:
            message["command_id"] = command_id
        state = self._consoles.get(user_id)
        if state is not None and reason != TOOLKIT_REASON:  # a person's change (or a logout), not a toolkit call's
            state.last_other_change_at = time.monotonic()
        self._call(lambda: self._push(user_id, message))

    def connected_users(self) -> list[str]:
        return sorted(user for user, state in list(self._consoles.items()) if state.connected)

    def stats(self) -> dict[str, Any]:
        states = list(self._consoles.values())
        return {
            "gateway_url": self.url,
            "consoles": len(states),
            "connected": sum(1 for state in states if state.connected),
            "stopped": {state.user_id: state.stopped_reason for state in states if state.stopped_reason},
            **dict(sorted(self.counts.items())),
        }

    # ---- on the consoles' loop

    def _call(self, action: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(action)

    def _open(self, user_id: str) -> None:
        state = self._consoles.get(user_id)
        if state is None:
            state = self._consoles[user_id] = _ConsoleState(user_id)
        if state.task is None or state.task.done():
            state.stopped_reason = None
            state.task = asyncio.get_running_loop().create_task(self._run(state))

    def _refresh(self, user_id: str) -> None:
        if self.settings(user_id).open:
            self._open(user_id)
            return
        state = self._consoles.get(user_id)
        if state is not None and state.task is not None:
            state.task.cancel()  # the browser tab closes: the connection drops, nothing is acknowledged

    def _push(self, user_id: str, message: dict[str, Any]) -> None:
        state = self._consoles.get(user_id)
        if state is None or not self.settings(user_id).open:
            return  # no console: nobody sees the change (the sync's poll will)
        state.outbox.put_nowait(message)  # sent now, or after the reconnect

    def _token(self, user_id: str) -> str:
        assert self._secret is not None
        issued = datetime.now(UTC)
        claims = {
            "sub": user_id, "org": self.org.org_id, "aud": TOKEN_AUDIENCE,
            "iat": int(issued.timestamp()), "exp": int((issued + TOKEN_LIFETIME).timestamp()),
            "jti": random_source.token_hex(16),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256", headers={"typ": "JWT"})

    async def _run(self, state: _ConsoleState) -> None:
        backoff = 0.2
        while self.settings(state.user_id).open:
            try:
                async with connect(self.url or "", open_timeout=10, max_size=2**20, ping_interval=None) as ws:
                    await self._converse(state, ws)
                    backoff = 0.2
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else 1006
                if code in STOP_CODES:
                    state.stopped_reason = f"{code} {closed.rcvd.reason if closed.rcvd else ''}".strip()
                    logger.warning("emulated console of %s stopped: %s", state.user_id, state.stopped_reason)
                    return
                self.counts["reconnects"] += 1
            except (OSError, InvalidHandshake, TimeoutError):
                self.counts["connect_failures"] += 1
            finally:
                state.connected = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _converse(self, state: _ConsoleState, ws: ClientConnection) -> None:
        await ws.send(json.dumps({"type": "hello", "protocol": PROTOCOL, "token": self._token(state.user_id),
                                  "client": CLIENT}))
        welcome = json.loads(await ws.recv())
        if welcome.get("type") != "welcome":
            raise ConnectionClosed(None, None)
        state.connected = True
        self.counts["connects"] += 1
        heartbeat = float(welcome.get("heartbeat_seconds") or 25)
        helpers = [asyncio.create_task(self._send_outbox(state, ws)),
                   asyncio.create_task(self._apply_commands(state)),
                   asyncio.create_task(self._keep_alive(state, ws, heartbeat))]
        try:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "command":
                    self.counts["commands_received"] += 1
                    state.commands.put_nowait({**message, "_received_at": time.monotonic()})
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _send_outbox(self, state: _ConsoleState, ws: ClientConnection) -> None:
        while True:
            message = await state.outbox.get()
            try:
                await ws.send(json.dumps(message))
            except ConnectionClosed:
                if message.get("type") == "status_changed":
                    state.outbox.put_nowait(message)  # the component keeps unsent pushes for the reconnect
                raise
            if message["type"] == "status_changed":
                self.counts["pushed"] += 1

    async def _keep_alive(self, state: _ConsoleState, ws: ClientConnection, heartbeat: float) -> None:
        renew_every = TOKEN_LIFETIME.total_seconds() * 0.75
        since_renew = 0.0
        while True:
            await asyncio.sleep(heartbeat)
            since_renew += heartbeat
            if since_renew >= renew_every:
                since_renew = 0.0
                await ws.send(json.dumps({"type": "renew", "token": self._token(state.user_id)}))
            else:
                await ws.send(json.dumps({"type": "ping"}))

    async def _apply_commands(self, state: _ConsoleState) -> None:
        while True:
            command = await state.commands.get()
            delay_ms = self.settings(state.user_id).apply_delay_ms
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            if not self.settings(state.user_id).open:
                return  # closed while the command waited: no answer (the broker calls it lost)
            ack, push = self._handle(state, command)
            self.counts[f"ack_{ack['outcome']}"] += 1
            state.outbox.put_nowait(ack)
            if push is not None:
                state.outbox.put_nowait(push)

    def _handle(self, state: _ConsoleState, command: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The component's applier: the ack to send, and the status change the console then reports."""
        command_id = str(command.get("command_id"))
        self.received_by_command[command_id] += 1
        ack: dict[str, Any] = {"type": "ack", "command_id": command_id}
        previous = state.handled.get(command_id)
        if previous is not None:
            return {**ack, "outcome": "ignored", "reason": "duplicate", "status": previous.get("status")}, None
        issued_at = str(command.get("issued_at") or "")
        if state.latest_issued_at is not None and issued_at < state.latest_issued_at:
            return {**ack, "outcome": "ignored", "reason": "stale"}, None
        received_at = command.get("_received_at")
        if state.last_other_change_at is not None and received_at is not None and state.last_other_change_at >= received_at:
            self._remember(state, command_id, {"outcome": "ignored"}, issued_at=None)
            return {**ack, "outcome": "ignored", "reason": "superseded by the agent's own change"}, None
        if command.get("user_id") != state.user_id:
            return {**ack, "outcome": "failed", "error": "command for another user than this console's"}, None
        action = command.get("action")
        with self.lock:
            if_showing = command.get("if_showing")
            if isinstance(if_showing, list):
                shown_id = self.presence.current_status_id(state.user_id)
                shown = self.org.status(shown_id) if shown_id is not None else None
                if (shown["DeveloperName"] if shown is not None else None) not in if_showing:
                    self._remember(state, command_id, {"outcome": "ignored"}, issued_at=None)
                    return {**ack, "outcome": "ignored", "reason": NOT_AS_EXPECTED, "status": omni_status(shown)}, None
            if action == "logout":
                changed = self.presence.change(state.user_id, None, self.clock.now())
                result: dict[str, Any] = {**ack, "outcome": "applied", "status": None}
                target: Record | None = None
            elif action == "set_status":
                target = self.org.status(str(command.get("status_id") or ""))
                error = self._refusal(state.user_id, target, command)
                if error is not None:
                    self._remember(state, command_id, {"outcome": "failed"}, issued_at=None)
                    return {**ack, "outcome": "failed", "error": error}, None
                assert target is not None
                changed = self.presence.change(state.user_id, target["Id"], self.clock.now())
                result = {**ack, "outcome": "applied", "status": omni_status(target)}
            else:
                return {**ack, "outcome": "failed", "error": f"unknown action {json.dumps(action)}"}, None
        self._remember(state, command_id, {"outcome": "applied", "status": result["status"]}, issued_at=issued_at)
        self.applied_by_command[command_id] += 1
        if not changed:
            return result, None
        push: dict[str, Any] = {
            "type": "status_changed", "event": "status_changed" if target is not None else "logout",
            "status": omni_status(target), "reason": TOOLKIT_REASON if target is not None else None,
            "at": _iso(self.clock.now()), "command_id": command_id,
        }
        return result, push

    def _refusal(self, user_id: str, status: Record | None, command: dict[str, Any]) -> str | None:
        """The Omni toolkit's error for a status this agent cannot take, or None."""
        if status is None:
            return f"Invalid presence status ID: {command.get('status_id')}"
        denied = self.settings(user_id).denied_statuses
        if status["DeveloperName"] in denied or not self.org.has_status_access(user_id, status["Id"]):
            return f"You don't have access to the presence status {status['MasterLabel']}."
        return None

    @staticmethod
    def _remember(state: _ConsoleState, command_id: str, what: dict[str, Any], issued_at: str | None) -> None:
        state.handled[command_id] = what
        if len(state.handled) > HANDLED_MEMORY:
            del state.handled[next(iter(state.handled))]
        if issued_at and (state.latest_issued_at is None or issued_at > state.latest_issued_at):
            state.latest_issued_at = issued_at
