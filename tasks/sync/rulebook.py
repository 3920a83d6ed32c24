"""What onboarding stored (rules, assignments) -> the engine's `RuleBook`, in one place.

The rule rows are stored as the config writes them ("Unavailable: Break"); each is read once, by the
rule syntax's one reader (`AcdState.parse`, presence_sync.engine.states), and handed to the engine typed.

    rulebook = load_rulebook(store)
    rulebook.rule_for(AgentLink(agent_id, sf_user_id, team_id, team_codes))
"""

from __future__ import annotations

from presence_sync.engine import (
    AcdState,
    Rule,
    RuleBook,
    RuleError,
    SubscriberTarget,
    parse_on_cxone_logout,
    parse_on_omni_logout,
)
from presence_sync.models.store import AssignmentKind, PresenceRule, Store

_REPAIR = "run onboarding again (`presence-sync onboard CONFIG`) so that it stores the rule from the config"


class StoredRuleError(RuleError):
    """A rule in the state store that the sync can't use (damaged, or written by another version)."""


def rule_from_stored(stored: PresenceRule) -> Rule:
    """The engine `Rule` of a stored presence rule; `StoredRuleError` names the bad row and the fix."""
    publisher: dict[AcdState, str] = {}
    subscriber: dict[str, SubscriberTarget] = {}
    for side, rows in (("publisher", stored.publisher_rows), ("subscriber", stored.subscriber_rows)):
        for index, row in enumerate(rows):
            where = f"stored rule {stored.name!r} {side} row {index}"
            try:
                acd, status = AcdState.parse(str(row["acd"])), str(row["salesforce"])
                if side == "publisher":
                    acd.publisher_key()
                    publisher[acd] = status
                else:
                    subscriber[status] = acd.subscriber_target()
            except (KeyError, ValueError) as error:
                raise StoredRuleError(f"{where} ({row!r}) is not usable: {error}; {_REPAIR}") from None
    try:
        on_cxone_logout = parse_on_cxone_logout(stored.on_cxone_logout)
        on_omni_logout = parse_on_omni_logout(stored.on_omni_logout)
    except ValueError as error:
        raise StoredRuleError(f"stored rule {stored.name!r}'s logout settings are not usable: {error}; {_REPAIR}") from None
    try:
        return Rule(stored.name, publisher, subscriber, stored.skip_validation, on_cxone_logout, on_omni_logout)
    except RuleError as error:
        raise StoredRuleError(f"{error}; {_REPAIR}") from None


def load_rulebook(store: Store) -> RuleBook:
    """Every stored rule and its team/user assignments (a user's assignment overrides its team's).

    Two queries (assignments, rules), however many agents and rules. An empty store gives an empty
    rule book (no agent has a rule).
    """
    assignments = store.setup.list_rule_assignments()
    teams = {a.target_id: a.rule_name for a in assignments if a.kind is AssignmentKind.TEAM}
    users = {a.target_id: a.rule_name for a in assignments if a.kind is AssignmentKind.USER}
    assigned = {a.rule_name for a in assignments}
    stored = {rule.name: rule for rule in store.setup.list_rules() if rule.name in assigned}
    for name in sorted(assigned - set(stored)):
        # the foreign key makes this impossible; say so plainly if it happens anyway
        raise StoredRuleError(f"rule {name!r} is assigned but not stored; {_REPAIR}")
    return RuleBook.build([rule_from_stored(rule) for rule in stored.values()], teams=teams, users=users)
