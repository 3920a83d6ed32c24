"""The pure sync engine: rules, states and the decision that keeps CXone and Salesforce agreeing.

No I/O, no clock (time is passed in), no Prefect. The sync tick builds `Observation`s, calls
`decide`, applies the `Write`s, reports back with `record_write_results`, and persists
`Decision.memory` (as `AgentMemory.to_json()`) and `Decision.audit`. `reconcile` heals drift
from a full read of both systems.
"""

from engine.audit import AuditRecord, Direction, Outcome
from engine.decide import command_id_for, decide, reconcile, record_write_results
from engine.errors import EngineError, MemoryFormatError, ObservationError, RuleError, StateError
from engine.memory import AgentMemory, Command, CommandStatus, Deferred, Intent
from engine.messages import UNKNOWN_SINCE, Decision, Observation, Write, WriteOutcome, WriteResult
from engine.policy import ConflictPolicy, SyncPolicy
from engine.rule import AgentLink, Resolution, Rule, RuleBook
from engine.schedule import WakeQueue
from engine.states import (
    PREVIOUS_STATE,
    CxoneState,
    CxoneStateName,
    CxoneTarget,
    PreviousState,
    Side,
    SubscriberTarget,
    parse_publisher_key,
    parse_subscriber_target,
)

__all__ = [
    "PREVIOUS_STATE",
    "UNKNOWN_SINCE",
    "AgentLink",
    "AgentMemory",
    "AuditRecord",
    "Command",
    "CommandStatus",
    "ConflictPolicy",
    "CxoneState",
    "CxoneStateName",
    "CxoneTarget",
    "Decision",
    "Deferred",
    "Direction",
    "EngineError",
    "Intent",
    "MemoryFormatError",
    "Observation",
    "ObservationError",
    "Outcome",
    "PreviousState",
    "Resolution",
    "Rule",
    "RuleBook",
    "RuleError",
    "Side",
    "StateError",
    "SubscriberTarget",
    "SyncPolicy",
    "WakeQueue",
    "Write",
    "WriteOutcome",
    "WriteResult",
    "command_id_for",
    "decide",
    "parse_publisher_key",
    "parse_subscriber_target",
    "reconcile",
    "record_write_results",
]
