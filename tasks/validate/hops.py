"""The hops of a validation, run against both systems: set one side, watch the other, explain a failure.

    runner = HopRunner(ctx, link, rule, status_ids, CxoneWatch(ctx.cxone, agent_id), timeout=20, poll=0.25)
    result = await runner.salesforce_to_cxone(trip, status_ids[trip.status], spell_before)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from presence_sync.connectors import (
    AgentLoggedOut,
    ConnectorError,
    CxoneClient,
    InvalidReason,
    NotPermitted,
    PresenceCommand,
    PresenceSpell,
    SalesforceClient,
    current_spell,
)
from presence_sync.connectors.salesforce import OFFLINE_STATUS_ID
from presence_sync.connectors.soql import quote_string
from presence_sync.engine import CxoneState, CxoneTarget, Direction, Outcome, PreviousState, Rule
from presence_sync.engine.audit import OFFLINE
from presence_sync.models.store import AgentLink, Audit
from presence_sync.tasks.context import Context
from presence_sync.connectors.console.broker import ConsoleCommand
from presence_sync.tasks.sync.console_channel import LOST, REFUSED, submit_command
from presence_sync.tasks.sync.status import sync_activity
from presence_sync.tasks.validate.report import Cause, Diagnosis, Hop, HopResult, ValidationError
from presence_sync.tasks.validate.trips import RoundTrip
from presence_sync.tasks.validate.waiting import sync_not_running, wait_for

COMMAND_REASON = "presence-sync validation"


def cxone_label(value: CxoneState | CxoneTarget | PreviousState | None) -> str:
    """A CXone state as the config writes it ("Unavailable: Break"), as validation's report shows it."""
    return "unknown" if value is None else str(value.rule_state)


def _status(spell: PresenceSpell | None) -> str | None:
    return None if spell is None else spell.status


def _id(spell: PresenceSpell | None) -> str | None:
    return None if spell is None else spell.id


def _label(spell: PresenceSpell | None) -> str:
    return OFFLINE if spell is None else spell.label


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
            if record.agent_id == self.agent_id:
                self.state = record.state
        if self.state is None:
            raise ValidationError(
                f"CXone did not list agent {self.agent_id} in /agents/states: is the agent active? "
                "Run refresh-users to update the links"
            )
        return self.state


async def has_status_access(salesforce: SalesforceClient, user_id: str, status_id: str) -> bool:
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


