"""Step 1, presence statuses: create the configured statuses that are missing, update drifted ones.

Online means "has ServiceChannelStatus rows for its channels" (there is no Online/Busy field). Statuses
the config does not list are never touched.

    plan = await plan_presence_statuses(ctx)
    result = await apply_presence_statuses(ctx, plan)   # result.summary: "9 statuses: 9 created"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from presence_sync.models.config import PresenceStatusConfig, StatusOption
from presence_sync.tasks.context import Context
from presence_sync.tasks.onboarding.model import NOTHING_UPCOMING, Action, PlanItem, StepName, StepPlan, StepResult, Upcoming
from presence_sync.tasks.onboarding.salesforce_setup import (
    ChannelLink,
    PresenceStatus,
    create_records,
    name_key,
    read_channel_links,
    read_channels,
    read_statuses,
    refusal,
    save_error,
)


@dataclass(frozen=True, slots=True)
class StatusWrite:
    """The writes for one status: create it (`status_id` None) or patch `fields`, and fix its channels."""

    developer_name: str
    status_id: str | None
    fields: Mapping[str, str]
    add_channel_ids: tuple[str, ...] = ()
    remove_link_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class StatusesPlan(StepPlan):
    writes: tuple[StatusWrite, ...] = ()


async def plan_presence_statuses(ctx: Context, upcoming: Upcoming = NOTHING_UPCOMING) -> StatusesPlan:
    """Compare the configured statuses with Salesforce's (reads only)."""
    existing = await read_statuses(ctx.salesforce)
    channels = await read_channels(ctx.salesforce)
    configured = [existing.get(name_key(status.developer_name)) for status in ctx.config.statuses]
    links = await read_channel_links(ctx.salesforce, [found.id for found in configured if found is not None])
    channel_names = {channel.id: channel.developer_name for channel in channels.values()}
    items: list[PlanItem] = []
    writes: list[StatusWrite] = []
    for index, (status, found) in enumerate(zip(ctx.config.statuses, configured, strict=True)):
        subject = f"status {status.developer_name}"
        unknown = [name for name in status.channels if name_key(name) not in channels]
        if unknown:
            reason = (
                f"Salesforce has no service channel {', '.join(unknown)} -> create it (Setup > Service Channels) "
                f"or change statuses[{index}].channels; existing: {', '.join(sorted(channel_names.values()))}"
            )
            items.append(PlanItem(subject, Action.FAILED, reason, status.developer_name))
            continue
        wanted = {channels[name_key(name)].id for name in status.channels}
        current = {link.channel_id: link for link in links if found is not None and link.status_id == found.id}
        write = _status_write(status, found, wanted, current)
        if write is None:
            items.append(PlanItem(subject, Action.UNCHANGED, "matches the config", status.developer_name))
            continue
        action = Action.CREATE if found is None else Action.UPDATE
        reason = _describe(status, found, write, current, channel_names)
        items.append(PlanItem(subject, action, reason, status.developer_name))
        writes.append(write)
    return StatusesPlan(
        step=StepName.PRESENCE_STATUSES, items=tuple(items), writes=tuple(writes), noun=("status", "statuses")
    )


async def apply_presence_statuses(ctx: Context, plan: StatusesPlan) -> StepResult:
    """Make exactly the planned writes: statuses in one collection call, their channel links in another."""
    sf = ctx.salesforce
    items = {item.key: item for item in plan.items}
    status_ids: dict[str, str] = {}

    def fail(write: StatusWrite, reason: str) -> None:
        items[write.developer_name] = items[write.developer_name].failed(reason)

    creates = [write for write in plan.writes if write.status_id is None]
    saved_statuses = await create_records(sf, "ServicePresenceStatus", [write.fields for write in creates])
    for write, saved in zip(creates, saved_statuses, strict=True):
        if saved.success and saved.id:
            status_ids[write.developer_name] = saved.id
        else:
            fail(write, save_error(saved))
    for write in plan.writes:
        if write.status_id is None:
            continue
        status_ids[write.developer_name] = write.status_id
        if not write.fields:
            continue
        if reason := await refusal(sf.update("ServicePresenceStatus", write.status_id, write.fields)):
            fail(write, reason)

    new_links = [
        (write, {"ServicePresenceStatusId": status_ids[write.developer_name], "ServiceChannelId": channel_id})
        for write in plan.writes
        if write.developer_name in status_ids
        for channel_id in write.add_channel_ids
    ]
    saved_links = await create_records(sf, "ServiceChannelStatus", [record for _, record in new_links])
    for (write, _), saved in zip(new_links, saved_links, strict=True):
        if not saved.success:
            fail(write, f"its channel link was not saved: {save_error(saved)}")
    for write in plan.writes:
        for link_id in write.remove_link_ids:
            if reason := await refusal(sf.delete("ServiceChannelStatus", link_id)):
                fail(write, f"a channel link could not be removed: {reason}")
    return plan.result(items.values())


def _status_write(
    status: PresenceStatusConfig,
    found: PresenceStatus | None,
    wanted: set[str],
    current: Mapping[str, ChannelLink],
) -> StatusWrite | None:
    """The writes that make Salesforce match the config, or None when it already does."""
    if found is None:
        fields = {"DeveloperName": status.developer_name, "MasterLabel": status.label}
        return StatusWrite(status.developer_name, None, fields, tuple(sorted(wanted)))
    fields = {}
    if found.developer_name != status.developer_name:
        fields["DeveloperName"] = status.developer_name
    if found.label != status.label:
        fields["MasterLabel"] = status.label
    add = tuple(sorted(wanted - current.keys()))
    remove = tuple(sorted(link.id for channel_id, link in current.items() if channel_id not in wanted))
    if not (fields or add or remove):
        return None
    return StatusWrite(status.developer_name, found.id, fields, add, remove)


def _describe(
    status: PresenceStatusConfig,
    found: PresenceStatus | None,
    write: StatusWrite,
    current: Mapping[str, ChannelLink],
    channel_names: Mapping[str, str],
) -> str:
    if found is None:
        if status.option is StatusOption.BUSY:
            return f"new busy status '{status.label}'"
        return f"new online status '{status.label}' on {', '.join(status.channels)}"
    changes = []
    if "DeveloperName" in write.fields:
        changes.append(f"DeveloperName '{found.developer_name}' -> '{status.developer_name}'")
    if "MasterLabel" in write.fields:
        changes.append(f"label '{found.label}' -> '{status.label}'")
    if write.add_channel_ids:
        changes.append("add channel " + ", ".join(channel_names[channel_id] for channel_id in write.add_channel_ids))
    if write.remove_link_ids:
        removed = sorted(channel_names[link.channel_id] for link in current.values() if link.id in write.remove_link_ids)
        changes.append("remove channel " + ", ".join(removed))
    return "; ".join(changes)
