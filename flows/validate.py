"""The `validate` flow: the seed's "Validate Bidirectional Sync", automated for one test agent.

For the agent (CXone agent id, or email/username): record both current states; set a Salesforce
status through the presence applier (a `Presence_Sync_Command__e` for that user) and wait for the
mapped CXone state; set a CXone state through the Agent API and wait for the mapped Salesforce
status; restore both; time each hop. The statuses come from a rule row that maps both ways (e.g.
On_Break <-> Unavailable: Break). A failed hop is named with its likely cause and the fix.

    presence-sync validate examples/demo-contact-center.yaml --agent agent7@example.com

    report = await validate_agent(ctx, "agent7@example.com", timeout_seconds=20)   # no Prefect
    report.passed, report.failure
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.states import Completed, Failed, State

from presence_sync.connectors import (
    AgentLoggedOut,
    ConnectorError,
    CxoneClient,
    InvalidReason,
    NotPermitted,
    PresenceCommand,
    SalesforceClient,
)
from presence_sync.connectors.soql import quote_string
from presence_sync.engine import CxoneState, CxoneTarget, Direction, Outcome, Rule
from presence_sync.flows.run_names import validate_run_name
from presence_sync.models.store import AgentLink, Audit, Store
from presence_sync.tasks.context import Context, open_context
from presence_sync.tasks.sync.runner import LEASE_NAME, load_setup
from presence_sync.tasks.sync.status import find_agent

OFFLINE = "Offline"
OFFLINE_STATUS_ID = "0"
DEFAULT_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.25
# Between two sync windows the lease is free for a moment (one tick, or a worker starting the next run).
HANDOVER_GRACE_SECONDS = 5.0
COMMAND_REASON = "presence-sync validation"


class Hop(StrEnum):
    PREFLIGHT = "preflight"
    SALESFORCE_TO_CXONE = "Salesforce → CXone"
    CXONE_TO_SALESFORCE = "CXone → Salesforce"
    RESTORE = "restore"


class Cause(StrEnum):
    """The likely causes a failed hop is diagnosed with."""

    NOT_LINKED = "agent not linked"
    NO_RULE = "no presence rule"
    SYNC_NOT_RUNNING = "sync not running"
    CXONE_LOGGED_OUT = "agent logged out of CXone"
    ON_CONTACT = "agent on a contact"
    CONSOLE_CLOSED = "Salesforce console closed"
    NO_PROFILE_ACCESS = "status without profile access"
    UNMAPPED = "unmapped state"
    COMMAND_REJECTED = "presence command rejected"
    STATE_REJECTED = "CXone refused the state"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    cause: Cause
    explanation: str
    fix: str

    def __str__(self) -> str:
        return f"{self.cause}: {self.explanation} Fix: {self.fix}"


@dataclass(frozen=True, slots=True)
class HopResult:
    """One hop: what was done, what the other side should show, what it showed, and how long it took."""

    hop: Hop
    action: str
    expected: str
    observed: str
    passed: bool
    seconds: float | None = None
    note: str = ""
    diagnosis: Diagnosis | None = None

    def row(self) -> dict[str, str]:
        outcome = "passed" if self.passed else ("skipped" if self.diagnosis is None else "FAILED")
        return {
            "hop": self.hop.value,
            "action": self.action,
            "expected": self.expected,
            "observed": self.observed,
            "result": outcome,
            "seconds": "" if self.seconds is None else f"{self.seconds:.2f}",
            "cause": "" if self.diagnosis is None else str(self.diagnosis.cause),
            "fix": "" if self.diagnosis is None else self.diagnosis.fix,
            "note": self.note or ("" if self.diagnosis is None else self.diagnosis.explanation),
        }


@dataclass
class ValidationReport:
    """The outcome of validating one agent; `passed` only when both hops carried their change."""

    agent: str
    cxone_agent_id: int | None = None
    salesforce_user_id: str | None = None
    rule_name: str | None = None
    original_cxone: str = ""
    original_salesforce: str = ""
    hops: list[HopResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        hops = {result.hop: result.passed for result in self.hops}
        return bool(hops.get(Hop.SALESFORCE_TO_CXONE)) and bool(hops.get(Hop.CXONE_TO_SALESFORCE))

    @property
    def failure(self) -> HopResult | None:
        """The first hop that failed with a diagnosis (restore problems are notes, not failures)."""
        return next((r for r in self.hops if r.diagnosis is not None and r.hop is not Hop.RESTORE), None)

    @property
    def headline(self) -> str:
        if self.passed:
            timings = ", ".join(
                f"{r.hop.value} {r.seconds:.2f} s" for r in self.hops if r.seconds is not None and r.hop is not Hop.RESTORE
            )
            return f"validation passed for {self.agent}: {timings}"
        failure = self.failure
        if failure is None or failure.diagnosis is None:
            return f"validation failed for {self.agent}"
        return f"validation failed for {self.agent} at {failure.hop.value}: {failure.diagnosis}"

    def rows(self) -> list[dict[str, str]]:
        return [result.row() for result in self.hops]

    def markdown(self) -> str:
        verdict = "✅ passed" if self.passed else "❌ failed"
        lines = [
            f"# Validation of {self.agent}: {verdict}",
            "",
            f"- CXone agent: `{self.cxone_agent_id}`, Salesforce user: `{self.salesforce_user_id}`, rule: {self.rule_name}",
            f"- Before: CXone `{self.original_cxone}`, Salesforce `{self.original_salesforce}`",
            "",
            "| hop | action | expected | observed | result | seconds |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['hop']} | {r['action']} | {r['expected']} | {r['observed']} | {r['result']} | {r['seconds']} |"
            for r in self.rows()
        ]
        failure = self.failure
        if failure is not None and failure.diagnosis is not None:
            d = failure.diagnosis
            lines += ["", f"**{failure.hop.value} failed: {d.cause}.** {d.explanation}", "", f"**Fix:** {d.fix}"]
        notes = [r for r in self.hops if r.hop is Hop.RESTORE and r.note]
        lines += [f"\n_Restore: {r.note}_" for r in notes]
        return "\n".join(lines)


class ValidationError(Exception):
    """A validation that could not start (e.g. a bad parameter); the message says how to fix it."""


# --- reading both sides ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spell:
    """The agent's current Omni-Channel presence spell (`id` None: logged out of Omni)."""

    id: str | None
    status: str | None

    @property
    def label(self) -> str:
        return self.status or OFFLINE


