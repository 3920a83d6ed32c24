"""Step 7, presence rules: validate each rule against both systems, then store them with their assignments.

Every row must name things that exist: Salesforce statuses, CXone unavailable codes, teams and agents.
Without a rule's skip-validation, assigning it to a team that lacks one of its unavailable codes is
refused, naming the codes; so is assigning it to a user whose team lacks one (the agent's codes are
their team's). A user assignment naming no active agent is a warning, listing them (the agent may not
exist yet); one agent assigned to two rules by user, under two names, is refused. The rules are stored
together or not at all: a half-valid set is never synced.

The store remembers which rules the config stored (`managed_by_config`): a rule that leaves the config
is removed with its assignments, a rule stored any other way is left alone. The plan shows every
rule and assignment created, updated or removed.

    plan = await plan_presence_rule(ctx)
    result = await apply_presence_rule(ctx, plan)   # "6 rule parts: 6 created" (two rules, four teams)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from presence_sync.engine import on_cxone_logout_text, on_omni_logout_text
from presence_sync.engine.errors import did_you_mean
from presence_sync.models.config import PresenceRuleConfig
from presence_sync.models.store import AssignmentKind, PresenceRule, RuleAssignment
from presence_sync.tasks.context import Context
from presence_sync.tasks.onboarding.model import (
    NOTHING_UPCOMING,
    Action,
    PlanItem,
    StepName,
    StepPlan,
    StepResult,
    Upcoming,
    upcoming_keys,
)
from presence_sync.tasks.onboarding.people import AgentDirectory, CxoneAgent, read_agents, read_teams
from presence_sync.tasks.onboarding.salesforce_setup import name_key, read_statuses

_NOUN = ("rule part", "rule parts")
_NOT_STORED = "no rule was stored: the rules are stored only once all of them are valid"


@dataclass(frozen=True, kw_only=True)
class PresenceRulePlan(StepPlan):
    """The rules to store, their whole assignment list, and the config's former rules to remove."""

    rules: tuple[PresenceRule, ...] = ()
    assignments: tuple[RuleAssignment, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass
class _Validation:
    """What checking the rules against both systems found, shared by all rules (each read once)."""

    failures: list[PlanItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    assignments: dict[tuple[AssignmentKind, int], RuleAssignment] = field(default_factory=dict)
    where: dict[tuple[AssignmentKind, int], str] = field(default_factory=dict)
    codes: set[str] = field(default_factory=set)
    teams: dict[int, str] = field(default_factory=dict)
    team_codes: dict[int, frozenset[str]] = field(default_factory=dict)
    directory: AgentDirectory | None = None
    unknown_users: list[str] = field(default_factory=list)

    def fail(self, subject: str, reason: str) -> None:
        self.failures.append(PlanItem(subject, Action.FAILED, reason, subject))

    def assign(self, kind: AssignmentKind, target_id: int, name: str, rule: str, where: str) -> None:
        key = (kind, target_id)
        earlier = self.assignments.get(key)
        if earlier is not None and earlier.rule_name != rule:
            self.fail(
                f"{kind.value} {name}",
                f"{where} and {self.where[key]} name the same {'agent' if kind is AssignmentKind.USER else 'team'} "
                f"(id {target_id}) for rules '{earlier.rule_name}' and '{rule}' -> assign it to one rule only",
            )
            return
        self.assignments[key] = RuleAssignment(kind=kind, target_id=target_id, rule_name=rule, target_name=name)
        self.where[key] = where


async def plan_presence_rule(ctx: Context, upcoming: Upcoming = NOTHING_UPCOMING) -> PresenceRulePlan:
    """Validate every rule against what exists and compare them with the stored ones (reads only)."""
    config = ctx.config
    check = _Validation()
    pending = {name_key(name) for name in upcoming_keys(upcoming, StepName.PRESENCE_STATUSES)}
    await _check_statuses(ctx, pending, check)
    await _read_cxone(ctx, check)
    for rule in config.presence_rules:
        await _check_rule(ctx, rule, config.rule_path(rule), check)
    if check.unknown_users:
        check.notes.append(
            f"not assigned, no active CXone agent matches: {', '.join(check.unknown_users)} -> fix or remove these "
            "user assignments (or run onboarding again once the agents exist)"
        )
    if check.failures:
        return PresenceRulePlan(
            step=StepName.PRESENCE_RULE, items=tuple(check.failures), notes=(*check.notes, _NOT_STORED), noun=_NOUN
        )
    rules = tuple(_stored_row(rule) for rule in config.presence_rules)
    assignments = tuple(check.assignments.values())
    items, remove = await asyncio.to_thread(_compare, ctx, rules, assignments)
    return PresenceRulePlan(
        step=StepName.PRESENCE_RULE,
        items=tuple(items),
        notes=tuple(check.notes),
        rules=rules,
        assignments=assignments,
        remove=tuple(remove),
        noun=_NOUN,
    )


async def apply_presence_rule(ctx: Context, plan: PresenceRulePlan) -> StepResult:
    """Store the rules, make their assignments exactly the planned ones, remove the config's former
    rules (one transaction)."""
    if plan.rules and plan.has_changes:
        await asyncio.to_thread(ctx.store.setup.replace_rules, plan.rules, plan.assignments, remove=plan.remove)
    return plan.result()


async def _check_statuses(ctx: Context, pending: set[str], check: _Validation) -> None:
    statuses = await read_statuses(ctx.salesforce)
    named = dict.fromkeys(name for rule in ctx.config.presence_rules for _, name in rule.statuses_named())
    for name in named:
        if name_key(name) not in statuses and name_key(name) not in pending:
            check.fail(
                f"status {name}",
                "does not exist in Salesforce -> the presence-statuses step creates the configured statuses; "
                "fix its failures first",
            )


async def _read_cxone(ctx: Context, check: _Validation) -> None:
    """Unavailable codes and teams (always), agents (when some rule assigns users): once for all rules."""
    cx = ctx.cxone
    codes = {str(code["name"]) for code in await cx.list_unavailable_codes()}
    wanted = set().union(*(rule.unavailable_codes() for rule in ctx.config.presence_rules))
    for code in sorted(wanted - codes):
        check.fail(
            f"unavailable code {code}",
            f"CXone has no active unavailable code '{code}' -> {did_you_mean(code, codes)}create it (ACD > "
            "Unavailable Codes) or change the rule rows that name it",
        )
    check.codes = wanted & codes
    check.teams = await read_teams(cx)
    if any(rule.users for rule in ctx.config.presence_rules):
        check.directory = AgentDirectory(await read_agents(cx))


async def _check_rule(ctx: Context, rule: PresenceRuleConfig, path: str, check: _Validation) -> None:
    team_ids = {name.casefold(): team_id for team_id, name in check.teams.items()}
    for index, name in enumerate(rule.teams):
        where = f"{path}.teams[{index}]"
        team_id = team_ids.get(name.casefold())
        if team_id is None:
            existing = ", ".join(sorted(check.teams.values()))
            check.fail(
                f"team {name}",
                f"CXone has no active team '{name}' -> {did_you_mean(name, check.teams.values())}fix {where}; "
                f"existing: {existing}",
            )
            continue
        lacking = await _lacking_codes(ctx, rule, check, team_id)
        if lacking and not rule.skip_unavailable_code_validation:
            check.fail(
                f"team {name}",
                f"refused: team '{name}' lacks the rule's unavailable code(s) {', '.join(lacking)} (rule "
                f"'{rule.name}') -> add them to the team in CXone (ACD > Teams > Unavailable Codes), or set "
                f"{path}.skip_unavailable_code_validation: true",
            )
            continue
        if lacking:
            check.notes.append(f"team '{name}' lacks unavailable code(s) {', '.join(lacking)}{_landing(rule, lacking)} "
                               f"(rule '{rule.name}', skip-validation is on)")
        check.assign(AssignmentKind.TEAM, team_id, check.teams[team_id], rule.name, where)
    for index, reference in enumerate(rule.users):
        agent = _the_agent(rule, path, index, reference, check)
        if agent is not None:
            await _check_user_codes(ctx, rule, path, index, reference, agent, check)


def _the_agent(
    rule: PresenceRuleConfig, path: str, index: int, reference: int | str, check: _Validation
) -> CxoneAgent | None:
    """The one active agent a user assignment names; none is a warning, several a failure."""
    assert check.directory is not None
    found = check.directory.find(reference)
    if not found:
        check.unknown_users.append(f"{reference} ({path}.users[{index}])")
    elif len(found) > 1:
        check.fail(
            f"user {reference}",
            f"{len(found)} CXone agents share the id, email or user name '{reference}' -> fix {path}.users[{index}] "
            "(name the agent by its CXone agent id)",
        )
    return found[0] if len(found) == 1 else None


async def _check_user_codes(
    ctx: Context, rule: PresenceRuleConfig, path: str, index: int, reference: int | str, agent: CxoneAgent,
    check: _Validation,
) -> None:
    where = f"{path}.users[{index}]"
    lacking = await _lacking_codes(ctx, rule, check, agent.team_id) if agent.team_id is not None else []
    team = f"team '{agent.team_name or agent.team_id}'"
    if lacking and not rule.skip_unavailable_code_validation:
        check.fail(
            f"user {reference}",
            f"refused: agent {agent.label} is on {team}, which lacks the rule's unavailable code(s) "
            f"{', '.join(lacking)} (rule '{rule.name}') -> add them to that team in CXone (ACD > Teams > "
            "Unavailable Codes), "
            f"remove {where}, or set {path}.skip_unavailable_code_validation: true",
        )
        return
    if lacking:
        check.notes.append(f"user {agent.label} is on {team}, which lacks unavailable code(s) "
                           f"{', '.join(lacking)}{_landing(rule, lacking)} (rule '{rule.name}', skip-validation is on)")
    check.assign(AssignmentKind.USER, agent.agent_id, agent.user_name, rule.name, where)


async def _lacking_codes(ctx: Context, rule: PresenceRuleConfig, check: _Validation, team_id: int) -> list[str]:
    """The rule's (existing) unavailable codes that this team's agents may not use; each team asked once."""
    if team_id not in check.team_codes:
        team = await ctx.cxone.team_unavailable_codes(team_id)
        check.team_codes[team_id] = frozenset(str(code["outStateName"]) for code in team)
    return sorted((rule.unavailable_codes() & check.codes) - check.team_codes[team_id])


def _landing(rule: PresenceRuleConfig, lacking: list[str]) -> str:
    statuses = sorted(row.salesforce for row in rule.subscriber if row.acd.code in lacking)
    return f": its agents who pick {', '.join(statuses)} get CXone's default Unavailable" if statuses else ""


def _stored_row(rule: PresenceRuleConfig) -> PresenceRule:
    return PresenceRule(
        name=rule.name,
        skip_validation=rule.skip_unavailable_code_validation,
        publisher_rows=[{"acd": str(row.acd), "salesforce": row.salesforce} for row in rule.publisher],
        subscriber_rows=[{"salesforce": row.salesforce, "acd": str(row.acd)} for row in rule.subscriber],
        on_cxone_logout=on_cxone_logout_text(rule.on_cxone_logout),
        on_omni_logout=on_omni_logout_text(rule.on_omni_logout),
        managed_by_config=True,
    )


def _shape(rule: PresenceRule) -> str:
    return (
        f"{len(rule.publisher_rows)} publisher and {len(rule.subscriber_rows)} subscriber rows, "
        f"skip-validation {'on' if rule.skip_validation else 'off'}, CXone logout -> {rule.on_cxone_logout}, "
        f"Omni logout -> {rule.on_omni_logout}"
    )


_COMPARED = ("skip_validation", "publisher_rows", "subscriber_rows", "on_cxone_logout", "on_omni_logout", "managed_by_config")


def _compare(
    ctx: Context, rules: tuple[PresenceRule, ...], assignments: tuple[RuleAssignment, ...]
) -> tuple[list[PlanItem], list[str]]:
    """Items for each rule and assignment against the store, and the config's former rules to remove."""
    stored = {rule.name: rule for rule in ctx.store.setup.list_rules()}
    assigned = {(a.kind, a.target_id): a for a in ctx.store.setup.list_rule_assignments()}
    names = {rule.name for rule in rules}
    items: list[PlanItem] = []
    for rule in rules:
        subject, before = f"rule {rule.name}", stored.get(rule.name)
        if before is None:
            items.append(PlanItem(subject, Action.CREATE, _shape(rule), subject))
        elif changed := [name for name in _COMPARED if getattr(before, name) != getattr(rule, name)]:
            what = ", ".join(name.replace("_", " ") for name in changed)
            items.append(PlanItem(subject, Action.UPDATE, f"{what} changed: now {_shape(rule)}", subject))
        else:
            items.append(PlanItem(subject, Action.UNCHANGED, _shape(rule), subject))
    remove = sorted(name for name, rule in stored.items() if rule.managed_by_config and name not in names)
    items += [PlanItem(f"rule {name}", Action.REMOVE, "no longer in the config", f"rule {name}") for name in remove]
    wanted = {(a.kind, a.target_id): a for a in assignments}
    items += [_assignment_item(a, assigned.get(key)) for key, a in wanted.items()]
    gone = set(names) | set(remove)
    items += [
        PlanItem(
            f"{kind.value} {a.target_name}",
            Action.REMOVE,
            f"no longer assigned to rule '{a.rule_name}'" if a.rule_name in names else f"with rule '{a.rule_name}'",
            f"{kind}:{target_id}",
        )
        for (kind, target_id), a in assigned.items()
        if a.rule_name in gone and (kind, target_id) not in wanted
    ]
    return items, remove


def _assignment_item(wanted: RuleAssignment, before: RuleAssignment | None) -> PlanItem:
    kind, target_id, name, rule_name = wanted.kind, wanted.target_id, wanted.target_name, wanted.rule_name
    subject, key = f"{kind.value} {name}", f"{kind}:{target_id}"
    if before is None:
        return PlanItem(subject, Action.CREATE, f"assign rule '{rule_name}' ({kind.value} id {target_id})", key)
    if before.rule_name != rule_name:
        return PlanItem(subject, Action.UPDATE, f"moves from rule '{before.rule_name}' to '{rule_name}'", key)
    if before.target_name != name:
        return PlanItem(subject, Action.UPDATE, f"renamed from '{before.target_name}' (rule '{rule_name}')", key)
    return PlanItem(subject, Action.UNCHANGED, f"assigned rule '{rule_name}' ({kind.value} id {target_id})", key)
