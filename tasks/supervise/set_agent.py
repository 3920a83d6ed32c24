"""`set`: a supervisor sets one agent in one system; the running sync carries it to the other.

Before anything is changed, the request is refused, with the reason and the fix, when the agent is
not linked, has no rule, is on a contact (a live contact always wins) or logged out of CXone, when
the rule maps the value to nothing on the other side, or when no sync run holds the lease (nothing
would carry the change). Then the value is set the way a person's change would reach the system (a
presence command for the agent's console; the Agent API for CXone) and the other side is watched
until it shows what the rule maps the value to; the sync's own audit names the rule.

    outcome = await set_agent(ctx, "agent7@example.com", cxone="Unavailable: Lunch", timeout_seconds=60)
    outcome.ok, outcome.headline      # True, "agent7@example.com: CXone set to Unavailable: Lunch, ..."
"""

from __future__ import annotations

from dataclasses import dataclass

from presence_sync.connectors import current_spell
from presence_sync.engine import (
    AcdState,
    AcdStateSyntaxError,
    AgentMemory,
    CxoneState,
    CxoneTarget,
    MemoryFormatError,
    PreviousState,
    Rule,
)
from presence_sync.engine.audit import OFFLINE
from presence_sync.engine.errors import did_you_mean
from presence_sync.models.store import AgentLink
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.runner import load_setup
from presence_sync.tasks.sync.status import find_agent
from presence_sync.tasks.validate.hops import CxoneWatch, HopRunner, cxone_label
from presence_sync.tasks.validate.report import Cause, Diagnosis, HopResult
from presence_sync.tasks.validate.trips import RoundTrip
from presence_sync.tasks.validate.waiting import sync_not_running, sync_running

DEFAULT_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.25
COMMAND_REASON = "presence-sync set (supervisor)"


class SetRequestError(ValueError):
    """A `set` request that can't be read as asked (the message says how to ask)."""


@dataclass
class SetOutcome:
    """How a `set` went: refused before anything changed, or the hop to the other side (carried or not)."""

    agent: str
    system: str = ""  # the system set: "Salesforce" | "CXone"
    value: str = ""  # what it was set to, as the config writes it
    expected: str = ""  # what the other side should show by the rule
    rule_name: str | None = None
    before: str = ""  # both sides before, e.g. "CXone Available, Salesforce Available_for_Chats"
    refusal: Diagnosis | None = None
    hop: HopResult | None = None
    already: bool = False  # both sides showed it already: nothing was set

    @property
    def ok(self) -> bool:
        return self.refusal is None and (self.already or (self.hop is not None and self.hop.passed))

    @property
    def problem(self) -> Diagnosis | None:
        return self.refusal or (None if self.hop is None else self.hop.diagnosis)

    @property
    def headline(self) -> str:
        by_rule = f" (rule '{self.rule_name}')" if self.rule_name else ""
        if self.refusal is not None:
            return f"not set: {self.agent}{by_rule}: {self.refusal}"
        if self.already:
            return f"{self.agent} already shows {self.system} {self.value} and {self.expected}{by_rule}: nothing to set"
        assert self.hop is not None
        if self.hop.passed:
            return (
                f"{self.agent}: {self.system} set to {self.value}, carried to {self.expected} in "
                f"{self.hop.seconds:.2f} s{by_rule}; both systems agree"
            )
        cause = "" if self.hop.diagnosis is None else f": {self.hop.diagnosis}"
        return (
            f"{self.agent}: {self.system} set to {self.value}, but {self.expected} did not follow "
            f"(shows {self.hop.observed}){by_rule}{cause}"
        )


