"""Reading Salesforce's Omni-Channel setup (apis.md S3) and saving setup records, shared by the steps.

    statuses = await read_statuses(ctx.salesforce)       # {"on_break": PresenceStatus(...)}
    saved = await create_records(ctx.salesforce, "SetupEntityAccess", [{"ParentId": ..., "SetupEntityId": ...}])
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from presence_sync.connectors import ConnectorError, SalesforceClient, SalesforceIdentity, SaveResult
from presence_sync.connectors.soql import quote, quote_in


@dataclass(frozen=True, slots=True)
class PresenceStatus:
    id: str
    developer_name: str
    label: str


@dataclass(frozen=True, slots=True)
class ServiceChannel:
    id: str
    developer_name: str


@dataclass(frozen=True, slots=True)
class ChannelLink:
    """A ServiceChannelStatus row: the status takes work from the channel (which makes it Online)."""

    id: str
    status_id: str
    channel_id: str


def name_key(name: str) -> str:
    """DeveloperNames are unique regardless of case in Salesforce."""
    return name.casefold()


async def read_statuses(sf: SalesforceClient) -> dict[str, PresenceStatus]:
    """Every presence status, by `name_key(DeveloperName)`."""
    records = await sf.query("SELECT Id, DeveloperName, MasterLabel FROM ServicePresenceStatus")
    statuses = (PresenceStatus(r["Id"], r["DeveloperName"], r["MasterLabel"]) for r in records)
    return {name_key(status.developer_name): status for status in statuses}


async def read_channels(sf: SalesforceClient) -> dict[str, ServiceChannel]:
    """Every service channel, by `name_key(DeveloperName)`."""
    records = await sf.query("SELECT Id, DeveloperName FROM ServiceChannel")
    return {name_key(r["DeveloperName"]): ServiceChannel(r["Id"], r["DeveloperName"]) for r in records}


async def read_channel_links(sf: SalesforceClient, status_ids: Sequence[str]) -> list[ChannelLink]:
    """The channel links of these statuses."""
    if not status_ids:
        return []
    records = await sf.query(
        "SELECT Id, ServicePresenceStatusId, ServiceChannelId FROM ServiceChannelStatus "
        f"WHERE ServicePresenceStatusId IN {quote_in(status_ids)}"
    )
    return [ChannelLink(r["Id"], r["ServicePresenceStatusId"], r["ServiceChannelId"]) for r in records]


async def create_records(sf: SalesforceClient, sobject: str, records: Sequence[Mapping[str, Any]]) -> list[SaveResult]:
    """Create records of one setup object in as few calls as Salesforce allows; one result per record."""
    return await sf.create_many({"attributes": {"type": sobject}, **record} for record in records)


def save_error(result: SaveResult) -> str:
    """Why Salesforce refused one record, as it said it."""
    if not result.errors:
        return "Salesforce refused the record without saying why"
    first = result.errors[0]
    return f"Salesforce refused it ({first.status_code}: {first.message})"


async def refusal(write: Awaitable[object]) -> str | None:
    """Run one write; None when it succeeded, else why it was refused. Transient errors propagate,
    so that the step's task retries (re-planning first, which makes the retry safe)."""
    try:
        await write
    except ConnectorError as error:
        if error.transient:
            raise
        return str(error)
    return None


@dataclass(frozen=True, slots=True)
class SalesforceLogin:
    """Who the configured flow logs in as, proven by a data API query with the new token."""

    org_id: str
    user_id: str
    username: str


async def salesforce_identity(sf: SalesforceClient) -> SalesforceIdentity:
    """Who this run is logged in as: the token it already holds, else a login with the configured flow now.

    The client lives for one onboarding run and only ever logs in with the configured flow, so a token
    it holds was issued in this run by that flow: it proves the consumer key and the flow as well as a
    new login would, without one more token request per check (the emulators count each as a write).
    """
    try:
        return sf.identity
    except RuntimeError:  # not logged in yet in this run
        return await sf.authenticate()


async def verify_salesforce_login(sf: SalesforceClient) -> SalesforceLogin:
    """Log in with the configured flow (or reuse this run's login) and read our own User record with the token."""
    identity = await salesforce_identity(sf)
    records = await sf.query(f"SELECT Id, Username FROM User WHERE Id = {quote(identity.user_id)}")
    username = records[0]["Username"] if records else identity.user_id
    return SalesforceLogin(identity.org_id, identity.user_id, username)
