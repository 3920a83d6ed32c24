"""Which change validation makes: a rule row that maps both ways, chosen so that each hop changes both sides.

    pairs = round_trips(rule, team_codes)     # [RoundTrip("On_Break", CxoneTarget.unavailable("Break")), ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from presence_sync.engine import CxoneState, CxoneTarget, Rule, StateError, parse_subscriber_target
from presence_sync.models.store import AgentLink
from presence_sync.tasks.validate.report import Cause, Diagnosis


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A Salesforce status and a CXone target that the rule maps to each other, both ways."""

    status: str
    target: CxoneTarget


@dataclass(frozen=True, slots=True)
class ValidatedAgent:
    """The agent being validated: their link, rule, team's codes, and the Salesforce status ids."""

    link: AgentLink
    rule: Rule
    team_codes: frozenset[str]
    status_ids: dict[str, str]


def round_trips(rule: Rule, team_codes: frozenset[str]) -> list[RoundTrip]:
    """Rule rows that map both ways for an agent of a team with `team_codes` (rule order)."""
    pairs = []
    for status, target in rule.subscriber.items():
        if not isinstance(target, CxoneTarget) or (target.code is not None and target.code not in team_codes):
            continue
        if rule.publisher.get(target.key) == status:
            pairs.append(RoundTrip(status, target))
    return pairs


def _pick(
    pairs: Sequence[RoundTrip], avoid_status: str | None, avoid_state: CxoneState, prefer: CxoneState | None = None
) -> RoundTrip | None:
    usable = [p for p in pairs if p.status != avoid_status and not p.target.matches(avoid_state)]
    if prefer is not None:
        preferred = [p for p in usable if p.target.matches(prefer)]
        if preferred:
            return preferred[0]
    # An unavailable row first: it changes both sides visibly from the usual Available.
    usable.sort(key=lambda p: p.target.code is None)
    return usable[0] if usable else None


def first_trip(
    agent: ValidatedAgent, shown_status: str | None, cx_state: CxoneState, salesforce_status: str | None
) -> RoundTrip | Diagnosis:
    """The Salesforce status to set first (given, or a round trip that changes both sides) and the CXone state it maps to."""
    rule, codes = agent.rule, agent.team_codes
    if salesforce_status is not None:
        resolution = rule.subscribe(salesforce_status, codes, previous=None)
        if resolution.target is None:
            return unmapped(f"Salesforce status {salesforce_status}", resolution.reason)
        return RoundTrip(salesforce_status, resolution.target)
    trip = _pick(round_trips(rule, codes), shown_status, cx_state)
    return trip or unmapped("this agent", f"rule {rule.name!r} has no row that maps both ways for their team")


def chosen_second_trip(agent: ValidatedAgent, cxone_state: str) -> RoundTrip | Diagnosis:
    """The CXone state given for the second hop, and the Salesforce status the rule maps it to."""
    target = _parse_target(cxone_state)
    if isinstance(target, Diagnosis):
        return target
    published = agent.rule.publish(CxoneState(target.state, target.code))
    if published.target is None:
        return unmapped(f"CXone state {cxone_state}", published.reason)
    return RoundTrip(published.target, target)


def picked_second_trip(
    agent: ValidatedAgent, shown_status: str | None, cx_state: CxoneState, cx_before: CxoneState
) -> RoundTrip | Diagnosis:
    """A round trip that changes both sides from what they show now, preferably back to the agent's own state."""
    trip = _pick(round_trips(agent.rule, agent.team_codes), shown_status, cx_state, prefer=cx_before)
    return trip or unmapped("this agent", f"rule {agent.rule.name!r} has only one row that maps both ways for their team")


def missing_status(trip: RoundTrip | Diagnosis | None, status_ids: dict[str, str]) -> Diagnosis | None:
    if not isinstance(trip, RoundTrip) or trip.status in status_ids:
        return None
    return Diagnosis(
        Cause.UNMAPPED,
        f"the presence status {trip.status} does not exist in Salesforce.",
        "run onboarding (`presence-sync onboard CONFIG`) so that it creates the rule's statuses",
    )


def _parse_target(text: str) -> CxoneTarget | Diagnosis:
    try:
        target = parse_subscriber_target(text)
    except StateError as error:
        return Diagnosis(Cause.UNMAPPED, str(error), "give cxone_state as Available or 'Unavailable: <code>'")
    if not isinstance(target, CxoneTarget):
        return Diagnosis(Cause.UNMAPPED, "Previous State can't be set directly.", "give Available or 'Unavailable: <code>'")
    return target


def unmapped(what: str, reason: str) -> Diagnosis:
    return Diagnosis(
        Cause.UNMAPPED,
        f"{what} can't be validated: {reason}.",
        "pick a status/state the rule maps both ways (a publisher row and a subscriber row for the same pair), "
        "or add the rows to the rule and run onboarding",
    )
