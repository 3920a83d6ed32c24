"""Step 7, presence rule: validate the rule against both systems, then store it with its assignments.

Every row must name things that exist: Salesforce statuses, CXone unavailable codes, teams and agents.
Without skip-validation, assigning the rule to a team that lacks one of the rule's unavailable codes is
refused, naming the codes; so is assigning it to a user whose team lacks one (the agent's codes are
their team's). A rule is stored whole or not at all: a half-valid rule is never synced.

    plan = await plan_presence_rule(ctx)
    result = await apply_presence_rule(ctx, plan)   # "3 rule parts: 3 created" (the rule, two teams)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

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
from presence_sync.tasks.onboarding.people import AgentDirectory, read_agents, read_teams
from presence_sync.tasks.onboarding.salesforce_setup import name_key, read_statuses

_NOUN = ("rule part", "rule parts")
_NOT_STORED = "the rule was not stored: it is stored only once all of it is valid"
_SKIP_SETTING = "rule.skip_unavailable_code_validation: true"


@dataclass(frozen=True, kw_only=True)
class PresenceRulePlan(StepPlan):
    rule: PresenceRule | None = None
    teams: Mapping[int, str] = field(default_factory=dict)
    users: Mapping[int, str] = field(default_factory=dict)


@dataclass
class _Validation:
    failures: list[PlanItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    teams: dict[int, str] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)
    known_codes: frozenset[str] = frozenset()
    team_codes: dict[int, frozenset[str]] = field(default_factory=dict)

    def fail(self, subject: str, reason: str) -> None:
        self.failures.append(PlanItem(subject, Action.FAILED, reason, subject))


async def plan_presence_rule(ctx: Context, upcoming: Upcoming = NOTHING_UPCOMING) -> PresenceRulePlan:
    """Validate the rule against what exists and compare it with the stored one (reads only)."""
    rule = ctx.config.rule
    check = _Validation()
    pending = {name_key(name) for name in upcoming_keys(upcoming, StepName.PRESENCE_STATUSES)}
    await _check_statuses(ctx, rule, pending, check)
    await _check_codes_and_teams(ctx, rule, check)
    if rule.users:
        await _check_users(ctx, rule, check)
    if check.failures:
        return PresenceRulePlan(
            step=StepName.PRESENCE_RULE, items=tuple(check.failures), notes=(*check.notes, _NOT_STORED), noun=_NOUN
        )
    stored = _stored_row(rule)
    items = await asyncio.to_thread(_compare, ctx, stored, check.teams, check.users)
    return PresenceRulePlan(
        step=StepName.PRESENCE_RULE,
        items=tuple(items),
        notes=tuple(check.notes),
        rule=stored,
        teams=check.teams,
        users=check.users,
        noun=_NOUN,
    )


async def apply_presence_rule(ctx: Context, plan: PresenceRulePlan) -> StepResult:
    """Store the rule and make its assignments exactly the planned ones (one transaction)."""
    if plan.rule is not None and plan.has_changes:
        await asyncio.to_thread(ctx.store.setup.replace_rule, plan.rule, teams=plan.teams, users=plan.users)
    return plan.result()


async def _check_statuses(ctx: Context, rule: PresenceRuleConfig, pending: set[str], check: _Validation) -> None:
    statuses = await read_statuses(ctx.salesforce)
    named = dict.fromkeys(row.salesforce for row in (*rule.publisher, *rule.subscriber))
    for name in named:
        if name_key(name) not in statuses and name_key(name) not in pending:
            check.fail(
                f"status {name}",
                "does not exist in Salesforce -> the presence-statuses step creates the configured statuses; "
                "fix its failures first",
            )


async def _check_codes_and_teams(ctx: Context, rule: PresenceRuleConfig, check: _Validation) -> None:
    cx = ctx.cxone
    codes = {str(code["name"]) for code in await cx.list_unavailable_codes()}
    wanted = rule.unavailable_codes()
    for code in sorted(wanted - codes):
        check.fail(
            f"unavailable code {code}",
            f"CXone has no active unavailable code '{code}' -> {did_you_mean(code, codes)}create it (ACD > "
            "Unavailable Codes) or change the rule rows that name it",
        )
    check.known_codes = wanted & codes
    teams = await read_teams(cx)
    team_ids = {name.casefold(): team_id for team_id, name in teams.items()}
    for index, name in enumerate(rule.teams):
        team_id = team_ids.get(name.casefold())
        if team_id is None:
            check.fail(
                f"team {name}",
                f"CXone has no active team '{name}' -> {did_you_mean(name, teams.values())}fix rule.teams[{index}]; "
                f"existing: {', '.join(sorted(teams.values()))}",
            )
            continue
        lacking = await _lacking_codes(ctx, check, team_id)
        if lacking and not rule.skip_unavailable_code_validation:
            check.fail(
                f"team {name}",
                f"refused: team '{name}' lacks the rule's unavailable code(s) {', '.join(lacking)} -> add them to "
                f"the team in CXone (ACD > Teams > Unavailable Codes), or set {_SKIP_SETTING}",
            )
            continue
        if lacking:
            check.notes.append(f"team '{name}' lacks unavailable code(s) {', '.join(lacking)}{_landing(rule, lacking)} "
                               "(skip-validation is on)")
        check.teams[team_id] = teams[team_id]


async def _lacking_codes(ctx: Context, check: _Validation, team_id: int) -> list[str]:
    """The rule's (existing) unavailable codes that this team's agents may not use; asked once per team."""
    if team_id not in check.team_codes:
        team = await ctx.cxone.team_unavailable_codes(team_id)
        check.team_codes[team_id] = frozenset(str(code["outStateName"]) for code in team)
    return sorted(check.known_codes - check.team_codes[team_id])


def _landing(rule: PresenceRuleConfig, lacking: list[str]) -> str:
    statuses = sorted(row.salesforce for row in rule.subscriber if row.acd.code in lacking)
    return f": its agents who pick {', '.join(statuses)} get CXone's default Unavailable" if statuses else ""


async def _check_users(ctx: Context, rule: PresenceRuleConfig, check: _Validation) -> None:
    """Each assigned user must be one active agent; their team must have the rule's codes (as for teams)."""
    directory = AgentDirectory(await read_agents(ctx.cxone))
    for index, reference in enumerate(rule.users):
        found = directory.find(reference)
        if len(found) != 1:
            problem = "no active CXone agent has" if not found else f"{len(found)} CXone agents share"
            reason = f"{problem} the id, email or user name '{reference}' -> fix rule.users[{index}]"
            check.fail(f"user {reference}", reason)
            continue
        agent = found[0]
        lacking = await _lacking_codes(ctx, check, agent.team_id) if agent.team_id is not None else []
        team = f"team '{agent.team_name or agent.team_id}'"
        if lacking and not rule.skip_unavailable_code_validation:
            check.fail(
                f"user {reference}",
                f"refused: agent {agent.label} is on {team}, which lacks the rule's unavailable code(s) "
                f"{', '.join(lacking)} -> add them to that team in CXone (ACD > Teams > Unavailable Codes), "
                f"remove rule.users[{index}], or set {_SKIP_SETTING}",
            )
            continue
        if lacking:
            check.notes.append(f"user {agent.label} is on {team}, which lacks unavailable code(s) "
                               f"{', '.join(lacking)}{_landing(rule, lacking)} (skip-validation is on)")
        check.users[agent.agent_id] = agent.user_name


