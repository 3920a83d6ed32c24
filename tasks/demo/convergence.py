"""Whether the two systems agree by the rule: per human change (the propagation watcher's expectation)
and for every linked agent at the end (read through both APIs), as the sync itself reads rules.

    rules = await agent_rules(ctx)
    convergence = await check_convergence(ctx, rules)
    convergence.converged, convergence.disagreements
"""

from __future__ import annotations

from dataclasses import dataclass, field

from presence_sync.connectors import current_spells, cxone_state_from_api
from presence_sync.emulators.simulator import Expect, Expectation, HumanChange
from presence_sync.engine import CxoneState, Rule, display, salesforce_shows
from presence_sync.engine.audit import OFFLINE, describe
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.runner import load_setup


@dataclass(frozen=True, slots=True)
class AgentRule:
    """A linked agent's rule and the unavailable codes of their team."""

    rule: Rule
    team_codes: frozenset[str]
    sf_user_id: str


@dataclass(frozen=True, slots=True)
class Disagreement:
    agent_id: int
    cxone: str
    salesforce: str
    rule_says: str


@dataclass
class Convergence:
    """Whether every linked agent's two sides agree with the rule, as read through both APIs."""

    checked: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    logged_out: int = 0

    @property
    def converged(self) -> bool:
        return self.checked > 0 and not self.disagreements


async def agent_rules(ctx: Context) -> dict[int, AgentRule]:
    """Every linked agent with a rule, by CXone agent id, read exactly as the sync reads them."""
    setup = await load_setup(ctx)
    rules: dict[int, AgentRule] = {}
    for agent_id, link in setup.links.items():
        rule = setup.rulebook.rule_for(link)
        if rule is not None:
            rules[agent_id] = AgentRule(rule, link.team_codes, link.sf_user_id)
    return rules


def rule_expectation(rules: dict[int, AgentRule]) -> Expect:
    """What the other side of a human change should show once the sync carried it (None: nothing to carry)."""

    def expect(change: HumanChange) -> Expectation | None:
        agent = rules.get(change.agent.cxone_agent_id)
        if agent is None:
            return None
        if change.side == "cxone":
            assert change.cxone_state is not None
            status = agent.rule.publish(cxone_state_from_api(change.cxone_state)).target
            if status is None:
                return None
            return Expectation("salesforce", describe(status), lambda shown: salesforce_shows(status, shown))
        target = agent.rule.subscribe(change.salesforce_status, agent.team_codes, previous=None).target
        if target is None:
            return None
        return Expectation("cxone", display(target), lambda shown: target.matches(cxone_state_from_api(shown)))

    return expect


def agrees(agent: AgentRule, cxone: CxoneState, status: str | None) -> tuple[bool, str]:
    """Whether CXone and Salesforce agree with the agent's rule; with what the rule says when not."""
    return agent.rule.agreement(cxone, status, agent.team_codes)


async def check_convergence(ctx: Context, rules: dict[int, AgentRule]) -> Convergence:
    """Read every agent's state in both systems (through their APIs) and compare with the rule."""
    states = {record.agent_id: record.state for record in (await ctx.cxone.agent_states()).states}
    statuses = {spell.user_id: spell.status for spell in (await current_spells(ctx.salesforce)).records}
    result = Convergence()
    for agent_id, agent in sorted(rules.items()):
        cxone = states.get(agent_id)
        if cxone is None:
            continue
        status = statuses.get(agent.sf_user_id)
        result.checked += 1
        result.logged_out += cxone.is_logged_out or status is None
        agreed, why = agrees(agent, cxone, status)
        if not agreed:
            result.disagreements.append(Disagreement(agent_id, display(cxone), status or OFFLINE, why))
    return result
