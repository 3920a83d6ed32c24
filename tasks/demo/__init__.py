"""The demo's own logic, below its flow: the simulated working day, the convergence check, the summary.

The `demo` flow (presence_sync.flows.demo) composes them with the onboard, sync and validate flows.

    rules = await agent_rules(ctx)
    convergence = await check_convergence(ctx, rules)
"""

from presence_sync.tasks.demo.convergence import (
    AgentRule,
    Convergence,
    Disagreement,
    agent_rules,
    agrees,
    check_convergence,
    rule_expectation,
)
from presence_sync.tasks.demo.summary import DemoSummary, Latency, summary_markdown

__all__ = [
    "AgentRule",
    "Convergence",
    "DemoSummary",
    "Disagreement",
    "Latency",
    "agent_rules",
    "agrees",
    "check_convergence",
    "rule_expectation",
    "summary_markdown",
]
