"""The presence applier: the Lightning component in each agent's console (apis.md S4).

It receives every published `Presence_Sync_Command__e`, keeps the ones for its own user and calls
`setServicePresenceStatus` (StatusId__c "0" = Offline). What the real one cannot do, this one does not:
a command for a closed console is lost, and so is one for a status the user has no access to (the
Omni Toolkit call fails in the browser). Lost commands are counted by reason.

With `apply_delay_ms > 0` the command is applied later from the running event loop, the way the
real component acts a moment after the event arrives.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from presence_sync.emulators.faults import EmulatorClock
from presence_sync.emulators.salesforce.org import SalesforceOrg
from presence_sync.emulators.salesforce.presence import PresenceBook
from presence_sync.emulators.salesforce.store import Record

OFFLINE_STATUS_ID = "0"


@dataclass(frozen=True)
class Console:
    """An agent's console: open or closed, how long it takes to act, statuses the toolkit refuses it."""

    open: bool
    apply_delay_ms: int
    denied_statuses: frozenset[str] = field(default_factory=frozenset)  # DeveloperNames

    def as_dict(self) -> dict[str, Any]:
        view: dict[str, Any] = {"open": self.open, "apply_delay_ms": self.apply_delay_ms}
        if self.denied_statuses:  # only once a test or demo denied something
            view["denied_statuses"] = sorted(self.denied_statuses)
        return view


class PresenceApplier:
    def __init__(self, org: SalesforceOrg, presence: PresenceBook, clock: EmulatorClock,
                 lock: threading.RLock, default_delay_ms: int) -> None:
        self.org = org
        self.presence = presence
        self.clock = clock
        self.lock = lock
        self.default_delay_ms = default_delay_ms
        self._consoles: dict[str, Console] = {}
        self._pending: set[asyncio.TimerHandle] = set()
        self.published = 0
        self.applied = 0
        self.lost: Counter[str] = Counter()
        # Told of every change it applies (user id, status id or None): the console sees it like any change.
        self.on_change: Callable[[str, str | None], None] | None = None

    def console(self, user_id: str) -> Console:
        """Every user's console starts open, with the emulator's default delay."""
        console = self._consoles.get(user_id)
        if console is None:
            console = self._consoles[user_id] = Console(open=True, apply_delay_ms=self.default_delay_ms)
        return console

    def set_console(self, user_id: str, open: bool, apply_delay_ms: int | None = None,
                    denied_statuses: Iterable[str] | None = None) -> Console:
        """Open or close the console; `apply_delay_ms` / `denied_statuses` None keep the current ones."""
        current = self.console(user_id)
        delay = current.apply_delay_ms if apply_delay_ms is None else apply_delay_ms
        denied = current.denied_statuses if denied_statuses is None else frozenset(denied_statuses)
        console = self._consoles[user_id] = Console(open=open, apply_delay_ms=delay, denied_statuses=denied)
        return console

    def deliver(self, events: Iterable[Record]) -> None:
        """Hand committed events to the consoles that listen (called with the emulator's lock held)."""
        for event in events:
            self.published += 1
            user = self.org.user(event.get("UserId__c") or "")
            if user is None:
                self.lost["unknown_user"] += 1
                continue
            user_id = user["Id"]
            console = self.console(user_id)
            if not console.open:
                self.lost["console_closed"] += 1
                continue
            if console.apply_delay_ms == 0:
                self._apply(user_id, event)
                continue
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # published from plain code, not a request: nothing to wait in
                self._apply(user_id, event)
                continue
            self._schedule(loop, console.apply_delay_ms / 1000, user_id, event)

    def _schedule(self, loop: asyncio.AbstractEventLoop, delay_s: float, user_id: str, event: Record) -> None:
        handle: asyncio.TimerHandle

        def later() -> None:
            with self.lock:
                self._pending.discard(handle)
                self._apply(user_id, event)

        handle = loop.call_later(delay_s, later)
        self._pending.add(handle)

    def close(self) -> None:
        """Forget commands not yet applied (on reset)."""
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()

    def _apply(self, user_id: str, event: Record) -> None:
        if not self.console(user_id).open:  # closed while the command was waiting
            self.lost["console_closed"] += 1
            return
        raw_status = event.get("StatusId__c") or ""
        status_id: str | None = None
        if raw_status != OFFLINE_STATUS_ID:
            status = self.org.status(raw_status)
            if status is None:
                self.lost["unknown_status"] += 1
                return
            status_id = status["Id"]
            if not self.org.has_status_access(user_id, status_id):
                self.lost["no_access"] += 1
                return
            if status["DeveloperName"] in self.console(user_id).denied_statuses:
                self.lost["denied"] += 1
                return
        changed = self.presence.change(user_id, status_id, self.clock.now())
        self.applied += 1
        if changed and self.on_change is not None:
            self.on_change(user_id, status_id)

    def stats(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "applied": self.applied,
            "pending": len(self._pending),
            "lost": dict(sorted(self.lost.items())),
            "lost_total": sum(self.lost.values()),
        }