async def current_spell(salesforce: SalesforceClient, user_id: str) -> Spell:
    records = await salesforce.query(
        "SELECT Id, ServicePresenceStatus.DeveloperName, StatusStartDate FROM UserServicePresence "
        f"WHERE UserId = {quote_string(user_id)} AND IsCurrentState = true ORDER BY StatusStartDate"
    )
    if not records:
        return Spell(None, None)
    latest = records[-1]
    status = (latest.get("ServicePresenceStatus") or {}).get("DeveloperName")
    return Spell(latest["Id"], status)


class CxoneWatch:
    """One agent's CXone state, kept current with delta polls (`updatedSince`) rather than full reads."""

    def __init__(self, cxone: CxoneClient, agent_id: int) -> None:
        self.cxone = cxone
        self.agent_id = agent_id
        self.state: CxoneState | None = None
        self._cursor: str | None = None

    async def poll(self) -> CxoneState:
        page = await self.cxone.agent_states(updated_since=self._cursor)
        self._cursor = page.last_poll_time or self._cursor
        for record in page.states:
            if int(record["agentId"]) == self.agent_id:
                self.state = CxoneState.from_api(record)
        if self.state is None:
            raise ValidationError(
                f"CXone did not list agent {self.agent_id} in /agents/states: is the agent active? "
                "Run refresh-users to update the links"
            )
        return self.state


