"""The sync decision: from what both systems showed, decide the writes that make them agree.

Level-triggered: each agent's latest change by a person (its *intent*) says what both sides should
show; a side is written only when it shows something else and no write of that target is already
on its way. Our own writes come back as *echoes*: they are recognised and never start a new round,
so a rule that is not one-to-one cannot ping-pong. The per-agent steps are in `engine.agent`.

Example:
    >>> from datetime import datetime, UTC
    >>> from engine import CxoneState, CxoneTarget, Observation, Rule, RuleBook, AgentLink, Side, decide
    >>> rule = Rule("R", publisher={"Unavailable: Break": "On_Break"},
    ...             subscriber={"On_Break": CxoneTarget.unavailable("Break")})
    >>> book = RuleBook.build([rule], teams={1: "R"})
    >>> links = {7: AgentLink(7, "005A", team_id=1, team_codes=frozenset({"Break"}))}
    >>> now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> seen = Observation(7, Side.CXONE, CxoneState("Unavailable", "Break"), now, "cx-1")
    >>> [(w.side.value, w.target) for w in decide(book, links, {}, [seen], now).writes]
    [('salesforce', 'On_Break')]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from presence_sync.engine.agent import AgentSync, command_record, gave_up_reason, observation_record
from presence_sync.engine.audit import AuditRecord, Outcome
from presence_sync.engine.memory import AgentMemory, CommandStatus
from presence_sync.engine.messages import Decision, Observation, WriteOutcome, WriteResult, require_utc
from presence_sync.engine.policy import SyncPolicy
from presence_sync.engine.rule import AgentLink, RuleBook
from presence_sync.engine.states import Side


def decide(
    rulebook: RuleBook,
    links: Mapping[int, AgentLink],
    memory: Mapping[int, AgentMemory],
    observations: Iterable[Observation],
    now: datetime,
    policy: SyncPolicy = SyncPolicy(),
    *,
    due_agents: Collection[int] | None = None,
) -> Decision:
    """Decide the writes for a batch of observations (any order, duplicates and replays allowed).

    Besides the agents observed, agents with a write whose echo or retry is due are handled:
    `due_agents` names them (e.g. from a `WakeQueue`, O(changes)); when omitted, `memory` is scanned.
    """
    now = require_utc(now, "now")
    by_agent: dict[int, list[Observation]] = defaultdict(list)
    for observation in observations:
        by_agent[observation.agent_id].append(observation)
    if due_agents is None:
        due_agents = [agent_id for agent_id, m in memory.items() if _is_due(m, now)]
    decision = Decision()
    for agent_id in sorted(by_agent.keys() | set(due_agents)):
        _decide_agent(agent_id, by_agent.get(agent_id, []), rulebook, links, memory, now, policy, False, decision)
    return decision


def reconcile(
    rulebook: RuleBook,
    links: Mapping[int, AgentLink],
    memory: Mapping[int, AgentMemory],
    snapshot: Iterable[Observation],
    now: datetime,
    policy: SyncPolicy = SyncPolicy(),
) -> Decision:
    """Heal drift from a full read of both systems.

    `snapshot` is what each system shows now, one observation per agent and side, built exactly as
    the incremental polls build theirs (same source ids, source timestamps; `UNKNOWN_SINCE` when the
    source has no time, e.g. a user never logged in to Omni). A value that differs from memory is a
    change the polls missed (or our own write landing) and is observed; then each agent in the
    snapshot is converged, and writes that failed or gave up are tried again with a fresh command.
    Agents that are not linked or have no rule are skipped silently.

    >>> decision = reconcile(book, links, memory, full_read_observations, now)  # doctest: +SKIP
    """
    now = require_utc(now, "now")
    by_agent: dict[int, list[Observation]] = defaultdict(list)
    for observation in snapshot:
        by_agent[observation.agent_id].append(observation)
    decision = Decision()
    for agent_id in sorted(by_agent):
        link = links.get(agent_id)
        if link is None or rulebook.rule_for(link) is None:
            continue
        known = memory.get(agent_id) or AgentMemory()
        missed = [o for o in by_agent[agent_id] if _is_news(known, o)]
        _decide_agent(agent_id, missed, rulebook, links, memory, now, policy, True, decision)
    return decision


def record_write_results(
    memory: Mapping[int, AgentMemory],
    results: Iterable[WriteResult],
    now: datetime,
    policy: SyncPolicy = SyncPolicy(),
) -> tuple[dict[int, AgentMemory], list[AuditRecord]]:
    """Fold the results of applying writes into memory: returns (memory of changed agents, audit).

    ok: the echo is awaited, at least `echo_timeout` from now (a write that waited long for its turn,
    in a burst, is not retried while its echo is still on its way). transient: retried after backoff
    (at least `retry_after_seconds`) on a later decide, until `max_attempts`. permanent: audited
    "failed" and not retried for that change.
    """
    now = require_utc(now, "now")
    updated: dict[int, AgentMemory] = {}
    audit: list[AuditRecord] = []
    for result in results:
        known = updated.get(result.agent_id) or memory.get(result.agent_id)
        if known is None:
            continue
        command = next(
            (c for c in (known.cxone_command, known.salesforce_command) if c and c.command_id == result.command_id),
            None,
        )
        field_name = "cxone_command" if command is not None and command.side is Side.CXONE else "salesforce_command"
        if command is not None and result.outcome is WriteOutcome.OK and command.status is CommandStatus.RETRY_WAIT:
            # Its echo was declared late while the write still waited its turn: it has landed now, so
            # the retry would write it twice; its echo is awaited instead.
            awaited = replace(command, status=CommandStatus.IN_FLIGHT, due_at=now + policy.echo_timeout)
            updated[result.agent_id] = replace(known, **{field_name: awaited})
            continue
        if command is None or command.status is not CommandStatus.IN_FLIGHT:
            continue  # superseded, echoed already, or a repeated report: nothing to track
        if result.outcome is WriteOutcome.OK:
            # Memory changes only when the echo wait had mostly run out while the write waited its turn.
            if command.due_at is not None and command.due_at < now + policy.echo_timeout / 2:
                awaited = replace(command, due_at=now + policy.echo_timeout)
                updated[result.agent_id] = replace(known, **{field_name: awaited})
            continue
        reason = result.reason or "no reason given"
        if result.outcome is WriteOutcome.PERMANENT:
            changed = replace(command, status=CommandStatus.FAILED, due_at=None, last_error=reason)
            outcome, text = Outcome.FAILED, f"write failed and will not be retried: {reason}"
        elif command.attempts >= policy.max_attempts:
            changed = replace(command, status=CommandStatus.GAVE_UP, due_at=None, last_error=reason)
            outcome, text = Outcome.GAVE_UP, gave_up_reason(command, reason)
        else:
            delay = policy.retry_delay(command.attempts, command.command_id)
            delay = max(delay.total_seconds(), result.retry_after_seconds or 0.0)
            changed = replace(
                command, status=CommandStatus.RETRY_WAIT, due_at=now + timedelta(seconds=delay), last_error=reason
            )
            outcome, text = Outcome.RETRYING, (
                f"write failed ({reason}); retrying in {delay:.0f}s "
                f"(attempt {command.attempts + 1} of {policy.max_attempts})"
            )
        updated[result.agent_id] = replace(known, **{field_name: changed})
        audit.append(command_record(result.agent_id, now, command, outcome, text))
    return updated, audit


# --------------------------------------------------------------------------------------------


def _is_news(memory: AgentMemory, observation: Observation) -> bool:
    """Whether a full read's observation tells more than memory knows (else reconcile skips it quietly)."""
    if observation.source_id in memory.recent_sources:
        return False
    if observation.side is Side.CXONE:
        shown, shown_at = memory.cxone, memory.cxone_at
    else:
        shown, shown_at = memory.salesforce, memory.salesforce_at
    return shown_at is None or observation.at > shown_at or observation.value != shown


