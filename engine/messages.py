"""What goes in and out of the engine: observations, writes, write results, decisions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from presence_sync.engine.audit import AuditRecord
from presence_sync.engine.errors import ObservationError
from presence_sync.engine.memory import AgentMemory
from presence_sync.engine.states import CxoneState, CxoneTarget, Side


# The source time of a value whose start the source does not give: older than any real change.
UNKNOWN_SINCE = datetime(1970, 1, 1, tzinfo=UTC)


def require_utc(value: datetime, what: str | Callable[[], str]) -> datetime:
    """`value` in UTC; a naive datetime is refused (its zone would be a guess). `what` names it in the
    error (a callable: only built then, as for every observation of a poll)."""
    if isinstance(value, datetime) and value.tzinfo is UTC:
        return value
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        name = what() if callable(what) else what
        raise ObservationError(f"{name} must be a timezone-aware datetime (UTC), got {value!r}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Observation:
    """One state seen on one side, with the source's own timestamp.

    `source_id` names the observed change so that seeing it again is recognised: for CXone e.g.
    ``f"{agentId}:{agentStateId}:{outStateId}:{startDate}"``; for Salesforce the UserServicePresence
    Id, with a suffix such as ``":end"`` for the end of a spell that logged the agent out of Omni.

    >>> from datetime import datetime, UTC
    >>> Observation(7, Side.SALESFORCE, "On_Break", datetime(2026, 1, 5, 9, 0, tzinfo=UTC), "0Hn1")
    ... # doctest: +ELLIPSIS
    Observation(agent_id=7, side=<Side.SALESFORCE: 'salesforce'>, value='On_Break', ...)
    """

    agent_id: int
    side: Side
    value: CxoneState | str | None  # CxoneState for CXone; DeveloperName or None (logged out) for Salesforce
    at: datetime
    source_id: str
    # The write of ours that made this change, when the system says so (a console's push names the
    # command it applied): an echo by the system's word, even of a write no longer awaited.
    command_id: str | None = None

    def __post_init__(self) -> None:
        side = self.side
        if side.__class__ is not Side:  # a plain string; as the connectors build them, already a Side
            try:
                side = Side(side)
            except ValueError:
                raise ObservationError(f"observation side {side!r} is neither 'cxone' nor 'salesforce'") from None
        if side is Side.CXONE and not isinstance(self.value, CxoneState):
            raise ObservationError(
                f"a CXone observation of agent {self.agent_id} needs a CxoneState (as the connectors read it), "
                f"got {self.value!r}"
            )
        if side is Side.SALESFORCE and not (self.value is None or isinstance(self.value, str)):
            raise ObservationError(
                f"a Salesforce observation of agent {self.agent_id} needs a status DeveloperName or None, "
                f"got {self.value!r}"
            )
        if not self.source_id:
            raise ObservationError(f"an observation of agent {self.agent_id} needs a source_id")
        object.__setattr__(self, "side", side)
        object.__setattr__(self, "at", require_utc(self.at, lambda: f"observation {self.source_id!r} 'at'"))


@dataclass(frozen=True, slots=True)
class Write:
    """One write to apply: a Salesforce DeveloperName (through the presence applier) or a CXone target.

    `command_id` is deterministic: deciding the same batch from the same memory gives the same id, and
    a retry reuses it (`attempt` counts).
    """

    agent_id: int
    side: Side
    target: CxoneTarget | str
    command_id: str
    rule_row: str | None
    reason: str
    attempt: int = 1
    cause_id: str = ""
    initial: bool = False  # aligns a side seen for the first time (not a human change carried over)
    # A Salesforce write's precondition: what the console may show for it to apply (status names, or
    # OMNI_OFFLINE for logged out): what the sync last saw, or what a write of ours still landing
    # leaves. Showing anything else, the agent changed it since: the console leaves the agent's
    # choice and the sync decides again from it. None: no precondition (the side never seen).
    applies_if_showing: tuple[str, ...] | None = None


class WriteOutcome(StrEnum):
    OK = "ok"  # accepted by the API (the echo is still awaited)
    TRANSIENT = "transient"  # timeout, 5xx, 429, expired token...: retried after backoff
    PERMANENT = "permanent"  # unknown status id, agent without session, code refused...: not retried


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What applying a `Write` gave; reported back through `record_write_results`."""

    agent_id: int
    command_id: str
    outcome: WriteOutcome
    reason: str = ""  # plain-language cause for failures (no secrets)
    retry_after_seconds: float | None = None  # e.g. a 429's Retry-After; the backoff is at least this


@dataclass(frozen=True, slots=True)
class Decision:
    """The writes to apply, the memory of agents that changed (persist it), and the audit records."""

    writes: list[Write] = field(default_factory=list)
    memory: dict[int, AgentMemory] = field(default_factory=dict)
    audit: list[AuditRecord] = field(default_factory=list)