@dataclass(frozen=True, slots=True)
class SyncActivity:
    """Who holds the sync lease now (None: no sync run is syncing), and who held it last."""

    holder: str | None
    last_holder: str | None = None

    @property
    def running(self) -> bool:
        return self.holder is not None


def sync_activity(store: Store, now: datetime | None = None) -> SyncActivity:
    """Whether a sync window holds the lease right now (every running window renews it each tick)."""
    lease = store.leases.get(LEASE_NAME)
    if lease is None:
        return SyncActivity(None)
    if lease.expires_at > (now or datetime.now(UTC)):
        return SyncActivity(lease.holder)
    return SyncActivity(None, lease.holder)


async def _sync_running(store: Store, grace_seconds: float, poll_seconds: float) -> SyncActivity:
    """Who syncs now; when nobody does, wait `grace_seconds` for a window that is taking over from the last."""
    activity = sync_activity(store)
    if activity.running:
        return activity

    async def taken() -> bool:
        nonlocal activity
        activity = await asyncio.to_thread(sync_activity, store)
        return activity.running

    await _wait_for(taken, grace_seconds, poll_seconds)
    return activity


def _sync_not_running(activity: SyncActivity) -> Diagnosis:
    if activity.last_holder is None:
        history = "no sync run ever held it in this store"
    else:
        history = f"the last run to hold it was {activity.last_holder}; it has ended"
    return Diagnosis(
        Cause.SYNC_NOT_RUNNING,
        f"no sync run holds the sync lease in the state store ({history}), so nothing carries changes across.",
        "start it: `presence-sync sync CONFIG`, or run/schedule the sync deployment (`presence-sync serve`); "
        "check that it uses the same sync.store_url as this config",
    )


async def _has_status_access(salesforce: SalesforceClient, user_id: str, status_id: str) -> bool:
    users = await salesforce.query(f"SELECT ProfileId FROM User WHERE Id = {quote_string(user_id)}")
    if not users or not users[0].get("ProfileId"):
        return False
    permission_sets = await salesforce.query(
        "SELECT Id FROM PermissionSet WHERE IsOwnedByProfile = true AND ProfileId = "
        + quote_string(users[0]["ProfileId"])
    )
    if not permission_sets:
        return False
    grants = await salesforce.query(
        "SELECT Id FROM SetupEntityAccess WHERE ParentId = "
        + quote_string(permission_sets[0]["Id"])
        + " AND SetupEntityId = "
        + quote_string(status_id)
    )
    return bool(grants)


Check = Callable[[], Awaitable[bool]]
GiveUp = Callable[[], Awaitable["Diagnosis | None"]]


@dataclass(frozen=True, slots=True)
class Waited:
    """How a wait ended: `seconds` until the check held, or a reason to stop early, or neither (timeout)."""

    seconds: float | None = None
    gave_up: Diagnosis | None = None


async def _wait_for(check: Check, timeout: float, poll: float, give_up: GiveUp | None = None) -> Waited:
    """Poll `check()` every `poll` seconds for at most `timeout`; stop early when `give_up()` names a cause."""
    started = time.monotonic()
    while True:
        if await check():
            return Waited(seconds=time.monotonic() - started)
        if give_up is not None and (reason := await give_up()) is not None:
            return Waited(gave_up=reason)
        if time.monotonic() - started >= timeout:
            return Waited()
        await asyncio.sleep(poll)


# --- choosing what to set --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A Salesforce status and a CXone target that the rule maps to each other, both ways."""

    status: str
    target: CxoneTarget


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


def _cxone_label(value: CxoneState | CxoneTarget | None) -> str:
    if value is None:
        return "unknown"
    key = value.key
    return key.replace("Unavailable:", "Unavailable: ") if key.startswith("Unavailable:") else key


# --- the validation --------------------------------------------------------------------------------


