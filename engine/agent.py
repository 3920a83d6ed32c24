"""One agent's decide: observe, apply the people's changes, converge both sides, audit.

`decide`, `reconcile` and `record_write_results` (engine.decide) run an `AgentSync` per agent that
has something to do. Per agent:
1. drop duplicates (recent source ids) and stale observations (older than that side's latest);
2. record what each side now shows, the CXone state Previous State returns to, and when a contact began;
3. recognise echoes of our own writes (by value, within the echo timeout); everything else is a
   change by a person (the first sight of a side counts as one);
4. settle conflicts: when both sides changed (in the batch, or a change arrives older than the other
   side's latest), the policy decides; a CXone contact always wins;
5. apply the changes in source-time order, only the latest counts: a Salesforce change during a CXone
   contact is deferred until the contact ends;
6. converge both sides to the intent, retrying writes whose echo is late and giving up after
   `max_attempts`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from types import EllipsisType

from presence_sync.engine.audit import AuditRecord, Direction, Outcome, describe
from presence_sync.engine.logouts import OMNI_OFFLINE, salesforce_shows
from presence_sync.engine.memory import AgentMemory, Command, CommandStatus, Deferred, Intent
from presence_sync.engine.messages import UNKNOWN_SINCE, Observation, Write
from presence_sync.engine.policy import ConflictPolicy, SyncPolicy
from presence_sync.engine.rule import AgentLink, Resolution, Rule
from presence_sync.engine.states import CxoneState, CxoneTarget, Side

# Equal source timestamps: Salesforce is applied first, so CXone (the ACD, the operational truth) wins.
_SIDE_ORDER = {Side.SALESFORCE: 0, Side.CXONE: 1}
_ECHO_WATCH_PER_SIDE = 4  # superseded writes remembered per side; more in flight at once is not plausible
_EVENTFUL = frozenset({Outcome.WRITE, Outcome.RETRYING, Outcome.GAVE_UP})
_LIKELY_CAUSE = {
    Side.SALESFORCE: "the agent's Salesforce console (presence applier) may be closed, "
    "or their profile may lack access to the status",
    Side.CXONE: "the agent's CXone session may have ended, or CXone refused the state "
    "(check the team's unavailable codes)",
}


def resolution_basis(rule: Rule, link: AgentLink) -> str:
    """What an agent's intent is resolved by: their rule and their team's unavailable codes."""
    return _basis(rule.fingerprint, link.team_codes)


@functools.lru_cache(maxsize=1024)  # a few rules times a few teams, asked for every agent decided
def _basis(fingerprint: str, team_codes: frozenset[str]) -> str:
    codes = ",".join(sorted(team_codes))
    return hashlib.blake2b(f"{fingerprint}|{codes}".encode(), digest_size=8).hexdigest()


def command_id_for(agent_id: int, side: Side, target: CxoneTarget | str, cause_id: str, sequence: int) -> str:
    """Deterministic command id: the same agent, target, causing change and issue count give the same id."""
    # The engine key, not how the target reads to people: ids must not change when the display does.
    shown = target.key if isinstance(target, CxoneTarget) else target
    key = f"{agent_id}|{side.value}|{shown}|{cause_id}|{sequence}"
    return f"ps-{agent_id}-{hashlib.blake2b(key.encode(), digest_size=10).hexdigest()}"


@dataclass(slots=True)
class _Change:
    """A human change being applied (mutable while one agent is decided)."""

    observation: Observation
    cxone_before: CxoneState | None  # CXone just before this observation (or during it, for Salesforce)
    before_known: bool  # the side had been seen before: this is a change, not a first sight
    contact_since: datetime | None  # when the CXone contact going on at this observation began
    intent: Intent | None = None
    deferred: bool = False
    lost_because: str | None = None  # the other side's change won the conflict

    @property
    def side(self) -> Side:
        return self.observation.side

    @property
    def during_contact(self) -> bool:
        return self.cxone_before is not None and self.cxone_before.is_contact

    @property
    def is_contact_business(self) -> bool:
        """A CXone change into, within or out of a contact: the contact always wins."""
        if self.side is not Side.CXONE:
            return False
        value = self.observation.value
        assert isinstance(value, CxoneState)
        return value.is_contact or self.during_contact


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What converging one side came to."""

    side: Side
    outcome: Outcome
    reason: str
    row: str | None = None
    target: CxoneTarget | str | None = None
    command: Command | None = None