def _stored_row(rule: PresenceRuleConfig) -> PresenceRule:
    return PresenceRule(
        name=rule.name,
        skip_validation=rule.skip_unavailable_code_validation,
        publisher_rows=[{"acd": str(row.acd), "salesforce": row.salesforce} for row in rule.publisher],
        subscriber_rows=[{"salesforce": row.salesforce, "acd": str(row.acd)} for row in rule.subscriber],
    )


def _compare(ctx: Context, wanted: PresenceRule, teams: Mapping[int, str], users: Mapping[int, str]) -> list[PlanItem]:
    """Items for the rule and each assignment, against the store (which may hold other rules)."""
    stored = ctx.store.setup.get_rule(wanted.name)
    assigned = {(a.kind, a.target_id): a for a in ctx.store.setup.list_rule_assignments()}
    subject = f"rule {wanted.name}"
    shape = (
        f"{len(wanted.publisher_rows)} publisher and {len(wanted.subscriber_rows)} subscriber rows, "
        f"skip-validation {'on' if wanted.skip_validation else 'off'}"
    )
    if stored is None:
        items = [PlanItem(subject, Action.CREATE, shape, subject)]
    elif (stored.skip_validation, stored.publisher_rows, stored.subscriber_rows) != (
        wanted.skip_validation, wanted.publisher_rows, wanted.subscriber_rows
    ):
        items = [PlanItem(subject, Action.UPDATE, f"rows or skip-validation changed: now {shape}", subject)]
    else:
        items = [PlanItem(subject, Action.UNCHANGED, shape, subject)]
    wanted_targets = {(AssignmentKind.TEAM, i): n for i, n in teams.items()} | {
        (AssignmentKind.USER, i): n for i, n in users.items()
    }
    for (kind, target_id), name in wanted_targets.items():
        items.append(_assignment_item(kind, target_id, name, assigned.get((kind, target_id)), wanted.name))
    items += [
        PlanItem(f"{kind.value} {a.target_name}", Action.REMOVE, "not in the config any more", f"{kind}:{target_id}")
        for (kind, target_id), a in assigned.items()
        if a.rule_name == wanted.name and (kind, target_id) not in wanted_targets
    ]
    return items


def _assignment_item(
    kind: AssignmentKind, target_id: int, name: str, before: RuleAssignment | None, rule_name: str
) -> PlanItem:
    subject, key = f"{kind.value} {name}", f"{kind}:{target_id}"
    if before is None:
        return PlanItem(subject, Action.CREATE, f"assign the rule ({kind.value} id {target_id})", key)
    if before.rule_name != rule_name:
        return PlanItem(subject, Action.UPDATE, f"moves from rule '{before.rule_name}' to this one", key)
    if before.target_name != name:
        return PlanItem(subject, Action.UPDATE, f"renamed from '{before.target_name}'", key)
    return PlanItem(subject, Action.UNCHANGED, f"assigned ({kind.value} id {target_id})", key)
