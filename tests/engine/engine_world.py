"""A tiny in-memory world for property tests: both systems, people changing them, and our writes landing late.

Each side keeps a log of changes (who made each: a person, or one of our commands). Polls behave like
the real APIs: CXone returns each agent's *current* state when it changed (intermediate states can be
missed), Salesforce returns every presence spell since its watermark, with overlap. Faults: a side's
poll is skipped (its echoes arrive late and out of order with the other side), spells are re-delivered
or dropped, old batches are replayed. Writes land after a delay, in issue order per side; a write to a
Salesforce console that is closed is lost, a CXone write for a logged-out agent fails permanently.

The world checks the per-decide properties itself (`Violation` on failure); the end-state properties
are checked by the tests.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from presence_sync.engine import (
    UNKNOWN_SINCE,
    AgentLink,
    AgentMemory,
    AuditRecord,
    CxoneState,
    CxoneTarget,
    Decision,
    Observation,
    Outcome,
    RuleBook,
    Side,
    SyncPolicy,
    Write,
    WriteOutcome,
    WriteResult,
    decide,
    reconcile,
    record_write_results,
    salesforce_shows,
    salesforce_value,
)
from tests.engine.engine_demo import T0

TICK = timedelta(seconds=1)
CONTACT_END: Any = object()  # a CXone "change" that ends the agent's contact: see `_person_acts`


class Violation(AssertionError):
    """A property of the engine does not hold."""


@dataclass(frozen=True)
class Change:
    """One change a side went through."""

    agent_id: int
    side: Side
    value: CxoneState | str | None
    at: datetime
    source_id: str
    by_command: str | None  # None: a person made it


@dataclass(frozen=True)
class Issued:
    write: Write
    at: datetime
    by_reconcile: bool


@dataclass
class Faults:
    """What goes wrong during one tick's poll."""

    skip_cxone: bool = False
    skip_salesforce: bool = False
    overlap: bool = False  # re-deliver the last spell already delivered
    drop_salesforce: bool = False  # the newest new spell is never delivered (reconcile must heal it)
    replay: int | None = None  # re-deliver the batch of that many ticks ago


