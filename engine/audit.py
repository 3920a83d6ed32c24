"""Audit records: one plain-language line per decision the engine makes.

Every observation yields at least one record; writes, retries and give-ups not caused by an
observation get their own. Records carry states and status names only, never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from presence_sync.engine.logouts import OMNI_OFFLINE, OFFLINE_WORD
from presence_sync.engine.states import CxoneState, CxoneTarget, Side, display

OFFLINE = OFFLINE_WORD  # how Omni-Channel names "not logged in" (statusId "0", apis.md S4)


class Direction(StrEnum):
    CXONE_TO_SALESFORCE = "cxone->salesforce"
    SALESFORCE_TO_CXONE = "salesforce->cxone"

    @classmethod
    def toward(cls, side: Side) -> Direction:
        """The direction of a hop that ends on `side`."""
        return cls.SALESFORCE_TO_CXONE if side is Side.CXONE else cls.CXONE_TO_SALESFORCE

    @classmethod
    def away_from(cls, side: Side) -> Direction:
        """The direction of a hop that starts on `side`."""
        return cls.toward(side.other)


class Outcome(StrEnum):
    WRITE = "write"  # a write was issued (first attempt or retry)
    ECHO = "echo"  # our own write came back; never starts a new round
    NOOP = "noop"  # nothing to do (already shown, already in flight, superseded in the batch)
    UNMAPPED = "unmapped"  # the rule maps nothing for this state/status (or the team lacks the code)
    NO_RULE = "no_rule"  # the agent has no rule assigned
    NOT_LINKED = "not_linked"  # the agent has no linked Salesforce user
    CONFLICT = "conflict"  # both sides changed; this change lost under the conflict policy
    DEFERRED = "deferred"  # a Salesforce change during a CXone contact, applied when it ends
    FLAP = "flap"  # more human changes inside the flap window than the threshold
    STALE = "stale"  # older than what was already seen on that side
    DUPLICATE = "duplicate"  # the same observation again (replay, poll overlap)
    LOGGED_OUT = "logged_out"  # logged out of CXone / of Omni-Channel: nothing written
    FAILED = "failed"  # a write failed permanently; not retried
    RETRYING = "retrying"  # a write failed transiently or its echo is late; retried after backoff
    GAVE_UP = "gave_up"  # a write ran out of attempts


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One decision. `at` is the decide time; `observed_at` the source time of the observation, if any."""

    at: datetime
    agent_id: int
    direction: Direction
    outcome: Outcome
    from_value: str | None
    to_value: str | None
    rule_row: str | None
    reason: str
    observed_at: datetime | None = None
    command_id: str | None = None
    latency_ms: int | None = None  # echoes: source time of the echo minus that of the human change
    rule: str | None = None  # the presence rule that decided (None: the agent has none, or is not linked)

    def to_row(self) -> dict[str, Any]:
        """Plain values for the store's audit table."""
        return {
            "at": self.at,
            "agent_id": self.agent_id,
            "direction": self.direction.value,
            "outcome": self.outcome.value,
            "from_value": self.from_value,
            "to_value": self.to_value,
            "rule_row": self.rule_row,
            "reason": self.reason,
            "observed_at": self.observed_at,
            "command_id": self.command_id,
            "latency_ms": self.latency_ms,
            "rule_name": self.rule,
        }


def describe(value: CxoneState | CxoneTarget | str | None) -> str:
    """How a state, target or Salesforce status reads in audit and messages."""
    if value is None or value == OMNI_OFFLINE:
        return OFFLINE
    if isinstance(value, CxoneState | CxoneTarget):
        return display(value)
    return value