@dataclass
class _Agent:
    link: AgentLink
    rule: Rule
    team_codes: frozenset[str]
    status_ids: dict[str, str]


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
    activity = await _sync_running(ctx.store, min(HANDOVER_GRACE_SECONDS, timeout_seconds), poll_seconds)
    if not activity.running:
        return _fail_preflight(report, _sync_not_running(activity))

    cx_watch = CxoneWatch(ctx.cxone, link.cxone_agent_id)
    cx_before = await cx_watch.poll()
    spell_before = await current_spell(ctx.salesforce, link.sf_user_id)
    report.original_cxone, report.original_salesforce = _cxone_label(cx_before), spell_before.label
    if cx_before.is_contact:
        return _fail_preflight(report, Diagnosis(
            Cause.ON_CONTACT,
            f"the agent is in {_cxone_label(cx_before)}: a live contact wins over any Salesforce status, "
            "so the hops could not be told apart from the contact.",
            "run the validation when the agent is idle (Available or Unavailable), or pick another test agent",
        ))

    first = _first_trip(resolved, spell_before, cx_before, salesforce_status)
    second = _chosen_second_trip(resolved, cxone_state) if cxone_state is not None else None
    status_ids = resolved.status_ids
    for problem in (first, second, _missing_status(first, status_ids), _missing_status(second, status_ids)):
        if isinstance(problem, Diagnosis):
            return _fail_preflight(report, problem)
    assert isinstance(first, RoundTrip)

    wait = _Waiter(ctx, link, resolved.rule, status_ids, cx_watch, timeout_seconds, poll_seconds)
    report.hops.append(await wait.salesforce_to_cxone(first, status_ids[first.status], spell_before))
    if second is None:  # chosen from what both sides show now, so that the hop changes both
        second = _pick_second_trip(resolved, await current_spell(ctx.salesforce, link.sf_user_id), await cx_watch.poll(), cx_before)
        second = _missing_status(second, status_ids) or second
    if isinstance(second, Diagnosis):
        report.hops.append(HopResult(Hop.CXONE_TO_SALESFORCE, "not run", "", "", False, diagnosis=second))
    else:
        report.hops.append(await wait.cxone_to_salesforce(second))
    report.hops.append(await wait.restore(cx_before, spell_before, report.passed))
    return report


async def _resolve(ctx: Context, agent: str, report: ValidationReport) -> _Agent | None:
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
            "add the team to rule.teams (or the agent to rule.users) in the config and run onboarding",
        ))
        return None
    report.rule_name = rule.name
    return _Agent(link, rule, engine_link.team_codes, setup.targets.status_ids)


def _fail_preflight(report: ValidationReport, diagnosis: Diagnosis) -> ValidationReport:
    report.hops.append(HopResult(Hop.PREFLIGHT, "checked the agent and the sync", "ready to validate", "not ready",
                                 passed=False, diagnosis=diagnosis))
    for hop in (Hop.SALESFORCE_TO_CXONE, Hop.CXONE_TO_SALESFORCE):
        report.hops.append(HopResult(hop, "not run", "", "", passed=False, note=f"not run: {diagnosis.cause}"))
    return report


def _first_trip(agent: _Agent, spell: Spell, cx_state: CxoneState, salesforce_status: str | None) -> RoundTrip | Diagnosis:
    """The Salesforce status to set first (given, or a round trip that changes both sides) and the CXone state it maps to."""
    rule, codes = agent.rule, agent.team_codes
    if salesforce_status is not None:
        resolution = rule.subscribe(salesforce_status, codes, previous=None)
        if resolution.target is None:
            return _unmapped(f"Salesforce status {salesforce_status}", resolution.reason)
        return RoundTrip(salesforce_status, resolution.target)
    trip = _pick(round_trips(rule, codes), spell.status, cx_state)
    return trip or _unmapped("this agent", f"rule {rule.name!r} has no row that maps both ways for their team")