async def set_agent(
    ctx: Context,
    agent: str,
    *,
    salesforce: str | None = None,
    cxone: str | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> SetOutcome:
    """Set `agent` to `salesforce` (a status DeveloperName) or `cxone` (e.g. "Unavailable: Lunch") and
    wait until the other system agrees by the agent's rule; never raises for a refusal or a hop that
    did not arrive (the outcome says why). `SetRequestError` when neither or both values are given.
    """
    if (salesforce is None) == (cxone is None):
        raise SetRequestError("give exactly one of --salesforce STATUS or --cxone STATE")
    outcome = SetOutcome(agent=agent, system="Salesforce" if salesforce is not None else "CXone")
    outcome.value = salesforce if salesforce is not None else str(cxone)
    link = find_agent(ctx.store.setup.load_links(), agent)
    if link is None:
        return _refuse(outcome, Cause.NOT_LINKED, f"no linked agent matches {agent!r}.",
                       "give the CXone agent id, email or user name; run `presence-sync refresh-users CONFIG` if the "
                       "agent is new, and add a links override when its email differs from the Salesforce user")
    setup = await load_setup(ctx)
    engine_link = setup.links[link.cxone_agent_id]
    rule = setup.rulebook.rule_for(engine_link)
    if rule is None:
        return _refuse(outcome, Cause.NO_RULE,
                       f"no presence rule is assigned to agent {link.cxone_agent_id} or their team "
                       f"{link.team_name!r}, so the sync does not carry their changes.",
                       "assign a rule to the agent or their team under rules in the config, and run onboarding")
    outcome.rule_name = rule.name
    watch = CxoneWatch(ctx.cxone, link.cxone_agent_id)
    cx_before = await watch.poll()
    spell_before = await current_spell(ctx.salesforce, link.sf_user_id)
    status_before = None if spell_before is None else spell_before.status
    outcome.before = f"CXone {cxone_label(cx_before)}, Salesforce {status_before or OFFLINE}"
    if cx_before.is_contact:
        return _refuse(outcome, Cause.ON_CONTACT,
                       f"the agent is in {cxone_label(cx_before)} in CXone: a live contact always wins, so the change "
                       "would wait for its end.",
                       "set the agent once the contact (and its after-call work) has ended")
    if cx_before.is_logged_out:
        return _refuse(outcome, Cause.CXONE_LOGGED_OUT,
                       "the agent is logged out of CXone, so no state can be set (or carried) there.",
                       "have the agent log in to the CXone agent app, then set them again")
    if salesforce is not None:
        trip = await _salesforce_trip(ctx, outcome, rule, engine_link.team_codes, link, salesforce, setup.targets.status_ids)
    else:
        trip = _cxone_trip(outcome, rule, engine_link.team_codes, str(cxone))
    if trip is None:
        return outcome
    outcome.expected = f"CXone {cxone_label(trip.target)}" if salesforce is not None else f"Salesforce {trip.status}"
    set_side_shows = status_before == trip.status if salesforce is not None else trip.target.matches(cx_before)
    other_side_shows = trip.target.matches(cx_before) if salesforce is not None else status_before == trip.status
    if set_side_shows and other_side_shows:
        outcome.already = True
        return outcome
    if set_side_shows:  # setting it again changes nothing, so there is no change for the sync to carry
        return _refuse(outcome, Cause.ALREADY_SHOWN,
                       f"{outcome.system} already shows {outcome.value} ({outcome.before}), and the rule wants "
                       f"{outcome.expected}: setting it again is no change, so nothing would carry it.",
                       "run `presence-sync reconcile CONFIG` to bring the other system in line by the rule")
    activity = await sync_running(ctx.store)
    if not activity.running:
        outcome.refusal = sync_not_running(activity)
        return outcome
    hops = HopRunner(ctx, link, rule, dict(setup.targets.status_ids), watch, timeout_seconds, poll_seconds,
                     command_reason=COMMAND_REASON)
    if salesforce is not None:
        outcome.hop = await hops.salesforce_to_cxone(trip, setup.targets.status_ids[trip.status], spell_before)
    else:
        outcome.hop = await hops.cxone_to_salesforce(trip)
    return outcome


async def _salesforce_trip(
    ctx: Context, outcome: SetOutcome, rule: Rule, team_codes: frozenset[str], link: AgentLink, status: str,
    status_ids: dict[str, str],
) -> RoundTrip | None:
    if status not in status_ids:
        known = sorted(status_ids)
        _refuse(outcome, Cause.UNMAPPED, f"Salesforce has no presence status {status!r}.",
                f"{did_you_mean(status, known)}give a status DeveloperName: {', '.join(known)}")
        return None
    previous = None
    if isinstance(rule.subscriber.get(status), PreviousState):
        previous = _previous_state(ctx, link.cxone_agent_id)
    resolution = rule.subscribe(status, team_codes, previous)
    if resolution.target is None:
        _refuse(outcome, Cause.UNMAPPED, f"{resolution.reason}, so nothing would carry {status} to CXone.",
                f"pick a status rule '{rule.name}' maps, or add a subscriber row for {status}")
        return None
    return RoundTrip(status, resolution.target)


def _cxone_trip(outcome: SetOutcome, rule: Rule, team_codes: frozenset[str], text: str) -> RoundTrip | None:
    try:
        target = AcdState.parse(text).subscriber_target()
    except AcdStateSyntaxError as error:
        _refuse(outcome, Cause.STATE_REJECTED, f"{error.problem}.", error.fix)
        return None
    if not isinstance(target, CxoneTarget):
        _refuse(outcome, Cause.STATE_REJECTED, "'Previous State' is a rule's answer, not a state to set.",
                "give Available, Unavailable or 'Unavailable: <code>'")
        return None
    outcome.value = cxone_label(target)
    if target.code is not None and target.code not in team_codes:
        _refuse(outcome, Cause.STATE_REJECTED, f"the agent's team has no unavailable code {target.code!r}.",
                f"use one of the team's codes: {', '.join(sorted(c for c in team_codes if c != 'ACW')) or 'none'}")
        return None
    published = rule.publish(CxoneState(target.state, target.code))
    if published.target is None:
        _refuse(outcome, Cause.UNMAPPED, f"{published.reason.split(';')[0]}, so nothing would carry it to Salesforce.",
                f"pick a state rule '{rule.name}' maps, or add a publisher row for it")
        return None
    return RoundTrip(published.target, target)


def _previous_state(ctx: Context, agent_id: int) -> CxoneTarget | None:
    """The CXone state the sync's memory says Previous State returns the agent to, if any."""
    stored = ctx.store.sync.load_agent_memory([agent_id]).get(agent_id)
    if stored is None:
        return None
    try:
        return AgentMemory.from_json(stored).previous
    except MemoryFormatError:
        return None


def _refuse(outcome: SetOutcome, cause: Cause, explanation: str, fix: str) -> SetOutcome:
    outcome.refusal = Diagnosis(cause, explanation, fix)
    return outcome


__all__ = ["DEFAULT_TIMEOUT_SECONDS", "SetOutcome", "SetRequestError", "set_agent"]
