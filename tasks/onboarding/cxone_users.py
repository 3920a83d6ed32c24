"""Step 6, CXone users ("Get NiCE CXone Users"): fetch agents and teams, link each agent to its Salesforce user.

Matching, in order: the config's explicit `links` (they win), then the agent's email against the users'
emails, then its CRM user name or user name against Salesforce usernames. Agents left unlinked are
listed with the reason; they are not synced until someone links them. The same step alone is the
`refresh-users` flow.

    linking = link_agents(agents, users, ctx.config.links)     # pure: no I/O
    plan = await plan_cxone_users(ctx)
    result = await apply_cxone_users(ctx, plan)                 # "196 agent links: 196 created"
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from presence_sync.models.config import LinkOverride
from presence_sync.models.store import AgentLink, LinkedBy
from presence_sync.tasks.context import Context
from presence_sync.tasks.onboarding.model import NOTHING_UPCOMING, Action, PlanItem, StepName, StepPlan, StepResult, Upcoming
from presence_sync.tasks.onboarding.people import (
    AgentDirectory,
    CxoneAgent,
    SalesforceUser,
    UserDirectory,
    read_agents,
    read_teams,
    read_users,
)

_NOUN = ("agent link", "agent links")
_LINK_FIX = "create the Salesforce user, align the email in CXone and Salesforce, or add a links entry"
_COMPARED = ("cxone_username", "cxone_email", "team_id", "team_name", "sf_user_id", "sf_username", "linked_by")


@dataclass(frozen=True, slots=True)
class Unlinked:
    agent: CxoneAgent
    reason: str


@dataclass(frozen=True)
class Linking:
    """Who is linked to whom, who is not (and why), and the `links` entries that could not be used."""

    links: tuple[AgentLink, ...]
    unlinked: tuple[Unlinked, ...]
    failures: tuple[PlanItem, ...]


@dataclass(frozen=True, kw_only=True)
class CxoneUsersPlan(StepPlan):
    links: tuple[AgentLink, ...] = ()


def link_agents(
    agents: Sequence[CxoneAgent], users: Sequence[SalesforceUser], overrides: Sequence[LinkOverride] = ()
) -> Linking:
    """Link agents to users: overrides first, then by email, then by username; one user per agent."""
    people = UserDirectory(users)
    chosen: dict[int, tuple[SalesforceUser, LinkedBy]] = {}
    held_back: dict[int, str] = {}
    failures = _apply_overrides(AgentDirectory(agents), people, overrides, chosen, held_back)
    claimed = {user.id for user, _ in chosen.values()}
    matched: dict[int, tuple[SalesforceUser, LinkedBy]] = {}
    unlinked: list[Unlinked] = []
    for agent in agents:
        if agent.agent_id in chosen:
            continue
        if agent.agent_id in held_back:
            unlinked.append(Unlinked(agent, held_back[agent.agent_id]))
            continue
        match = _match(agent, people, claimed)
        if isinstance(match, str):
            unlinked.append(Unlinked(agent, match))
        else:
            matched[agent.agent_id] = match
    by_user: dict[str, list[CxoneAgent]] = defaultdict(list)
    agents_by_id = {agent.agent_id: agent for agent in agents}
    for agent_id, (user, _) in matched.items():
        by_user[user.id].append(agents_by_id[agent_id])
    for user_id, rivals in by_user.items():
        if len(rivals) > 1:
            names = " and ".join(agent.label for agent in rivals)
            username = matched[rivals[0].agent_id][0].username
            for agent in rivals:
                del matched[agent.agent_id]
                reason = f"agents {names} all match Salesforce user {username} -> add a links entry for the right one"
                unlinked.append(Unlinked(agent, reason))
    chosen.update(matched)
    links = tuple(
        _link(agents_by_id[agent_id], user, linked_by)
        for agent_id, (user, linked_by) in sorted(chosen.items())
    )
    return Linking(links, tuple(sorted(unlinked, key=lambda u: u.agent.agent_id)), tuple(failures))


async def plan_cxone_users(ctx: Context, upcoming: Upcoming = NOTHING_UPCOMING) -> CxoneUsersPlan:
    """Fetch agents, teams and Salesforce users; compare the links with the stored ones (reads only)."""
    teams = await read_teams(ctx.cxone)
    agents = await read_agents(ctx.cxone, teams)
    users = await read_users(ctx.salesforce)
    linking = link_agents(agents, users, ctx.config.links)
    stored = {link.cxone_agent_id: link for link in await asyncio.to_thread(ctx.store.setup.load_links)}
    items = [*linking.failures, *_link_items(linking.links, stored)]
    kept = {link.cxone_agent_id for link in linking.links}
    items += [
        PlanItem(f"agent {link.cxone_username}", Action.REMOVE, "no longer linked", str(agent_id))
        for agent_id, link in sorted(stored.items())
        if agent_id not in kept
    ]
    notes = [
        f"{len(linking.unlinked)} of {len(agents)} active agents are not linked to a Salesforce user and "
        f"won't be synced -> {_LINK_FIX}",
        *(f"agent {item.agent.label} not linked: {item.reason}" for item in linking.unlinked),
    ] if linking.unlinked else []
    return CxoneUsersPlan(
        step=StepName.CXONE_USERS, items=tuple(items), notes=tuple(notes), links=linking.links, noun=_NOUN
    )


async def apply_cxone_users(ctx: Context, plan: CxoneUsersPlan) -> StepResult:
    """Make the stored links exactly the planned ones (one transaction)."""
    await asyncio.to_thread(ctx.store.setup.upsert_links, plan.links, prune=True)
    return plan.result()


def _apply_overrides(
    agents: AgentDirectory,
    people: UserDirectory,
    overrides: Sequence[LinkOverride],
    chosen: dict[int, tuple[SalesforceUser, LinkedBy]],
    held_back: dict[int, str],
) -> list[PlanItem]:
    failures: list[PlanItem] = []
    claimed: dict[str, int] = {}
    for index, override in enumerate(overrides):
        subject = f"links[{index}]"
        found = agents.find(override.cxone_agent)
        if len(found) != 1:
            problem = "no active CXone agent has" if not found else f"{len(found)} CXone agents share"
            reason = f"{problem} the id, email or user name '{override.cxone_agent}' -> fix links[{index}].cxone_agent"
            failures.append(PlanItem(subject, Action.FAILED, reason, subject))
            continue
        agent = found[0]
        user = people.find(override.salesforce_user)
        if agent.agent_id in chosen or agent.agent_id in held_back:
            reason = f"agent {agent.label} is already named by an earlier links entry -> keep one entry per agent"
            failures.append(PlanItem(subject, Action.FAILED, reason, subject))
        elif user is None:
            reason = (
                f"no active Salesforce user has the username or Id '{override.salesforce_user}' -> fix "
                f"links[{index}].salesforce_user"
            )
            failures.append(PlanItem(subject, Action.FAILED, reason, subject))
            held_back[agent.agent_id] = f"its links entry (links[{index}]) names no active Salesforce user"
        elif user.id in claimed:
            reason = f"Salesforce user {user.username} is already linked by links[{claimed[user.id]}]"
            failures.append(PlanItem(subject, Action.FAILED, reason, subject))
            held_back[agent.agent_id] = f"its links entry (links[{index}]) names a user another entry took"
        else:
            chosen[agent.agent_id] = (user, LinkedBy.OVERRIDE)
            claimed[user.id] = index
    return failures


def _match(agent: CxoneAgent, people: UserDirectory, claimed: set[str]) -> tuple[SalesforceUser, LinkedBy] | str:
    """The agent's Salesforce user and how it was found, or why there is none."""
    by_email = [user for user in people.by_email(agent.email) if user.id not in claimed]
    if len(by_email) == 1:
        return by_email[0], LinkedBy.EMAIL
    names = [name for name in dict.fromkeys((agent.crm_user_name, agent.user_name)) if name]
    for name in names:
        user = people.by_username(name)
        if user is not None and user.id not in claimed:
            return user, LinkedBy.USERNAME
    usernames = " or ".join(names)
    if len(by_email) > 1:
        return f"{len(by_email)} Salesforce users share the email {agent.email} and none has the username {usernames}"
    taken = [user for user in people.by_email(agent.email) if user.id in claimed]
    if taken:
        return f"its Salesforce user {taken[0].username} is linked to another agent by a links entry"
    email = f"the email {agent.email} or " if agent.email else ""
    return f"no active Salesforce user has {email}the username {usernames}"


def _link(agent: CxoneAgent, user: SalesforceUser, linked_by: LinkedBy) -> AgentLink:
    return AgentLink(
        cxone_agent_id=agent.agent_id,
        cxone_username=agent.user_name,
        cxone_email=agent.email,
        team_id=agent.team_id,
        team_name=agent.team_name,
        sf_user_id=user.id,
        sf_username=user.username,
        linked_by=linked_by,
    )


def _link_items(links: Iterable[AgentLink], stored: dict[int, AgentLink]) -> list[PlanItem]:
    items = []
    for link in links:
        subject, key = f"agent {link.cxone_username}", str(link.cxone_agent_id)
        before = stored.get(link.cxone_agent_id)
        linked = f"-> Salesforce user {link.sf_username} (by {link.linked_by.value})"
        if before is None:
            items.append(PlanItem(subject, Action.CREATE, linked, key))
        elif changed := [name for name in _COMPARED if getattr(before, name) != getattr(link, name)]:
            changes = "; ".join(f"{name} {getattr(before, name)} -> {getattr(link, name)}" for name in changed)
            items.append(PlanItem(subject, Action.UPDATE, changes, key))
        else:
            items.append(PlanItem(subject, Action.UNCHANGED, linked, key))
    return items