def _chosen_second_trip(agent: _Agent, cxone_state: str) -> RoundTrip | Diagnosis:
    """The CXone state given for the second hop, and the Salesforce status the rule maps it to."""
    target = _parse_target(cxone_state)
    if isinstance(target, Diagnosis):
        return target
    published = agent.rule.publish(CxoneState(target.state, target.code))
    if published.target is None:
        return _unmapped(f"CXone state {cxone_state}", published.reason)
    return RoundTrip(published.target, target)


def _pick_second_trip(agent: _Agent, spell: Spell, cx_state: CxoneState, cx_before: CxoneState) -> RoundTrip | Diagnosis:
    """A round trip that changes both sides from what they show now, preferably back to the agent's own state."""
    trip = _pick(round_trips(agent.rule, agent.team_codes), spell.status, cx_state, prefer=cx_before)
    return trip or _unmapped("this agent", f"rule {agent.rule.name!r} has only one row that maps both ways for their team")


def _missing_status(trip: RoundTrip | Diagnosis | None, status_ids: dict[str, str]) -> Diagnosis | None:
    if not isinstance(trip, RoundTrip) or trip.status in status_ids:
        return None
    return Diagnosis(
        Cause.UNMAPPED,
        f"the presence status {trip.status} does not exist in Salesforce.",
        "run onboarding (`presence-sync onboard CONFIG`) so that it creates the rule's statuses",
    )


def _parse_target(text: str) -> CxoneTarget | Diagnosis:
    from presence_sync.engine import parse_subscriber_target

    try:
        target = parse_subscriber_target(text)
    except ValueError as error:
        return Diagnosis(Cause.UNMAPPED, str(error), "give cxone_state as Available or 'Unavailable: <code>'")
    if not isinstance(target, CxoneTarget):
        return Diagnosis(Cause.UNMAPPED, "Previous State can't be set directly.", "give Available or 'Unavailable: <code>'")
    return target


def _unmapped(what: str, reason: str) -> Diagnosis:
    return Diagnosis(
        Cause.UNMAPPED,
        f"{what} can't be validated: {reason}.",
        "pick a status/state the rule maps both ways (a publisher row and a subscriber row for the same pair), "
        "or add the rows to the rule and run onboarding",
    )


async def _logged_out_diagnosis(cxone: CxoneClient, agent_id: int) -> Diagnosis:
    try:
        await cxone.join_session(agent_id)
    except AgentLoggedOut:
        detail = "joining their session answers 409 (no session)"
    except ConnectorError as error:
        detail = f"joining their session failed: {error}"
    else:
        detail = "CXone shows them LoggedOut"
    return Diagnosis(
        Cause.CXONE_LOGGED_OUT,
        f"the agent is logged out of CXone: {detail}, so no state can be set for them.",
        "have the agent log in to the CXone agent app (or Agent Embedded in Salesforce), then validate again",
    )