class AgentSync:
    """One agent's decide: a mutable working copy of its memory, frozen again by `memory()`."""

    def __init__(
        self, agent_id: int, link: AgentLink, rule: Rule, memory: AgentMemory, now: datetime, policy: SyncPolicy
    ) -> None:
        self.agent_id, self.link, self.rule, self.now, self.policy = agent_id, link, rule, now, policy
        self.cxone, self.cxone_at, self.previous = memory.cxone, memory.cxone_at, memory.previous
        self.contact_since = memory.contact_since
        self.salesforce, self.salesforce_at = memory.salesforce, memory.salesforce_at
        self.intent, self.deferred = memory.intent, memory.deferred
        self.commands: dict[Side, Command | None] = {
            Side.CXONE: memory.cxone_command,
            Side.SALESFORCE: memory.salesforce_command,
        }
        self.watch = list(memory.echo_watch)
        self.recent_changes = list(memory.recent_changes)
        self.recent_sources = list(memory.recent_sources)
        self.issued = memory.issued
        self.flap_reported = False
        self.writes: list[Write] = []
        self.audit: list[AuditRecord] = []
        self.basis = resolution_basis(rule, link)
        self.rerule_note: str | None = None
        self._resolve_again_if_the_rule_changed()

    def run(self, observations: list[Observation], rearm: bool) -> None:
        ordered = sorted(observations, key=lambda o: (o.at, _SIDE_ORDER[o.side], o.source_id))
        changes = [change for o in ordered if (change := self._observe(o)) is not None]
        changed_sides = {change.side for change in changes if change.before_known}  # a first sight is no change
        for change in changes:
            self._apply(change, changed_sides)
        self._release_deferred()
        verdicts = {side: self._converge(side, rearm) for side in (Side.SALESFORCE, Side.CXONE)}
        expiry = self.now - self.policy.echo_timeout
        self.watch = [c for c in self.watch if c.sent_at > expiry]
        self._audit(changes, verdicts)

    def memory(self) -> AgentMemory:
        return AgentMemory(
            cxone=self.cxone,
            cxone_at=self.cxone_at,
            previous=self.previous,
            contact_since=self.contact_since,
            salesforce=self.salesforce,
            salesforce_at=self.salesforce_at,
            intent=self.intent,
            deferred=self.deferred,
            cxone_command=self.commands[Side.CXONE],
            salesforce_command=self.commands[Side.SALESFORCE],
            echo_watch=tuple(self.watch),
            recent_changes=tuple(self.recent_changes[-(self.policy.flap_threshold + 1) :]),
            recent_sources=tuple(self.recent_sources[-self.policy.remembered_sources :]),
            issued=self.issued,
        )

    def _resolve_again_if_the_rule_changed(self) -> None:
        """The intent means what the agent's rule says now: resolved again when that rule (or the
        team's codes) changed since it was resolved, e.g. after onboarding or a move to another team."""
        intent = self.intent
        if intent is None or intent.basis == self.basis:
            return
        if intent.basis is None:  # memory of version 1: resolved by the rule of its time, taken as this one
            self.intent = replace(intent, basis=self.basis)
            return
        if intent.side is Side.CXONE:
            seen = Observation(self.agent_id, Side.CXONE, intent.value, intent.at, intent.source_id)
            self.intent = self._cxone_intent(seen, first_sight=intent.first_sight)
        else:
            status = intent.value
            assert not isinstance(status, CxoneState)
            self.intent = self._salesforce_intent(
                status, intent.at, intent.source_id, previous=intent.previous, first_sight=intent.first_sight
            )
        self.rerule_note = f"the agent's rule changed (now {self.rule.name!r}); the latest change is resolved again"

    # -- 1-3: observe --------------------------------------------------------------------------

    def _observe(self, observation: Observation) -> _Change | None:
        """Record what a side shows; return the observation as a human change, or None."""
        if observation.source_id in self.recent_sources:
            self._record(observation, Outcome.DUPLICATE, "already seen (a replayed batch or a poll overlap)")
            return None
        self.recent_sources.append(observation.source_id)
        side = observation.side
        shown_at = self.cxone_at if side is Side.CXONE else self.salesforce_at
        if shown_at is not None and observation.at < shown_at:
            echoed = self._take_echo(observation)
            if echoed is not None or observation.command_id is not None:
                self._record_echo(observation, echoed, late=True)
            else:
                self._record(
                    observation,
                    Outcome.STALE,
                    f"older than what {side.label} showed at {shown_at.isoformat()}; ignored",
                )
            return None
        cxone_before, contact_since = self.cxone, self.contact_since
        self._show(observation)
        echoed = self._take_echo(observation)
        if echoed is not None and _ends_contact(cxone_before, observation):
            if self._contact_end_is_news(echoed, contact_since):
                echoed = None
        if echoed is not None or observation.command_id is not None:
            # A named write no longer tracked (its echo wait ran out long ago) is still ours by the
            # system's word: what the side shows now, not a person's change; converging writes over it
            # if it is not wanted.
            self._record_echo(observation, echoed, late=False)
            return None
        # A new observation of the value already shown is still a change: the source only records
        # changes, so one we missed came in between and the person picked this value again.
        return _Change(observation, cxone_before, shown_at is not None, self.contact_since)

    def _contact_end_is_news(self, command: Command, contact_since: datetime | None) -> bool:
        """Whether CXone moving the agent out of a contact to `command`'s target is still to be synced.

        CXone ends a contact by putting the agent in a state requested during it, else back in the
        state before it. A deferred Salesforce request is applied now either way. Otherwise: our write
        sent before the contact began had landed before it, and the contact returning there is news
        (else Salesforce would keep the contact's status); our write sent during the contact (into an
        ACW we had not seen yet) is what ended it: its echo.
        """
        if self.deferred is not None or contact_since is None:
            return True
        return command.sent_at <= contact_since + self.policy.clock_skew

    def _show(self, observation: Observation) -> None:
        if observation.side is Side.SALESFORCE:
            self.salesforce, self.salesforce_at = observation.value, observation.at  # type: ignore[assignment]
            return
        state = observation.value
        assert isinstance(state, CxoneState)
        if self.cxone is not None and self.cxone != state:
            self.previous = self.cxone.as_target() or self.previous
        if not state.is_contact:
            self.contact_since = None
        elif self.contact_since is None:
            self.contact_since = observation.at
        self.cxone, self.cxone_at = state, observation.at

    def _take_echo(self, observation: Observation) -> Command | None:
        """The command this observation is the echo of, if any (it is then settled).

        Echoes are told apart from people by value; an observation dated before the write was issued
        (beyond the clock skew allowed) is no echo of it, e.g. a poll overlap re-delivering an old spell.
        """
        side, value = observation.side, observation.value
        if observation.command_id is not None:
            return self._take_named_echo(observation)
        issued_by = observation.at + self.policy.clock_skew  # latest issue time this can echo
        # Keyed by side: only this side's command and this side's watched commands can match (the
        # watch holds a few per side), so most observations cost one look-up and no scan at all.
        active = self.commands[side]
        if (
            active is not None
            and active.status is not CommandStatus.FAILED
            and active.issued_at <= issued_by
            and active.is_echo(value)
            and (active.is_live or active.sent_at >= self._landed_by(observation))
        ):
            self.commands[side] = None
            return active
        if not self.watch:
            return None
        landed_by = self._landed_by(observation)
        for index, command in enumerate(self.watch):
            if (
                command.side is side
                and command.issued_at <= issued_by
                and command.sent_at >= landed_by
                and command.is_echo(value)
            ):
                del self.watch[index]
                return command
        return None

    def _take_named_echo(self, observation: Observation) -> Command | None:
        """The command the observation names (its system said which write caused it), if still tracked."""
        active = self.commands[observation.side]
        if active is not None and active.command_id == observation.command_id:
            self.commands[observation.side] = None
            return active
        for index, command in enumerate(self.watch):
            if command.side is observation.side and command.command_id == observation.command_id:
                del self.watch[index]
                return command
        return None

    def _landed_by(self, observation: Observation) -> datetime:
        # A write no longer awaited (superseded, or given up) may still land, but not after its echo
        # timeout: a later sight of its value is a person's (the watch is pruned only when the agent
        # is decided, which may be long after).
        return observation.at - self.policy.echo_timeout - self.policy.clock_skew

    # -- 4-5: apply human changes --------------------------------------------------------------

    def _apply(self, change: _Change, changed_sides: set[Side]) -> None:
        change.lost_because = self._conflict_loss(change, changed_sides)
        if change.lost_because is not None:
            return
        observation = change.observation
        if not change.is_contact_business and change.before_known:
            self._count_change(observation)
        if observation.side is Side.SALESFORCE:
            status = observation.value
            assert not isinstance(status, CxoneState)
            if change.during_contact:  # a status, or a logout of Omni: a contact is never interrupted by us
                self.deferred = Deferred(status, observation.at, observation.source_id)
                change.deferred = True
                return
            self.deferred = None
            change.intent = self._salesforce_intent(
                status, observation.at, observation.source_id, first_sight=not change.before_known
            )
        else:
            state = observation.value
            assert isinstance(state, CxoneState)
            intent = self.intent
            if state.is_logged_out and self.deferred is not None and self.deferred.at <= observation.at:
                self.deferred = None  # a logout of CXone ends the contact and what waited for its end
            late_start = state.is_contact and intent is not None and intent.side is Side.SALESFORCE
            if late_start and intent.at > observation.at and self.deferred is None:  # type: ignore[union-attr]
                # Seen late: the Salesforce change (a status, or a logout of Omni) was made during this
                # contact, so it waits for its end.
                self.deferred = Deferred(intent.value, intent.at, intent.source_id)  # type: ignore[arg-type,union-attr]
            if change.is_contact_business and not state.is_contact and self.deferred is not None:
                deferred, self.deferred = self.deferred, None
                applied_at = max(observation.at, deferred.at)
                change.intent = self._salesforce_intent(deferred.status, applied_at, deferred.source_id)
            else:
                change.intent = self._cxone_intent(observation, first_sight=not change.before_known)
        self.intent = change.intent

    def _release_deferred(self) -> None:
        """A Salesforce request waiting for a contact to end is applied once CXone shows no contact,
        however the end was seen (e.g. as the echo of our write that ended an ACW unseen)."""
        deferred, cxone = self.deferred, self.cxone
        if deferred is None or cxone is None or cxone.is_contact or self.cxone_at is None:
            return
        self.deferred = None
        self.intent = self._salesforce_intent(deferred.status, max(self.cxone_at, deferred.at), deferred.source_id)

    def _conflict_loss(self, change: _Change, changed_sides: set[Side]) -> str | None:
        """Why this change loses to the other side's, if both sides changed; a contact always wins."""
        observation, intent, policy = change.observation, self.intent, self.policy.conflict.value
        other = change.side.other
        other_is_newer = intent is not None and intent.side is other and intent.at > observation.at
        if change.is_contact_business:
            return None
        if change.side is Side.SALESFORCE and change.during_contact and change.contact_since is not None:
            if observation.at <= change.contact_since:
                return "made before the CXone contact began (seen late); the contact wins"
        match self.policy.conflict:
            case ConflictPolicy.NEWEST_WINS:
                loses = other_is_newer
            case ConflictPolicy.CXONE_WINS:
                loses = change.side is Side.SALESFORCE and (other_is_newer or other in changed_sides)
            case ConflictPolicy.SALESFORCE_WINS:
                loses = change.side is Side.CXONE and (other_is_newer or other in changed_sides)
        return f"{other.label} was changed too and wins under the {policy} policy" if loses else None

    def _cxone_intent(self, observation: Observation, *, first_sight: bool = False) -> Intent:
        state = observation.value
        assert isinstance(state, CxoneState)
        return Intent(
            Side.CXONE, state, observation.at, observation.source_id, _cxone_keeps(state, self.link.team_codes),
            self.rule.publish(state), self.basis, first_sight=first_sight,
        )

    def _salesforce_intent(
        self,
        status: str | None,
        at: datetime,
        source_id: str,
        *,
        previous: CxoneTarget | None | EllipsisType = ...,
        first_sight: bool = False,
    ) -> Intent:
        """The intent of a Salesforce change; `previous` is what Previous State returns to (default: the
        agent's previous CXone state now; given when an intent made earlier is resolved again)."""
        previous = self.previous if isinstance(previous, EllipsisType) else previous
        if status is not None:
            keep: Resolution[str] = Resolution(status, None, f"keeps Salesforce at the agent's own choice, {status}")
            to_cxone = self.rule.subscribe(status, self.link.team_codes, previous)
        else:
            keep = Resolution(OMNI_OFFLINE, None, "keeps Salesforce logged out of Omni-Channel, as the agent left it")
            to_cxone = self.rule.subscribe(None, self.link.team_codes, previous)
            if at <= UNKNOWN_SINCE:
                # A full read found the agent logged out of Omni since a time it does not give: no
                # person's logout to carry over, just how things were before the sync looked.
                to_cxone = Resolution(
                    None,
                    None,
                    "the agent is logged out of Omni-Channel since before the sync first looked; CXone is left as is",
                    Outcome.LOGGED_OUT,
                )
        return Intent(Side.SALESFORCE, status, at, source_id, to_cxone, keep, self.basis, previous, first_sight)

    def _count_change(self, observation: Observation) -> None:
        """Flap detection counts the agent's own changes, not contacts coming and going nor first sights."""
        cutoff = observation.at - self.policy.flap_window
        self.recent_changes = [t for t in self.recent_changes if t > cutoff] + [observation.at]
        threshold = self.policy.flap_threshold
        if len(self.recent_changes) > threshold and not self.flap_reported:
            self.flap_reported = True
            self._record(
                observation,
                Outcome.FLAP,
                f"more than {threshold} changes within {self.policy.flap_window_seconds:g}s: the agent's state is "
                "flapping; each change is still synced (raise sync.flap_threshold if this is normal here)",
            )

    # -- 6: converge -------------------------------------------------------------------------

    def _desired(self, side: Side) -> Resolution[CxoneTarget | str] | None:
        intent = self.intent
        if intent is None:
            return None
        if side is Side.SALESFORCE and self.deferred is not None and self.deferred.at >= intent.at:
            return Resolution(
                None,
                None,
                f"Salesforce keeps {describe(self.deferred.status)}, requested during the contact",
                Outcome.DEFERRED,
            )
        return intent.resolution(side)

    def _converge(self, side: Side, rearm: bool) -> _Verdict:
        desired = self._desired(side)
        if desired is None or desired.target is None:
            self._retire(side)
            if desired is None:
                return _Verdict(side, Outcome.NOOP, "no change by a person seen yet")
            return _Verdict(side, desired.outcome, desired.reason, desired.row)
        target, row = desired.target, desired.row
        if self._shows(side, target):
            self._retire(side)
            return _Verdict(side, Outcome.NOOP, f"{side.label} already shows {describe(target)}", row, target)
        if side is Side.CXONE and self.cxone is not None:
            if self.cxone.is_logged_out:
                self._retire(side)
                return _Verdict(
                    side,
                    Outcome.LOGGED_OUT,
                    f"the agent is logged out of CXone; {describe(target)} is not written",
                    row,
                    target,
                )
            if self.cxone.is_contact:
                return _Verdict(
                    side, Outcome.NOOP, f"the agent is in {describe(self.cxone)} in CXone; a contact always wins", row, target
                )
        active = self.commands[side]
        if active is not None and active.target == target:
            if active.is_live:
                if active.due_at is not None and active.due_at <= self.now:
                    return self._follow_up(active)
                return _Verdict(
                    side, Outcome.NOOP, f"a write of {describe(target)} is already on its way", row, target, active
                )
            if not rearm and active.cause_id == self.intent.source_id:  # type: ignore[union-attr]
                return _Verdict(
                    side,
                    Outcome.NOOP,
                    f"the write of {describe(target)} {active.status.value.replace('_', ' ')} "
                    f"({active.last_error}); it is tried again on the next change or reconcile",
                    row,
                    target,
                    active,
                )
        self._retire(side)
        return self._issue(side, target, row, desired.reason)

    def _shows(self, side: Side, target: CxoneTarget | str) -> bool:
        if side is Side.CXONE:
            return self.cxone is not None and isinstance(target, CxoneTarget) and target.matches(self.cxone)
        return self.salesforce_at is not None and isinstance(target, str) and salesforce_shows(target, self.salesforce)

    def _issue(self, side: Side, target: CxoneTarget | str, row: str | None, reason: str) -> _Verdict:
        intent = self.intent
        assert intent is not None
        self.issued += 1
        command = Command(
            side=side,
            target=target,
            command_id=command_id_for(self.agent_id, side, target, intent.source_id, self.issued),
            cause_id=intent.source_id,
            cause_at=intent.at,
            rule_row=row,
            issued_at=self.now,
            sent_at=self.now,
            attempts=1,
            status=CommandStatus.IN_FLIGHT,
            due_at=self.now + self.policy.echo_timeout,
            initial=intent.first_sight,
            rule=self.rule.name,
        )
        self.commands[side] = command
        self.writes.append(
            Write(self.agent_id, side, target, command.command_id, row, reason, 1, intent.source_id, intent.first_sight,
                  self._precondition(side))
        )
        return _Verdict(side, Outcome.WRITE, reason, row, target, command)

    def _precondition(self, side: Side) -> tuple[str, ...] | None:
        """What the side may show for a write to it to apply (see `Write.applies_if_showing`)."""
        if side is Side.CXONE:
            return None  # CXone's API has no compare-and-set
        if self.salesforce_at is None:
            # Never seen, but an earlier write of ours may still be landing (its echo not polled yet): the
            # console takes commands in order, so by then it shows that write's target unless the agent
            # changed it. With none, there is nothing to compare.
            earlier = {str(c.target) for c in self.watch if c.side is side and c.is_live}
            return tuple(sorted(earlier)) if earlier else None
        live = [c for c in (self.commands[side], *self.watch) if c is not None and c.side is side and c.is_live]
        shown = {OMNI_OFFLINE if self.salesforce is None else self.salesforce, *(str(c.target) for c in live)}
        return tuple(sorted(shown))

    def _follow_up(self, command: Command) -> _Verdict:
        """A live command is due: its echo is late (wait, then retry) or its retry wait is over."""
        side, policy = command.side, self.policy
        if command.status is CommandStatus.RETRY_WAIT:
            again = replace(
                command,
                attempts=command.attempts + 1,
                status=CommandStatus.IN_FLIGHT,
                sent_at=self.now,
                due_at=self.now + policy.echo_timeout,
            )
            self.commands[side] = again
            reason = f"retry {again.attempts} of {policy.max_attempts} ({command.last_error})"
            self.writes.append(
                Write(
                    self.agent_id,
                    side,
                    command.target,
                    command.command_id,
                    command.rule_row,
                    reason,
                    again.attempts,
                    command.cause_id,
                    command.initial,
                    self._precondition(side),
                )
            )
            return _Verdict(side, Outcome.WRITE, reason, command.rule_row, command.target, again)
        late = f"no echo from {side.label} within {policy.echo_timeout_seconds:g}s"
        if command.attempts >= policy.max_attempts:
            given_up = replace(command, status=CommandStatus.GAVE_UP, due_at=None, last_error=late)
            self.commands[side] = given_up
            return _Verdict(
                side, Outcome.GAVE_UP, gave_up_reason(command, late), command.rule_row, command.target, given_up
            )
        delay = policy.retry_delay(command.attempts, command.command_id)
        waiting = replace(command, status=CommandStatus.RETRY_WAIT, due_at=self.now + delay, last_error=late)
        self.commands[side] = waiting
        return _Verdict(
            side,
            Outcome.RETRYING,
            f"{late}; retrying in {delay.total_seconds():.0f}s "
            f"(attempt {command.attempts + 1} of {policy.max_attempts})",
            command.rule_row,
            command.target,
            waiting,
        )

    def _retire(self, side: Side) -> None:
        """The side's command is no longer wanted; if it may still land, keep watching for its echo."""
        command, self.commands[side] = self.commands[side], None
        if command is not None and command.is_live:
            self.watch.append(command)
            same_side = [c for c in self.watch if c.side is side]
            if len(same_side) > _ECHO_WATCH_PER_SIDE:
                self.watch.remove(same_side[0])

    # -- audit ---------------------------------------------------------------------------------

    def _audit(self, changes: list[_Change], verdicts: dict[Side, _Verdict]) -> None:
        final = self.intent
        attached: set[Side] = set()
        for change in changes:
            observation = change.observation
            if change.lost_because is not None:
                self._record(observation, Outcome.CONFLICT, change.lost_because)
            elif change.deferred:
                contact = describe(change.cxone_before) if change.cxone_before else "a contact"
                self._record(
                    observation,
                    Outcome.DEFERRED,
                    f"the agent is in {contact} in CXone; {describe(observation.value)} is applied when the contact "
                    "ends",
                )
            elif change.intent is not None and change.intent is final:
                hop = final.side.other
                verdict = verdicts[hop]
                attached.add(hop)
                reason = verdict.reason
                if final.source_id != observation.source_id:
                    reason = (
                        f"the contact ended; applying {describe(final.value)}, requested in Salesforce during it: "
                        f"{reason}"
                    )
                self.audit.append(
                    AuditRecord(
                        at=self.now,
                        agent_id=self.agent_id,
                        direction=Direction.toward(hop),
                        outcome=verdict.outcome,
                        from_value=describe(final.value),
                        to_value=None if verdict.target is None else describe(verdict.target),
                        rule_row=verdict.row,
                        reason=reason,
                        observed_at=observation.at,
                        command_id=None if verdict.command is None else verdict.command.command_id,
                        rule=self.rule.name,
                    )
                )
            elif change.intent is not None:
                newer = "" if final is None else f" ({describe(final.value)} at {final.at.isoformat()})"
                if final is not None and final.side is not change.intent.side:
                    outcome, reason = Outcome.CONFLICT, f"a newer change in {final.side.label}{newer} wins"
                else:
                    outcome, reason = Outcome.NOOP, f"superseded by a newer change{newer}; only the latest is synced"
                self._record(observation, outcome, reason)
        for side, verdict in verdicts.items():
            if side not in attached and verdict.outcome in _EVENTFUL and verdict.command is not None:
                reason = verdict.reason
                if self.rerule_note is not None and verdict.outcome is Outcome.WRITE:
                    reason = f"{self.rerule_note}: {reason}"
                record = command_record(
                    self.agent_id, self.now, verdict.command, verdict.outcome, reason, self.rule.name
                )
                self.audit.append(record)

    def _record(self, observation: Observation, outcome: Outcome, reason: str) -> None:
        self.audit.append(observation_record(observation, self.now, outcome, reason, self.rule.name))

    def _record_echo(self, observation: Observation, command: Command | None, late: bool) -> None:
        """Audit an echo: of `command`, or (None) of the write the observation names, no longer tracked."""
        if command is None:
            reason = f"the echo of our earlier write {observation.command_id}, no longer awaited; not synced back"
            row, command_id, latency_ms = None, observation.command_id, None
        else:
            latency = (observation.at - command.cause_at).total_seconds()
            # An initial alignment's cause is whenever the agent took that state, maybe hours ago: not a lag.
            timed = latency >= 0 and not command.initial
            what = "our initial alignment write" if command.initial else "our write"
            reason = ("a late echo" if late else "the echo") + f" of {what} {command.command_id}; not synced back"
            row, command_id = command.rule_row, command.command_id
            latency_ms = round(latency * 1000) if timed else None
        self.audit.append(
            AuditRecord(
                at=self.now,
                agent_id=self.agent_id,
                direction=Direction.toward(observation.side),
                outcome=Outcome.ECHO,
                from_value=None,
                to_value=describe(observation.value),
                rule_row=row,
                reason=reason,
                observed_at=observation.at,
                command_id=command_id,
                latency_ms=latency_ms,
                rule=self.rule.name,
            )
        )