@dataclass
class World:
    rulebook: RuleBook
    links: dict[int, AgentLink]
    policy: SyncPolicy
    cxone: dict[int, CxoneState]
    salesforce: dict[int, str | None]
    console_open: dict[int, bool]
    land_delay: Callable[[], timedelta]
    now: datetime = T0
    memory: dict[int, AgentMemory] = field(default_factory=dict)
    log: dict[tuple[int, Side], list[Change]] = field(default_factory=lambda: defaultdict(list))
    audit: dict[int, list[AuditRecord]] = field(default_factory=lambda: defaultdict(list))
    issued: list[Issued] = field(default_factory=list)
    batches: list[list[Observation]] = field(default_factory=list)
    writes_per_tick: list[int] = field(default_factory=list)
    ambiguous_until: dict[int, datetime] = field(default_factory=dict)  # see `_person_acts`
    ever_ambiguous: set[int] = field(default_factory=set)
    resume: dict[int, CxoneState] = field(default_factory=dict)  # where a contact returns the agent
    queued: dict[int, tuple[CxoneState, str]] = field(default_factory=dict)  # a write that landed during a call
    queued_landings: set[str] = field(default_factory=set)  # contact ends that applied such a write
    delivered: set[str] = field(default_factory=set)  # source ids the engine was ever shown

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._clock = self.now  # the time of the world event being played
        self._events: list[tuple[datetime, int, Callable[[], None]]] = []
        self._delivered_cxone: dict[int, str] = {}
        self._salesforce_cursor: dict[int, int] = defaultdict(int)
        self._pending_landings = 0
        self._shown_before: dict[int, CxoneState] = {}
        for agent_id in self.links:
            self._record(agent_id, Side.CXONE, self.cxone[agent_id], None)
            if self.salesforce[agent_id] is not None:
                self._record(agent_id, Side.SALESFORCE, self.salesforce[agent_id], None)

    # -- the world -----------------------------------------------------------------------------

    def person(self, agent_id: int, side: Side, value: CxoneState | str | None, offset_ms: int) -> None:
        """A person changes `side` at `offset_ms` into the coming tick."""
        at = self.now + timedelta(milliseconds=offset_ms)
        self._schedule(at, lambda: self._person_acts(agent_id, side, value))

    def _person_acts(self, agent_id: int, side: Side, value: CxoneState | str | None) -> None:
        if side is Side.SALESFORCE and not self.console_open[agent_id]:
            return  # the Omni widget lives in the console
        ends_contact = landing = False
        if value is CONTACT_END:
            if not self.cxone[agent_id].is_contact:
                return
            # CXone ends the contact itself: the agent goes to a state set during it, else back to the
            # one before it (apis.md C3; the emulator's contact life cycle).
            queued = self.queued.get(agent_id)
            landing = queued is not None
            value = queued[0] if queued else self.resume.get(agent_id, CxoneState("Unavailable"))
            seen = self._shown_before.get(agent_id)
            ends_contact = seen is not None and seen.is_contact  # else: a contact no poll showed
        if self._shown(agent_id, side) == value:
            return
        if not ends_contact and any(_lands_as(i.write, value) for i in self._recent_writes(agent_id, side)):
            # The person picked what one of our writes is about to set: the two are told apart by
            # value only, so for a while either may read as the other. (The end of a contact the engine
            # saw is told apart by the contact.)
            self.ambiguous_until[agent_id] = self._clock + 2 * self.policy.echo_timeout
            self.ever_ambiguous.add(agent_id)
        self._set(agent_id, side, value, None)
        if landing:
            self.queued_landings.add(self.log[agent_id, side][-1].source_id)

    def _recent_writes(self, agent_id: int, side: Side) -> list[Issued]:
        horizon = self._clock - self.policy.echo_timeout
        return [i for i in self.issued if i.write.agent_id == agent_id and i.write.side is side and i.at >= horizon]

    def _shown(self, agent_id: int, side: Side) -> CxoneState | str | None:
        return self.cxone[agent_id] if side is Side.CXONE else self.salesforce[agent_id]

    def _set(self, agent_id: int, side: Side, value: CxoneState | str | None, by_command: str | None) -> None:
        if side is Side.CXONE:
            assert isinstance(value, CxoneState)
            before = self.cxone[agent_id]
            if value.is_contact and not before.is_contact:
                self.resume[agent_id] = before
            if not value.is_contact:
                self.resume.pop(agent_id, None)
            self.queued.pop(agent_id, None)
            self.cxone[agent_id] = value
        else:
            self.salesforce[agent_id] = value  # type: ignore[assignment]
        self._record(agent_id, side, value, by_command)

    def _record(self, agent_id: int, side: Side, value: CxoneState | str | None, by_command: str | None) -> None:
        at = self._clock
        source_id = f"{side.value[:2]}-{next(self._ids)}"
        self.log[agent_id, side].append(Change(agent_id, side, value, at, source_id, by_command))

    def _schedule(self, at: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (at, next(self._ids), action))

    def _run_events_until(self, until: datetime) -> None:
        while self._events and self._events[0][0] <= until:
            at, _, action = heapq.heappop(self._events)
            self._clock = at
            action()
        self._clock = until

    def _land(self, write: Write) -> None:
        self._pending_landings -= 1
        agent_id, side = write.agent_id, write.side
        if side is Side.SALESFORCE:
            assert isinstance(write.target, str)
            value = salesforce_value(write.target)  # None: the applier logs the agent out of Omni
            if self.console_open[agent_id] and self.salesforce[agent_id] != value:
                self._set(agent_id, side, value, write.command_id)
            return
        shown = self.cxone[agent_id]
        target = write.target
        assert isinstance(target, CxoneTarget)
        if shown.is_logged_out:
            return  # a logged-out agent has no session to set (or end)
        value = CxoneState(target.state, target.code)
        if target.is_logout:
            self._set(agent_id, side, value, write.command_id)  # CXone ends the session at once, contact or not
            return
        if shown.is_contact and not shown.is_acw:
            self.queued[agent_id] = (value, write.command_id)  # CXone applies it when the contact ends
            return
        if value != shown:
            self._set(agent_id, side, value, write.command_id)  # outside a live contact (ACW too): at once

    def change_setup(self, rulebook: RuleBook, links: dict[int, AgentLink]) -> None:
        """Onboarding or refresh-users changed who has which rule, or an agent's team: the sync reloads it."""
        self.rulebook, self.links = rulebook, links

    # -- the sync tick -------------------------------------------------------------------------

    def tick(self, faults: Faults = Faults()) -> Decision:
        self.now += TICK
        self._run_events_until(self.now)
        batch = self._poll(faults)
        self.batches.append(batch)
        if faults.replay is not None and faults.replay < len(self.batches):
            batch = batch + self.batches[-1 - faults.replay]
        self.delivered.update(o.source_id for o in batch)
        before = dict(self.memory)
        decision = decide(self.rulebook, self.links, self.memory, batch, self.now, self.policy)
        self._check_decision(before, batch, decision)
        self._note_shown(batch)
        self._take(decision, by_reconcile=False)
        return decision

    def reconcile(self) -> Decision:
        self.now += TICK
        self._run_events_until(self.now)
        snapshot = []
        for agent_id in self.links:
            snapshot.append(_observe(self.log[agent_id, Side.CXONE][-1]))
            spells = self.log[agent_id, Side.SALESFORCE]
            never = Observation(agent_id, Side.SALESFORCE, None, UNKNOWN_SINCE, f"never-in-omni-{agent_id}")
            snapshot.append(_observe(spells[-1]) if spells else never)
        self.delivered.update(o.source_id for o in snapshot)
        decision = reconcile(self.rulebook, self.links, self.memory, snapshot, self.now, self.policy)
        self._note_shown(snapshot)
        for write in decision.writes:
            self._check_write_is_settable(write)
        self._take(decision, by_reconcile=True)
        return decision

    def _note_shown(self, observations: list[Observation]) -> None:
        """The newest CXone value the engine was shown, per agent (to tell a contact's end)."""
        for observation in sorted(observations, key=lambda o: o.at):
            if observation.side is Side.CXONE and isinstance(observation.value, CxoneState):
                self._shown_before[observation.agent_id] = observation.value

    def _poll(self, faults: Faults) -> list[Observation]:
        batch: list[Observation] = []
        for agent_id in self.links:
            if not faults.skip_cxone:
                current = self.log[agent_id, Side.CXONE][-1]
                if self._delivered_cxone.get(agent_id) != current.source_id:
                    self._delivered_cxone[agent_id] = current.source_id
                    batch.append(_observe(current))
            if not faults.skip_salesforce:
                spells = self.log[agent_id, Side.SALESFORCE]
                start = self._salesforce_cursor[agent_id]
                fresh = spells[start:]
                self._salesforce_cursor[agent_id] = len(spells)
                if faults.drop_salesforce and fresh:
                    fresh = fresh[:-1]
                if faults.overlap and start > 0:
                    fresh = [spells[start - 1], *fresh]
                batch.extend(_observe(change) for change in fresh)
        return batch

    def _take(self, decision: Decision, by_reconcile: bool) -> None:
        self.memory.update(decision.memory)
        for record in decision.audit:
            self.audit[record.agent_id].append(record)
        results = []
        for write in decision.writes:
            self.issued.append(Issued(write, self.now, by_reconcile))
            if any(
                change.by_command is None and change.at >= self.now - self.policy.clock_skew and _lands_as(write, change.value)
                for change in self.log[write.agent_id, write.side]
            ):
                # A person picked this value just before we wrote it: within the clock skew allowed,
                # the engine can take their change for our echo.
                self.ambiguous_until[write.agent_id] = self.now + 2 * self.policy.echo_timeout
                self.ever_ambiguous.add(write.agent_id)
            ends_session = isinstance(write.target, CxoneTarget) and write.target.is_logout
            if write.side is Side.CXONE and self.cxone[write.agent_id].is_logged_out and not ends_session:
                results.append(WriteResult(write.agent_id, write.command_id, WriteOutcome.PERMANENT, "409: no session"))
                continue
            results.append(WriteResult(write.agent_id, write.command_id, WriteOutcome.OK))
            self._pending_landings += 1
            self._schedule(self.now + self.land_delay(), lambda w=write: self._land(w))
        updated, audit = record_write_results(self.memory, results, self.now, self.policy)
        self.memory.update(updated)
        for record in audit:
            self.audit[record.agent_id].append(record)
        self.writes_per_tick.append(len(decision.writes))

    @property
    def settled(self) -> bool:
        return self._pending_landings == 0

    # -- per-decide properties -----------------------------------------------------------------

    def _check_decision(self, before: Mapping[int, AgentMemory], batch: list[Observation], decision: Decision) -> None:
        # Determinism, and replays: the same batch from the same memory gives the same decision;
        # from the memory after it, nothing new at all.
        if decide(self.rulebook, self.links, before, batch, self.now, self.policy) != decision:
            raise Violation("deciding the same batch from the same memory gave a different decision")
        after = {**before, **decision.memory}
        replayed = decide(self.rulebook, self.links, after, batch, self.now, self.policy, due_agents=())
        if replayed.writes:
            raise Violation(f"replaying a batch wrote again: {replayed.writes}")
        if any(r.outcome is not Outcome.DUPLICATE for r in replayed.audit) or replayed.memory:
            raise Violation(f"a replayed batch was not recognised as duplicates: {replayed.audit}")
        # Every decision names the rule of its agent (None: no link, or no rule).
        for record in decision.audit:
            link = self.links.get(record.agent_id)
            rule = None if link is None else self.rulebook.rule_for(link)
            if record.rule != (None if rule is None else rule.name):
                raise Violation(f"agent {record.agent_id}'s rule is {rule and rule.name!r}, the decision names {record.rule!r}")
        # Every observation yields at least one audit record.
        per_agent = defaultdict(int)
        for observation in batch:
            per_agent[observation.agent_id] += 1
        for agent_id, count in per_agent.items():
            recorded = sum(1 for r in decision.audit if r.agent_id == agent_id and r.observed_at is not None)
            if recorded < count:
                raise Violation(f"agent {agent_id}: {count} observations but {recorded} audit records")
        for write in decision.writes:
            self._check_write_is_settable(write)
            self._check_no_logout_during_a_contact(write, after)
            self._check_echo_caused_no_write(write, batch)
            self._check_one_write_per_change(write)
        sides = [(w.agent_id, w.side) for w in decision.writes]
        if len(sides) != len(set(sides)):
            raise Violation(f"two writes to one side of one agent in one decide: {decision.writes}")

    def _check_write_is_settable(self, write: Write) -> None:
        if write.side is Side.CXONE:
            target = write.target
            codes = self.links[write.agent_id].team_codes
            if not isinstance(target, CxoneTarget) or (target.code is not None and target.code not in codes):
                raise Violation(f"CXone write of a target the agent can't be set to: {write}")
        elif not isinstance(write.target, str):
            raise Violation(f"Salesforce write of a non-status: {write}")

    @staticmethod
    def _check_no_logout_during_a_contact(write: Write, memory: Mapping[int, AgentMemory]) -> None:
        """We never end the CXone session of an agent we last saw on a contact (nor in its after-call work)."""
        if not isinstance(write.target, CxoneTarget) or not write.target.is_logout:
            return
        shown = memory[write.agent_id].cxone
        if shown is not None and shown.is_contact:
            raise Violation(f"a CXone logout of an agent on a contact ({shown}): {write}")

    def _check_echo_caused_no_write(self, write: Write, batch: list[Observation]) -> None:
        """A first attempt needs a person's change; if only our own echoes came, only their side may be healed."""
        if write.attempt > 1 or self._ambiguous(write.agent_id):
            return
        delivered = [o for o in batch if o.agent_id == write.agent_id]
        people = [o for o in delivered if self._author(o) is None]
        if people or any(self._ends_contact(o) for o in delivered):
            return  # a person's change; or CXone leaving a contact, news even when our write is why
        echo_sides = {o.side for o in delivered}
        if write.side not in echo_sides:
            raise Violation(f"a write to {write.side} without any change by a person (echoes only: {delivered})")

    def _check_one_write_per_change(self, write: Write) -> None:
        """A second command for the same change and side needs that side to have changed since the first."""
        if write.attempt > 1 or self._ambiguous(write.agent_id):
            return
        earlier = [
            i
            for i in self.issued
            if not i.by_reconcile
            and i.write.agent_id == write.agent_id
            and i.write.side is write.side
            and i.write.cause_id == write.cause_id
            and i.write.attempt == 1
        ]
        if not earlier:
            return
        if any(i.write.command_id == write.command_id for i in earlier):
            raise Violation(f"a command id was issued twice as a first attempt: {write}")
        since = earlier[-1].at
        if not any(c.at >= since for c in self.log[write.agent_id, write.side]):
            raise Violation(f"two writes for one change with nothing changed in between: {earlier[-1].write} / {write}")

    def _ends_contact(self, observation: Observation) -> bool:
        if observation.side is not Side.CXONE or not isinstance(observation.value, CxoneState):
            return False
        before = self._shown_before.get(observation.agent_id)
        return before is not None and before.is_contact and not observation.value.is_contact

    def _ambiguous(self, agent_id: int) -> bool:
        until = self.ambiguous_until.get(agent_id)
        return until is not None and self.now <= until

    def _author(self, observation: Observation) -> str | None:
        for change in self.log[observation.agent_id, observation.side]:
            if change.source_id == observation.source_id:
                return change.by_command
        return None


def _lands_as(write: Write, value: CxoneState | str | None) -> bool:
    if isinstance(write.target, CxoneTarget):
        return isinstance(value, CxoneState) and write.target.matches(value)
    return not isinstance(value, CxoneState) and salesforce_shows(write.target, value)


def _observe(change: Change) -> Observation:
    return Observation(change.agent_id, change.side, change.value, change.at, change.source_id)