def _is_due(memory: AgentMemory, now: datetime) -> bool:
    due_at = memory.next_due_at
    return due_at is not None and due_at <= now


def _decide_agent(
    agent_id: int,
    observations: list[Observation],
    rulebook: RuleBook,
    links: Mapping[int, AgentLink],
    memory: Mapping[int, AgentMemory],
    now: datetime,
    policy: SyncPolicy,
    rearm: bool,
    decision: Decision,
) -> None:
    link = links.get(agent_id)
    rule = None if link is None else rulebook.rule_for(link)
    if link is None or rule is None:
        outcome = Outcome.NOT_LINKED if link is None else Outcome.NO_RULE
        reason = (
            "the agent has no linked Salesforce user; link it (refresh-users, or a links override in the config)"
            if link is None
            else "no presence rule is assigned to the agent or its team, so it is not synced; assign one in the "
            "config's rules (teams or users)"
        )
        decision.audit.extend(observation_record(o, now, outcome, reason) for o in observations)
        return
    before = memory.get(agent_id)
    if before is None and not observations:
        return
    sync = AgentSync(agent_id, link, rule, before or AgentMemory(), now, policy)
    sync.run(observations, rearm)
    after = sync.memory()
    if after != before:
        decision.memory[agent_id] = after
    decision.writes.extend(sync.writes)
    decision.audit.extend(sync.audit)


