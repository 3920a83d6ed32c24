"""What the engine remembers per agent between decides, and its JSON form for the state store.

The engine serialises its own memory (`AgentMemory.to_json` / `AgentMemory.from_json`); the
store keeps the JSON opaque, as the one record of an agent's memory. The writes the store reports
are `cxone_command` / `salesforce_command` (and `next_due_at` says when they need attention).

De-duplication of replayed observations lives here, bounded: the last `SyncPolicy.remembered_sources`
source ids per agent, plus each side's latest source timestamp (anything older is stale).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from presence_sync.engine.audit import Outcome
from presence_sync.engine.errors import MemoryFormatError
from presence_sync.engine.logouts import salesforce_shows
from presence_sync.engine.rule import Resolution
from presence_sync.engine.states import CxoneState, CxoneTarget, Side

MEMORY_FORMAT_VERSION = 2
# Version 1 lacks what version 2 added (an intent's basis and previous state, a command's rule, a
# deferred logout); it reads as version 2 with those unknown.
_READABLE_VERSIONS = frozenset({1, MEMORY_FORMAT_VERSION})


class CommandStatus(StrEnum):
    IN_FLIGHT = "in_flight"  # issued; waiting for its echo until due_at
    RETRY_WAIT = "retry_wait"  # failed transiently or echo late; reissued at due_at
    FAILED = "failed"  # failed permanently; never reissued for the same cause
    GAVE_UP = "gave_up"  # ran out of attempts; reconcile may try again


@dataclass(frozen=True, slots=True)
class Command:
    """A write we issued to one side, tracked until its echo arrives or it is given up."""

    side: Side
    target: CxoneTarget | str
    command_id: str
    cause_id: str  # source id of the human change that made us write
    cause_at: datetime  # source time of that change (for end-to-end latency)
    rule_row: str | None
    issued_at: datetime  # first sent: an echo cannot be older than this
    sent_at: datetime  # last sent (retries): its echo is awaited until echo_timeout after this
    attempts: int
    status: CommandStatus
    due_at: datetime | None
    last_error: str | None = None
    rule: str | None = None  # the presence rule that made us write (None: written before it was recorded)
    initial: bool = False  # issued for a first sight (initial alignment): its echo times nothing

    @property
    def is_live(self) -> bool:
        """Issued and possibly still landing: its echo is expected."""
        return self.status in (CommandStatus.IN_FLIGHT, CommandStatus.RETRY_WAIT)

    def is_echo(self, value: CxoneState | str | None) -> bool:
        """Whether observing `value` on this command's side is this command landing."""
        if isinstance(self.target, CxoneTarget):
            return isinstance(value, CxoneState) and self.target.matches(value)
        return not isinstance(value, CxoneState) and salesforce_shows(self.target, value)


@dataclass(frozen=True, slots=True)
class Intent:
    """The latest human change that counts, and what it means for each side (resolved once, when made).

    Resolving once matters for Previous State: the CXone state it returns to must not move when our
    own write changes what "previous" is. It is resolved again only when the agent's rule (or their
    team's codes) changed: `basis` says what it was resolved by, `previous` what Previous State meant.
    """

    side: Side
    value: CxoneState | str | None
    at: datetime
    source_id: str
    cxone: Resolution[CxoneTarget]
    salesforce: Resolution[str]
    basis: str | None = None  # the rule and team codes it was resolved by (None: memory of version 1)
    previous: CxoneTarget | None = None  # the agent's previous CXone state when it was made
    # The first sight of a side (after onboarding, or a new agent): writes for it align the systems;
    # they answer no human change, so no propagation time is measured from it.
    first_sight: bool = False

    def resolution(self, side: Side) -> Resolution[Any]:
        return self.cxone if side is Side.CXONE else self.salesforce


@dataclass(frozen=True, slots=True)
class Deferred:
    """A Salesforce status (None: a logout of Omni-Channel) requested while CXone was on a contact;
    applied when the contact ends."""

    status: str | None
    at: datetime
    source_id: str


