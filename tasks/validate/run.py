"""Validating one agent: the checks before anything is changed, then the two hops and the restore.

    report = await validate_agent(ctx, "agent7@example.com", timeout_seconds=20)   # no Prefect
    report.passed, report.failure
"""

from __future__ import annotations

from presence_sync.connectors import current_spell
from presence_sync.engine.audit import OFFLINE
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.runner import load_setup
from presence_sync.tasks.sync.status import find_agent
from presence_sync.tasks.validate.hops import CxoneWatch, HopRunner, cxone_label
from presence_sync.tasks.validate.report import Cause, Diagnosis, Hop, HopResult, ValidationReport
from presence_sync.tasks.validate.trips import (
    RoundTrip,
    ValidatedAgent,
    chosen_second_trip,
    first_trip,
    missing_status,
    picked_second_trip,
)
from presence_sync.tasks.validate.waiting import sync_not_running, sync_running

DEFAULT_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.25
# Between two sync windows the lease is free for a moment (one tick, or a worker starting the next run).


async def validate_agent(
    ctx: Context,
    agent: str,
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    salesforce_status: str | None = None,
    cxone_state: str | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> ValidationReport:
    """Validate both directions for one agent; never raises for a broken hop (the report says why).

    `salesforce_status` (a DeveloperName) and `cxone_state` (e.g. "Unavailable: Lunch") override the
    automatically chosen round-trip rows.

    Example:
        async with open_context("contact-center.yaml") as ctx:
            report = await validate_agent(ctx, "1000007")
    """
    report = ValidationReport(agent=agent)
    resolved = await _resolve(ctx, agent, report)
    if resolved is None:
        return report
    link = resolved.link
    activity = await sync_running(ctx.store, link.cxone_agent_id)
    if not activity.running:
        offer = "validate again with `--with-sync` (a sync window runs beside the validation); or "
        return _fail_preflight(report, sync_not_running(activity, offer))

    cx_watch = CxoneWatch(ctx.cxone, link.cxone_agent_id)
    cx_before = await cx_watch.poll()
    spell_before = await current_spell(ctx.salesforce, link.sf_user_id)
    report.original_cxone = cxone_label(cx_before)
    report.original_salesforce = spell_before.label if spell_before is not None else OFFLINE
    if cx_before.is_contact:
        return _fail_preflight(report, Diagnosis(
            Cause.ON_CONTACT,
            f"the agent is in {cxone_label(cx_before)}: a live contact wins over any Salesforce status, "
            "so the hops could not be told apart from the contact.",
            "run the validation when the agent is idle (Available or Unavailable), or pick another test agent",
        ))

    shown_status = None if spell_before is None else spell_before.status
    first = first_trip(resolved, shown_status, cx_before, salesforce_status)
    second = chosen_second_trip(resolved, cxone_state) if cxone_state is not None else None
    status_ids = resolved.status_ids
    for problem in (first, second, missing_status(first, status_ids), missing_status(second, status_ids)):
        if isinstance(problem, Diagnosis):
            return _fail_preflight(report, problem)
    assert isinstance(first, RoundTrip)

    hops = HopRunner(ctx, link, resolved.rule, status_ids, cx_watch, timeout_seconds, poll_seconds)
    report.hops.append(await hops.salesforce_to_cxone(first, status_ids[first.status], spell_before))
    if second is None:  # chosen from what both sides show now, so that the hop changes both
        spell_now = await current_spell(ctx.salesforce, link.sf_user_id)
        status_now = None if spell_now is None else spell_now.status
        second = picked_second_trip(resolved, status_now, await cx_watch.poll(), cx_before)
        second = missing_status(second, status_ids) or second
    if isinstance(second, Diagnosis):
        report.hops.append(HopResult(Hop.CXONE_TO_SALESFORCE, "not run", "", "", False, diagnosis=second))
    else:
        report.hops.append(await hops.cxone_to_salesforce(second))
    report.hops.append(await hops.restore(cx_before, spell_before, report.passed))
    return report


async def _resolve(ctx: Context, agent: str, report: ValidationReport) -> ValidatedAgent | None:
    """The agent's link, rule and team codes, and the status ids, exactly as the sync reads them."""
    link = find_agent(ctx.store.setup.load_links(), agent)
    if link is None:
        _fail_preflight(report, Diagnosis(
            Cause.NOT_LINKED,
            f"no linked agent matches {agent!r} (by CXone agent id, email, username or Salesforce username).",
            "check the spelling; run onboarding or `presence-sync refresh-users CONFIG` to link agents, "
            "and add a `links` override when the CXone email differs from the Salesforce user",
        ))
        return None
    report.cxone_agent_id, report.salesforce_user_id = link.cxone_agent_id, link.sf_user_id
    setup = await load_setup(ctx)
    engine_link = setup.links[link.cxone_agent_id]
    rule = setup.rulebook.rule_for(engine_link)
    if rule is None:
        _fail_preflight(report, Diagnosis(
            Cause.NO_RULE,
            f"no presence rule is assigned to agent {link.cxone_agent_id} or to their team {link.team_name!r}.",
            "add the team to a rule's teams (or the agent to its users) under rules in the config and run onboarding",
        ))
        return None
    report.rule_name = rule.name
    return ValidatedAgent(link, rule, engine_link.team_codes, dict(setup.targets.status_ids))


def _fail_preflight(report: ValidationReport, diagnosis: Diagnosis) -> ValidationReport:
    report.hops.append(HopResult(Hop.PREFLIGHT, "checked the agent and the sync", "ready to validate", "not ready",
                                 passed=False, diagnosis=diagnosis))
    for hop in (Hop.SALESFORCE_TO_CXONE, Hop.CXONE_TO_SALESFORCE):
        report.hops.append(HopResult(hop, "not run", "", "", passed=False, note=f"not run: {diagnosis.cause}"))
    return report
