"""Step 2, profile access: give each configured profile access to its presence statuses.

Access is a SetupEntityAccess row from the profile's own PermissionSet to the status (apis.md S3).
Grants the config does not ask for are left alone.

    plan = await plan_profile_access(ctx)
    result = await apply_profile_access(ctx, plan)   # "2 profiles: 2 created"
"""

from __future__ import annotations

from dataclasses import dataclass
from presence_sync.connectors.soql import quote_in
from presence_sync.engine.errors import did_you_mean
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
from presence_sync.tasks.onboarding.salesforce_setup import create_records, name_key, read_statuses, save_error


@dataclass(frozen=True, slots=True)
class Grant:
    profile: str
    permission_set_id: str
    status_id: str


@dataclass(frozen=True, kw_only=True)
class ProfileAccessPlan(StepPlan):
    grants: tuple[Grant, ...] = ()


async def plan_profile_access(ctx: Context, upcoming: Upcoming = NOTHING_UPCOMING) -> ProfileAccessPlan:
    """Find the grants each configured profile lacks (reads only). In a plan run, statuses that
    presence-statuses would create count as granted-to-be."""
    sf, config = ctx.salesforce, ctx.config
    if not config.profiles:
        return ProfileAccessPlan(step=StepName.PROFILE_ACCESS, noun=("profile", "profiles"))
    profiles = {record["Name"].casefold(): record for record in await sf.query("SELECT Id, Name FROM Profile")}
    found = [profiles.get(profile.name.casefold()) for profile in config.profiles]
    permission_sets = await _owned_permission_sets(ctx, [record["Id"] for record in found if record])
    granted = await _granted(ctx, list(permission_sets.values()))
    statuses = await read_statuses(sf)
    pending = {name_key(name) for name in upcoming_keys(upcoming, StepName.PRESENCE_STATUSES)}
    items: list[PlanItem] = []
    grants: list[Grant] = []
    for index, (profile, record) in enumerate(zip(config.profiles, found, strict=True)):
        subject = f"profile {profile.name}"
        permission_set_id = permission_sets.get(record["Id"]) if record else None
        names = config.profile_statuses(profile)
        missing = [name for name in names if name_key(name) not in statuses and name_key(name) not in pending]
        if record is None:
            existing = [r["Name"] for r in profiles.values()]
            reason = (
                f"Salesforce has no profile '{profile.name}' -> {did_you_mean(profile.name, existing)}fix "
                f"profiles[{index}].name or create the profile; existing: {', '.join(sorted(existing))}"
            )
        elif permission_set_id is None:
            reason = (
                f"profile '{profile.name}' owns no permission set (Salesforce creates one with every profile), "
                "so presence statuses can't be granted to it -> check the integration user may view setup"
            )
        elif missing:
            reason = (
                f"status {', '.join(missing)} does not exist in Salesforce -> the presence-statuses step "
                "creates the configured statuses; fix its failures first"
            )
        else:
            reason = None
        if reason is not None:
            items.append(PlanItem(subject, Action.FAILED, reason, profile.name))
            continue
        assert permission_set_id is not None  # no reason, so the profile and its permission set exist
        to_grant = [
            name for name in names
            if name_key(name) in pending or (permission_set_id, statuses[name_key(name)].id) not in granted
        ]
        grants += [
            Grant(profile.name, permission_set_id, statuses[name_key(name)].id)
            for name in to_grant
            if name_key(name) not in pending
        ]
        items.append(_item(subject, profile.name, names, to_grant, pending))
    return ProfileAccessPlan(
        step=StepName.PROFILE_ACCESS, items=tuple(items), grants=tuple(grants), noun=("profile", "profiles")
    )


async def apply_profile_access(ctx: Context, plan: ProfileAccessPlan) -> StepResult:
    """Create exactly the planned SetupEntityAccess rows (one collection call per 200)."""
    items = {item.key: item for item in plan.items}
    records = [{"ParentId": grant.permission_set_id, "SetupEntityId": grant.status_id} for grant in plan.grants]
    saved = await create_records(ctx.salesforce, "SetupEntityAccess", records)
    for grant, result in zip(plan.grants, saved, strict=True):
        if not result.success:
            items[grant.profile] = items[grant.profile].failed(f"a status grant was not saved: {save_error(result)}")
    return plan.result(items.values())


async def _owned_permission_sets(ctx: Context, profile_ids: list[str]) -> dict[str, str]:
    """{profile Id: the Id of the permission set it owns}."""
    if not profile_ids:
        return {}
    records = await ctx.salesforce.query(
        "SELECT Id, ProfileId FROM PermissionSet "
        f"WHERE IsOwnedByProfile = true AND ProfileId IN {quote_in(profile_ids)}"
    )
    return {record["ProfileId"]: record["Id"] for record in records}


async def _granted(ctx: Context, permission_set_ids: list[str]) -> set[tuple[str, str]]:
    """(permission set Id, status Id) of every presence-status grant these permission sets hold."""
    if not permission_set_ids:
        return set()
    records = await ctx.salesforce.query(
        "SELECT Id, ParentId, SetupEntityId FROM SetupEntityAccess "
        f"WHERE SetupEntityType = 'ServicePresenceStatus' AND ParentId IN {quote_in(permission_set_ids)}"
    )
    return {(record["ParentId"], record["SetupEntityId"]) for record in records}


def _item(subject: str, profile: str, names: tuple[str, ...], to_grant: list[str], pending: set[str]) -> PlanItem:
    if not to_grant:
        return PlanItem(subject, Action.UNCHANGED, f"has all {len(names)} configured statuses", profile)
    later = sum(1 for name in to_grant if name_key(name) in pending)
    reason = f"grant {len(to_grant)} of its {len(names)} statuses: {', '.join(to_grant)}"
    if later:
        reason += f" ({later} of them once presence-statuses has created them)"
    return PlanItem(subject, Action.CREATE, reason, profile)