async def logged_out_diagnosis(cxone: CxoneClient, agent_id: int) -> Diagnosis:
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
class HopRunner:
    """Runs the hops for one agent and explains a hop that fails."""

    ctx: Context
    link: AgentLink
    rule: Rule
    status_ids: dict[str, str]
    cx_watch: CxoneWatch
    timeout: float
    poll: float
    command_reason: str = COMMAND_REASON  # the presence command's Reason__c: who set the agent, and why

    async def salesforce_to_cxone(self, trip: RoundTrip, status_id: str, spell_before: PresenceSpell | None) -> HopResult:
        """Publish a presence command (as the applier would receive it) and wait for CXone to show the mapped state."""
        sf, link = self.ctx.salesforce, self.link
        action = f"presence applier set Salesforce to {trip.status}"
        expected = f"CXone {cxone_label(trip.target)}"
        started, started_at = time.monotonic(), datetime.now(UTC)
        rejection = await self._publish(status_id)
        if rejection is not None:
            return HopResult(Hop.SALESFORCE_TO_CXONE, action, expected, "command not published", False, diagnosis=rejection)
        applied_after: list[float] = []

        async def arrived() -> bool:
            if not applied_after:
                spell = await current_spell(sf, link.sf_user_id)
                if _status(spell) == trip.status and _id(spell) != _id(spell_before):
                    applied_after.append(time.monotonic() - started)
            return trip.target.matches(await self.cx_watch.poll())

        async def hopeless() -> Diagnosis | None:
            # Once Salesforce shows the status, a logged-out agent or a stopped sync means CXone never will.
            if not applied_after:
                return None
            return await self._carrier_missing()

        waited = await wait_for(arrived, self.timeout, self.poll, hopeless)
        observed = f"CXone {cxone_label(self.cx_watch.state)}"
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
        action = f"Agent API set CXone to {cxone_label(trip.target)}"
        expected = f"Salesforce {trip.status}"
        spell_before = await current_spell(sf, link.sf_user_id)
        set_at = datetime.now(UTC)
        refusal = await self._set_cxone(trip.target)
        if refusal is not None:
            return HopResult(Hop.CXONE_TO_SALESFORCE, action, expected, "CXone not set", False, diagnosis=refusal)
        latest = [spell_before]

        async def arrived() -> bool:
            latest[0] = await current_spell(sf, link.sf_user_id)
            return _status(latest[0]) == trip.status

        async def hopeless() -> Diagnosis | None:
            return self._console_outcome_since(set_at) or await self._carrier_missing()

        waited = await wait_for(arrived, self.timeout, self.poll, hopeless)
        observed = f"Salesforce {_label(latest[0])}"
        if waited.seconds is not None:
            await self._sync_saw_its_echo(Direction.CXONE_TO_SALESFORCE, set_at)
            return HopResult(Hop.CXONE_TO_SALESFORCE, action, expected, observed, True, waited.seconds)
        if waited.gave_up is not None:
            diagnosis = waited.gave_up
        elif _id(latest[0]) == _id(spell_before) and (command := self._command_sent_since(set_at)):
            diagnosis = await self._not_applied(trip.status, command)
        else:
            diagnosis = self._timed_out(f"CXone showed {cxone_label(trip.target)}", expected)
        return HopResult(Hop.CXONE_TO_SALESFORCE, action, expected, observed, False, diagnosis=diagnosis)

    async def restore(self, cx_before: CxoneState, spell_before: PresenceSpell | None, hops_passed: bool) -> HopResult:
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
                    return _status(await current_spell(sf, link.sf_user_id)) == carried

                await wait_for(carried_over, wait, self.poll)
        status_before = _status(spell_before)
        if _status(await current_spell(sf, link.sf_user_id)) != status_before:
            status_id = self.status_ids.get(status_before) if status_before else OFFLINE_STATUS_ID
            rejection = await self._publish(status_id or OFFLINE_STATUS_ID)

            async def restored() -> bool:
                return _status(await current_spell(sf, link.sf_user_id)) == status_before

            if rejection is not None:
                notes.append(f"Salesforce not restored: {rejection.cause}")
            elif (await wait_for(restored, wait, self.poll)).seconds is None:
                notes.append(f"Salesforce not back to {_label(spell_before)}")
        observed = f"CXone {cxone_label(await self.cx_watch.poll())}, Salesforce {_label(await current_spell(sf, link.sf_user_id))}"
        expected = f"CXone {cxone_label(cx_before)}, Salesforce {_label(spell_before)}"
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

        await wait_for(seen, self.timeout, self.poll)

    async def _publish(self, status_id: str) -> Diagnosis | None:
        """Publish one presence command for the agent; the diagnosis when Salesforce refuses it.

        With the console gateway the command goes through the broker to the agent's console, as the
        sync's do (a console on the gateway transport no longer listens to platform events).
        """
        if self.ctx.config.console.gateway:
            return await self._submit_to_console(status_id)
        command = PresenceCommand(self.link.sf_user_id, status_id, f"validate-{uuid.uuid4().hex}", self.command_reason)
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

    async def _submit_to_console(self, status_id: str) -> Diagnosis | None:
        command_id = f"validate-{uuid.uuid4().hex}"
        user = self.link.sf_user_id
        command = (ConsoleCommand.logout(user, command_id=command_id) if status_id == OFFLINE_STATUS_ID
                   else ConsoleCommand.set_status(user, status_id, command_id=command_id))
        try:
            await submit_command(self.ctx.config.console, command)
        except Exception as error:  # the broker is a database or this process's gateway: any failure stops the hop
            return Diagnosis(
                Cause.COMMAND_REJECTED,
                f"the console broker did not take the validation's command ({type(error).__name__}: {error}).",
                "check console.broker_url (the gateways' PostgreSQL) and that `presence-sync gateway` runs",
            )
        return None

    async def _set_cxone(self, target: CxoneTarget) -> Diagnosis | None:
        """Set the agent's CXone state through the Agent API; the diagnosis when CXone refuses it."""
        try:
            await self.ctx.cxone.set_state(self.link.cxone_agent_id, target.state.value, target.code)  # type: ignore[arg-type]
        except AgentLoggedOut:
            return await logged_out_diagnosis(self.ctx.cxone, self.link.cxone_agent_id)
        except (InvalidReason, NotPermitted) as error:
            return Diagnosis(
                Cause.STATE_REJECTED,
                str(error),
                "give the agent's team that unavailable code, or the access key's user the right to act for the agent",
            )
        return None

    async def _carrier_missing(self) -> Diagnosis | None:
        """Why nothing can carry a change across right now: the sync stopped, or the agent left CXone."""
        activity = sync_activity(self.ctx.store, agent_id=self.link.cxone_agent_id)
        if not activity.running:  # windows hand the lease over without a gap: a free lease means stopped
            return sync_not_running(activity)
        if (await self.cx_watch.poll()).is_logged_out:
            return await logged_out_diagnosis(self.ctx.cxone, self.link.cxone_agent_id)
        return None

    async def _not_applied(self, status: str, what: str) -> Diagnosis:
        """A command reached Salesforce but no new spell followed: no access to the status, or the console is closed."""
        status_id = self.status_ids.get(status)
        if status_id is not None and not await has_status_access(self.ctx.salesforce, self.link.sf_user_id, status_id):
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

    def _console_outcome_since(self, since: datetime) -> Diagnosis | None:
        """What the console gateway said of the sync's command for this agent: lost or refused (None: neither)."""
        rows = self.ctx.store.reports.audit_for(self.link.cxone_agent_id, since=since, limit=20)
        for row in rows:
            if row.direction != "cxone->salesforce":
                continue
            if REFUSED in row.reason:
                error = row.reason.split(REFUSED, 1)[1]
                return Diagnosis(
                    Cause.CONSOLE_REFUSED,
                    f"{self.link.sf_username}'s console received the sync's command ({row.to_value}) and the "
                    f"Omni-Channel toolkit refused it: {error}",
                    "give the agent's profile access to that status (Setup → Profiles → Enabled Service Presence "
                    "Status Access, or list it under profiles in the config and run onboarding)",
                )
            if LOST in row.reason:
                why = row.reason.split(LOST, 1)[1].split(");", 1)[0]
                return Diagnosis(
                    Cause.CONSOLE_CLOSED,
                    f"the sync's command for {self.link.sf_username} ({row.to_value}) was lost: {why}.",
                    "have the agent open the Salesforce service console with the Presence Sync Applier utility item "
                    "(it connects to the console gateway; salesforce/README.md), then validate again",
                )
        return None

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