@functools.lru_cache(maxsize=1024)  # few states times few teams, asked for every CXone change
def _cxone_keeps(state: CxoneState, team_codes: frozenset[str]) -> Resolution[CxoneTarget]:
    """What a person's CXone change means for CXone itself: it keeps it, where the Agent API could set it."""
    own = state.as_target()
    if own is None:
        return Resolution(None, None, f"CXone manages {describe(state)} itself", Outcome.NOOP)
    if own.code is not None and own.code not in team_codes:
        # e.g. the agent moved to a team without this code since: CXone would refuse to set it again
        return Resolution(None, None, f"{describe(state)} is not one of the agent's team's codes", Outcome.NOOP)
    return Resolution(own, None, f"keeps CXone at the agent's own choice, {describe(state)}")


def _ends_contact(cxone_before: CxoneState | None, observation: Observation) -> bool:
    value = observation.value
    return (
        cxone_before is not None
        and cxone_before.is_contact
        and isinstance(value, CxoneState)
        and not value.is_contact
    )


def observation_record(
    observation: Observation, now: datetime, outcome: Outcome, reason: str, rule: str | None = None
) -> AuditRecord:
    return AuditRecord(
        at=now,
        agent_id=observation.agent_id,
        direction=Direction.away_from(observation.side),
        outcome=outcome,
        from_value=describe(observation.value),
        to_value=None,
        rule_row=None,
        reason=reason,
        observed_at=observation.at,
        rule=rule,
    )


def command_record(
    agent_id: int, now: datetime, command: Command, outcome: Outcome, reason: str, rule: str | None = None
) -> AuditRecord:
    """An audit record of a write; `rule` is the rule deciding now (default: the one that issued it)."""
    return AuditRecord(
        at=now,
        agent_id=agent_id,
        direction=Direction.toward(command.side),
        outcome=outcome,
        from_value=None,
        to_value=describe(command.target),
        rule_row=command.rule_row,
        reason=reason,
        command_id=command.command_id,
        rule=rule or command.rule,
    )


def gave_up_reason(command: Command, last_error: str) -> str:
    return (
        f"gave up writing {describe(command.target)} to {command.side.label} after {command.attempts} attempts "
        f"({last_error}); {_LIKELY_CAUSE[command.side]}"
    )