@dataclass
class _Waiter:
    """Runs the hops for one agent and explains a hop that fails."""

    ctx: Context
    link: AgentLink
    rule: Rule
    status_ids: dict[str, str]
    cx_watch: CxoneWatch
    timeout: float
    poll: float

    async def salesforce_to_cxone(self, trip: RoundTrip, status_id: str, spell_before: Spell) -> HopResult:
        """Publish a presence command (as the applier would receive it) and wait for CXone to show the mapped state."""
        sf, link = self.ctx.salesforce, self.link
        action = f"presence applier set Salesforce to {trip.status}"
        expected = f"CXone {_cxone_label(trip.target)}"
        started, started_at = time.monotonic(), datetime.now(UTC)
        rejection = await self._publish(status_id)
        if rejection is not None:
            return HopResult(Hop.SALESFORCE_TO_CXONE, action, expected, "command not published", False, diagnosis=rejection)
        applied_after: list[float] = []

        async def arrived() -> bool:
            if not applied_after:
                spell = await current_spell(sf, link.sf_user_id)
                if spell.status == trip.status and spell.id != spell_before.id:
                    applied_after.append(time.monotonic() - started)
            return trip.target.matches(await self.cx_watch.poll())

        async def hopeless() -> Diagnosis | None:
            # Once Salesforce shows the status, a logged-out agent or a stopped sync means CXone never will.
            if not applied_after:
                return None
            return await self._carrier_missing()

        waited = await _wait_for(arrived, self.timeout, self.poll, hopeless)
        observed = f"CXone {_cxone_label(self.cx_watch.state)}"
        note = f"applied in Salesforce after {applied_after[0]:.2f} s" if applied_after else "never applied in Salesforce"
        if waited.seconds is not None:
            await self._sync_saw_its_echo(Direction.SALESFORCE_TO_CXONE, started_at)
            return HopResult(Hop.SALESFORCE_TO_CXONE, action, expected, observed, True, waited.seconds, note)
        if waited.gave_up is not None:
            diagnosis = waited.gave_up
        elif not applied_after:
            diagnosis = await self._not_applied(trip.status, "the validation's presence command")
        else:
            diagnosis = self._timed_out(f"Salesforce showed {trip.status}", expected)
        return HopResult(Hop.SALESFORCE_TO_CXONE, action, expected, observed, False, note=note, diagnosis=diagnosis)

    async def cxone_to_salesforce(self, trip: RoundTrip) -> HopResult:
        """Set the CXone state through the Agent API and wait for Salesforce to show the mapped status."""
        sf, link = self.ctx.salesforce, self.link
        action = f"Agent API set CXone to {_cxone_label(trip.target)}"
        expected = f"Salesforce {trip.status}"
        spell_before = await current_spell(sf, link.sf_user_id)
        set_at = datetime.now(UTC)
        refusal = await self._set_cxone(trip.target)
        if refusal is not None:
            return HopResult(Hop.CXONE_TO_SALESFORCE, action, expected, "CXone not set", False, diagnosis=refusal)
        latest = [spell_before]

        async def arrived() -> bool:
            latest[0] = await current_spell(sf, link.sf_user_id)
            return latest[0].status == trip.status

        waited = await _wait_for(arrived, self.timeout, self.poll, self._carrier_missing)
        observed = f"Salesforce {latest[0].label}"
        if waited.seconds is not None:
            await self._sync_saw_its_echo(Direction.CXONE_TO_SALESFORCE, set_at)
            return HopResult(Hop.CXONE_TO_SALESFORCE, action, expected, observed, True, waited.seconds)
        if waited.gave_up is not None:
            diagnosis = waited.gave_up
        elif latest[0].id == spell_before.id and (command := self._command_sent_since(set_at)):
            diagnosis = await self._not_applied(trip.status, command)
        else:
            diagnosis = self._timed_out(f"CXone showed {_cxone_label(trip.target)}", expected)
        return HopResult(Hop.CXONE_TO_SALESFORCE, action, expected, observed, False, diagnosis=diagnosis)

    async def restore(self, cx_before: CxoneState, spell_before: Spell, hops_passed: bool) -> HopResult:
        """Put both sides back as they were: CXone first (and let the sync carry it), then Salesforce.

        After a failed hop the restore does not wait: whatever broke the hop usually breaks it too.
        """
        sf, link = self.ctx.salesforce, self.link
        wait = self.timeout if hops_passed else 0.0
        notes: list[str] = []
        target = cx_before.as_target()
        if target is not None and not target.matches(await self.cx_watch.poll()):
            refusal = await self._set_cxone(target)
            carried = self.rule.publish(cx_before).target
            if refusal is not None:
                notes.append(f"CXone not restored: {refusal.cause}")
            elif carried is not None:
                # Setting Salesforce before the sync carried this over would have it undone.
                async def carried_over() -> bool:
                    return (await current_spell(sf, link.sf_user_id)).status == carried

                await _wait_for(carried_over, wait, self.poll)
        if (await current_spell(sf, link.sf_user_id)).status != spell_before.status:
            status_id = self.status_ids.get(spell_before.status) if spell_before.status else OFFLINE_STATUS_ID
            rejection = await self._publish(status_id or OFFLINE_STATUS_ID)

            async def restored() -> bool:
                return (await current_spell(sf, link.sf_user_id)).status == spell_before.status

            if rejection is not None:
                notes.append(f"Salesforce not restored: {rejection.cause}")
            elif (await _wait_for(restored, wait, self.poll)).seconds is None:
                notes.append(f"Salesforce not back to {spell_before.label}")
        observed = f"CXone {_cxone_label(await self.cx_watch.poll())}, Salesforce {(await current_spell(sf, link.sf_user_id)).label}"
        expected = f"CXone {_cxone_label(cx_before)}, Salesforce {spell_before.label}"
        return HopResult(Hop.RESTORE, "set both sides back", expected, observed, passed=not notes, note="; ".join(notes))

    async def _sync_saw_its_echo(self, direction: Direction, since: datetime) -> None:
        """Wait until the sync has seen its own write of this hop arrive (its echo), as a person would pause.

        Changing the agent again before that would hide the echo from the sync's next poll, and the
        next hop would then race the sync instead of testing it.
        """

        def echoed() -> bool:
            rows = self.ctx.store.reports.audit_for(self.link.cxone_agent_id, since=since, limit=20)
            return any(r.direction == direction.value and r.outcome == Outcome.ECHO.value for r in rows)

        async def seen() -> bool:
            return await asyncio.to_thread(echoed)

        await _wait_for(seen, self.timeout, self.poll)

    async def _publish(self, status_id: str) -> Diagnosis | None:
        """Publish one presence command for the agent; the diagnosis when Salesforce refuses it."""
        command = PresenceCommand(self.link.sf_user_id, status_id, f"validate-{uuid.uuid4().hex}", COMMAND_REASON)
        try:
            [result] = await self.ctx.salesforce.publish_presence_commands([command])
        except ConnectorError as error:
            said = str(error)
        else:
            if result.success:
                return None
            said = "; ".join(f"{e.status_code}: {e.message}" for e in result.errors)
        return Diagnosis(
            Cause.COMMAND_REJECTED,
            f"Salesforce refused the Presence_Sync_Command__e event ({said}).",
            "deploy the presence applier (salesforce/: `sf project deploy start`) and assign the Presence Sync "
            "Integration permission set to the user presence-sync logs in as",
        )

    async def _set_cxone(self, target: CxoneTarget) -> Diagnosis | None:
        """Set the agent's CXone state through the Agent API; the diagnosis when CXone refuses it."""
        try:
            await self.ctx.cxone.set_state(self.link.cxone_agent_id, target.state.value, target.code)  # type: ignore[arg-type]
        except AgentLoggedOut:
            return await _logged_out_diagnosis(self.ctx.cxone, self.link.cxone_agent_id)
        except (InvalidReason, NotPermitted) as error:
            return Diagnosis(
                Cause.STATE_REJECTED,
                str(error),
                "give the agent's team that unavailable code, or the access key's user the right to act for the agent",
            )
        return None

    async def _carrier_missing(self) -> Diagnosis | None:
        """Why nothing can carry a change across right now: the sync stopped, or the agent left CXone."""
        activity = sync_activity(self.ctx.store)
        if not activity.running:
            return _sync_not_running(activity)
        if (await self.cx_watch.poll()).is_logged_out:
            return await _logged_out_diagnosis(self.ctx.cxone, self.link.cxone_agent_id)
        return None

    async def _not_applied(self, status: str, what: str) -> Diagnosis:
        """A command reached Salesforce but no new spell followed: no access to the status, or the console is closed."""
        status_id = self.status_ids.get(status)
        if status_id is not None and not await _has_status_access(self.ctx.salesforce, self.link.sf_user_id, status_id):
            return Diagnosis(
                Cause.NO_PROFILE_ACCESS,
                f"{self.link.sf_username}'s profile has no access to the presence status {status}, so the applier's "
                "setServicePresenceStatus call fails and no new presence spell appears.",
                f"give the profile access to {status} (Setup → Profiles → Enabled Service Presence Status Access, "
                "or list it under profiles in the config and run onboarding)",
            )
        return Diagnosis(
            Cause.CONSOLE_CLOSED,
            f"{what} was published, but {self.link.sf_username}'s presence applier never applied it: no new "
            f"presence spell for {status} within {self.timeout:g} s. Their Salesforce console (with the Presence "
            "Sync Applier in its utility bar) is closed, or the applier is not installed in their console app.",
            "have the agent open the Salesforce service console with the Presence Sync Applier utility item "
            "(salesforce/README.md), then validate again",
        )

    def _timed_out(self, what: str, expected: str) -> Diagnosis:
        last = self._last_decision()
        decided = f"; the sync's last decision for this agent: {last}" if last else "; the sync recorded no decision for this agent"
        return Diagnosis(
            Cause.TIMEOUT,
            f"{what}, but the other side did not show {expected} within {self.timeout:g} s{decided}.",
            f"see `presence-sync audit CONFIG --agent {self.link.cxone_agent_id}` and the sync run's logs; "
            "raise timeout_seconds if the sync is slowed down on purpose (API budget)",
        )

    def _command_sent_since(self, since: datetime) -> str:
        """The sync's presence command for this agent since `since`, as the audit shows it ('' if none)."""
        rows = self.ctx.store.reports.audit_for(self.link.cxone_agent_id, since=since, limit=20)
        writes = [r for r in rows if r.direction == "cxone->salesforce" and r.outcome == "write"]
        return f"the sync's presence command ({writes[0].to_value})" if writes else ""

    def _last_decision(self) -> str:
        rows: list[Audit] = self.ctx.store.reports.audit_for(self.link.cxone_agent_id, limit=1)
        return f"{rows[0].outcome} {rows[0].direction} ({rows[0].reason})" if rows else ""


