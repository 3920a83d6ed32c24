"""The pure sync engine: the CXone state vocabulary and rule syntax, rules, and the decision that keeps
CXone and Salesforce agreeing. Standard library only: imports nothing else, not even the rest of
presence_sync; everything else may import it. No I/O, no clock reads (time is passed in), and it takes
typed values (the connectors turn API records into them), never raw JSON. A sync tick:

    memory = {a: AgentMemory.from_json(j) for a, j in store.sync.load_agent_memory().items()}
    wake = WakeQueue(memory)
    ...
    observations = [Observation(a, Side.CXONE, record.state, record.since, record.source_id), ...]
    decision = decide(rulebook, links, memory, observations, now, policy, due_agents=wake.pop_due(now))
    results = apply(decision.writes)                      # connectors; WriteResult per write
    memory.update(decision.memory)
    changed, audit = record_write_results(memory, results, now, policy)
    memory.update(changed); wake.update(decision.memory | changed)
    store.sync.commit_tick(agents=[agent_row(a, memory[a]) for a in decision.memory | changed], audit=..., ...)

`reconcile` takes a full read of both systems as observations and heals drift the same way.
`Shard` (shards.py) is the stable rule that splits the agents over several sync runs.
"""

from presence_sync.engine.audit import AuditRecord, Direction, Outcome
from presence_sync.engine.agent import command_id_for, resolution_basis
from presence_sync.engine.decide import decide, reconcile, record_write_results
from presence_sync.engine.errors import EngineError, MemoryFormatError, ObservationError, RuleError, StateError
from presence_sync.engine.logouts import (
    OMNI_OFFLINE,
    on_cxone_logout_text,
    on_omni_logout_text,
    parse_on_cxone_logout,
    parse_on_omni_logout,
    salesforce_shows,
    salesforce_value,
)
from presence_sync.engine.memory import AgentMemory, Command, CommandStatus, Deferred, Intent
from presence_sync.engine.messages import UNKNOWN_SINCE, Decision, Observation, Write, WriteOutcome, WriteResult
from presence_sync.engine.policy import ConflictPolicy, SyncPolicy
from presence_sync.engine.rule import AgentLink, Resolution, Rule, RuleBook
from presence_sync.engine.schedule import WakeQueue
from presence_sync.engine.shards import Shard, ShardError, shard_of
from presence_sync.engine.states import (
    ACD_SYNTAX,
    PREVIOUS_STATE,
    AcdState,
    AcdStateSyntaxError,
    CxoneState,
    CxoneStateName,
    CxoneTarget,
    PreviousState,
    Side,
    SubscriberTarget,
    display,
    parse_publisher_row,
    parse_subscriber_target,
)

__all__ = [
    "ACD_SYNTAX",
    "PREVIOUS_STATE",
    "UNKNOWN_SINCE",
    "AcdState",
    "AcdStateSyntaxError",
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
    "OMNI_OFFLINE",
    "MemoryFormatError",
    "Observation",
    "ObservationError",
    "Outcome",
    "PreviousState",
    "Resolution",
    "Shard",
    "ShardError",
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
    "display",
    "on_cxone_logout_text",
    "on_omni_logout_text",
    "parse_on_cxone_logout",
    "parse_on_omni_logout",
    "parse_publisher_row",
    "parse_subscriber_target",
    "reconcile",
    "record_write_results",
    "resolution_basis",
    "salesforce_shows",
    "salesforce_value",
]