@dataclass(frozen=True, slots=True)
class AgentMemory:
    """Everything the engine keeps about one agent. Missing memory means first sight."""

    cxone: CxoneState | None = None
    cxone_at: datetime | None = None  # None: CXone never observed
    previous: CxoneTarget | None = None  # last settable CXone state before the current one
    contact_since: datetime | None = None  # when the current CXone contact (call ... ACW) began
    salesforce: str | None = None  # None with salesforce_at set: logged out of Omni
    salesforce_at: datetime | None = None  # None: Salesforce never observed
    intent: Intent | None = None
    deferred: Deferred | None = None
    cxone_command: Command | None = None
    salesforce_command: Command | None = None
    echo_watch: tuple[Command, ...] = ()  # superseded live commands whose echo may still arrive
    recent_changes: tuple[datetime, ...] = ()  # human change times inside the flap window
    recent_sources: tuple[str, ...] = ()
    issued: int = 0  # commands issued so far: makes command ids unique per agent, deterministically

    def command(self, side: Side) -> Command | None:
        return self.cxone_command if side is Side.CXONE else self.salesforce_command

    def awaits_echo(self, side: Side, value: CxoneState | str | None) -> bool:
        """Whether `side` showing `value` is most likely our write in flight there landing (`decide` tells
        for sure). Cheap enough to sort a burst's observations by: its echoes can wait behind people."""
        command = self.cxone_command if side is Side.CXONE else self.salesforce_command
        return command is not None and command.is_live and command.is_echo(value)

    @property
    def next_due_at(self) -> datetime | None:
        """When a live command needs attention (echo timeout or retry), if ever."""
        due = [c.due_at for c in (self.cxone_command, self.salesforce_command) if c and c.is_live and c.due_at]
        return min(due, default=None)

    def to_json(self) -> dict[str, Any]:
        # Written out rather than through `_opt`: the store saves thousands of these a second in a burst.
        return {
            "v": MEMORY_FORMAT_VERSION,
            "cxone": None if self.cxone is None else self.cxone.to_json(),
            "cxone_at": _iso(self.cxone_at),
            "previous": None if self.previous is None else self.previous.to_json(),
            "contact_since": _iso(self.contact_since),
            "salesforce": self.salesforce,
            "salesforce_at": _iso(self.salesforce_at),
            "intent": None if self.intent is None else _intent_to_json(self.intent),
            "deferred": None if self.deferred is None else _deferred_to_json(self.deferred),
            "cxone_command": None if self.cxone_command is None else _command_to_json(self.cxone_command),
            "salesforce_command": None if self.salesforce_command is None else _command_to_json(self.salesforce_command),
            "echo_watch": [_command_to_json(c) for c in self.echo_watch],
            "recent_changes": [_iso(t) for t in self.recent_changes],
            "recent_sources": list(self.recent_sources),
            "issued": self.issued,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AgentMemory:
        """Read memory written by `to_json`; raises `MemoryFormatError` with the cause."""
        version = data.get("v") if isinstance(data, Mapping) else None
        if version not in _READABLE_VERSIONS:
            raise MemoryFormatError(
                f"agent memory format {version!r} is not one this presence-sync reads "
                f"({', '.join(map(str, sorted(_READABLE_VERSIONS)))}): it was written by another "
                "presence-sync version; upgrade presence-sync, or clear the agent_state table so reconcile rebuilds it"
            )
        try:
            return cls(
                cxone=_opt(data["cxone"], CxoneState.from_json),
                cxone_at=_opt(data["cxone_at"], datetime.fromisoformat),
                previous=_opt(data["previous"], CxoneTarget.from_json),
                contact_since=_opt(data["contact_since"], datetime.fromisoformat),
                salesforce=data["salesforce"],
                salesforce_at=_opt(data["salesforce_at"], datetime.fromisoformat),
                intent=_opt(data["intent"], _intent_from_json),
                deferred=_opt(data["deferred"], _deferred_from_json),
                cxone_command=_opt(data["cxone_command"], _command_from_json),
                salesforce_command=_opt(data["salesforce_command"], _command_from_json),
                echo_watch=tuple(_command_from_json(c) for c in data["echo_watch"]),
                recent_changes=tuple(datetime.fromisoformat(t) for t in data["recent_changes"]),
                recent_sources=tuple(str(s) for s in data["recent_sources"]),
                issued=int(data["issued"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MemoryFormatError(
                f"agent memory is damaged ({type(error).__name__}: {error}); clear this agent's row in "
                "agent_state so reconcile rebuilds it"
            ) from None


def _opt(value: Any, convert: Callable[[Any], Any]) -> Any:
    return None if value is None else convert(value)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # A burst's memories share a few instants (the tick's now, the change's time): formatting one costs
    # ten times looking it up. Only UTC's: an equal instant in another zone would read differently.
    return _utc_iso(value) if value.tzinfo is UTC else value.isoformat()


@functools.lru_cache(maxsize=4096)
def _utc_iso(value: datetime) -> str:
    return value.isoformat()


def _side_value_to_json(value: CxoneState | str | None) -> Any:
    return value.to_json() if isinstance(value, CxoneState) else value


def _side_value_from_json(side: Side, data: Any) -> CxoneState | str | None:
    return CxoneState.from_json(data) if side is Side.CXONE and data is not None else data


def _target_to_json(target: CxoneTarget | str | None) -> Any:
    return target.to_json() if isinstance(target, CxoneTarget) else target


def _target_from_json(side: Side, data: Any) -> CxoneTarget | str | None:
    return CxoneTarget.from_json(data) if side is Side.CXONE and data is not None else data


def _resolution_to_json(resolution: Resolution[Any]) -> dict[str, Any]:
    return {
        "target": _target_to_json(resolution.target),
        "row": resolution.row,
        "reason": resolution.reason,
        "outcome": str(resolution.outcome),
    }


def _resolution_from_json(side: Side, data: Mapping[str, Any]) -> Resolution[Any]:
    return Resolution(
        _target_from_json(side, data["target"]), data["row"], data["reason"], Outcome(data["outcome"])
    )


def _intent_to_json(intent: Intent) -> dict[str, Any]:
    return {
        "side": str(intent.side),
        "value": _side_value_to_json(intent.value),
        "at": _iso(intent.at),
        "source_id": intent.source_id,
        "cxone": _resolution_to_json(intent.cxone),
        "salesforce": _resolution_to_json(intent.salesforce),
        "basis": intent.basis,
        "previous": None if intent.previous is None else intent.previous.to_json(),
        "first_sight": intent.first_sight,
    }


def _intent_from_json(data: Mapping[str, Any]) -> Intent:
    side = Side(data["side"])
    return Intent(
        side=side,
        value=_side_value_from_json(side, data["value"]),
        at=datetime.fromisoformat(data["at"]),
        source_id=data["source_id"],
        cxone=_resolution_from_json(Side.CXONE, data["cxone"]),
        salesforce=_resolution_from_json(Side.SALESFORCE, data["salesforce"]),
        basis=data.get("basis"),
        previous=_opt(data.get("previous"), CxoneTarget.from_json),
        first_sight=bool(data.get("first_sight", False)),
    )


def _deferred_to_json(deferred: Deferred) -> dict[str, Any]:
    return {"status": deferred.status, "at": _iso(deferred.at), "source_id": deferred.source_id}


def _deferred_from_json(data: Mapping[str, Any]) -> Deferred:
    return Deferred(data["status"], datetime.fromisoformat(data["at"]), data["source_id"])


def _command_to_json(command: Command) -> dict[str, Any]:
    return {
        "side": str(command.side),
        "target": _target_to_json(command.target),
        "command_id": command.command_id,
        "cause_id": command.cause_id,
        "cause_at": _iso(command.cause_at),
        "rule_row": command.rule_row,
        "issued_at": _iso(command.issued_at),
        "sent_at": _iso(command.sent_at),
        "attempts": command.attempts,
        "status": str(command.status),
        "due_at": _iso(command.due_at),
        "last_error": command.last_error,
        "rule": command.rule,
        "initial": command.initial,
    }


def _command_from_json(data: Mapping[str, Any]) -> Command:
    side = Side(data["side"])
    target = _target_from_json(side, data["target"])
    if target is None:
        raise ValueError("a command without a target")
    return Command(
        side=side,
        target=target,
        command_id=data["command_id"],
        cause_id=data["cause_id"],
        cause_at=datetime.fromisoformat(data["cause_at"]),
        rule_row=data["rule_row"],
        issued_at=datetime.fromisoformat(data["issued_at"]),
        sent_at=datetime.fromisoformat(data["sent_at"]),
        attempts=int(data["attempts"]),
        status=CommandStatus(data["status"]),
        due_at=_opt(data["due_at"], datetime.fromisoformat),
        last_error=data["last_error"],
        rule=data.get("rule"),
        initial=bool(data.get("initial", False)),
    )