# --- the flow ------------------------------------------------------------------------------------


def artifact_key(agent: str) -> str:
    """Prefect artifact keys are lowercase letters, digits and dashes."""
    return "validation-" + (re.sub(r"[^a-z0-9]+", "-", agent.casefold()).strip("-") or "agent")


@flow(name="validate", flow_run_name=validate_run_name, description="Prove, for one test agent, that a change in each system arrives in the other.")
async def validate(
    config_path: str,
    agent: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    salesforce_status: str | None = None,
    cxone_state: str | None = None,
) -> State[Any]:
    """Validate bidirectional presence sync for one test agent (the seed's last section).

    Args:
        config_path: The contact center's config file (YAML), as the sync deployment uses it.
        agent: The test agent: CXone agent id, or email/username.
        timeout_seconds: How long each hop may take before it fails.
        salesforce_status: Optional DeveloperName to set in Salesforce (default: a rule row that maps both ways).
        cxone_state: Optional CXone state to set, e.g. "Unavailable: Lunch" (default: chosen from the rule).
    """
    async with open_context(config_path) as ctx:
        report = await validate_agent(
            ctx, agent, timeout_seconds=timeout_seconds, salesforce_status=salesforce_status, cxone_state=cxone_state
        )
    key = artifact_key(agent)
    await acreate_table_artifact(key=key, table=report.rows(), description=report.headline)
    await acreate_markdown_artifact(key=f"{key}-summary", markdown=report.markdown(), description=report.headline)
    if report.passed:
        return Completed(message=report.headline, data=report)
    return Failed(message=report.headline, data=report)
