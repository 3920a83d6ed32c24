"""Step 5, account mapping: verify both ends and store which CXone tenant talks to which Salesforce org.

Salesforce: this run's token from the configured flow, then a query with it. CXone: a fresh token with the
access key, whose id_token names the tenant; it must be the configured `cxone.tenant_id` when one is set.
The store keeps hosts, the flow and ids, never a secret.

    plan = await plan_account_mapping(ctx)
    result = await apply_account_mapping(ctx, plan)   # "1 account mapping: 1 created"
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

from presence_sync.models.store import AccountMapping, ContactCenter, StoreOwnedElsewhereError, utc_now
from presence_sync.tasks.context import Context
from presence_sync.tasks.onboarding.model import NOTHING_UPCOMING, Action, PlanItem, StepName, StepPlan, StepResult, Upcoming
from presence_sync.tasks.onboarding.salesforce_setup import verify_salesforce_login

_NOUN = ("account mapping", "account mappings")
_COMPARED = ("cxone_access_key_user", "sf_environment", "sf_login_host", "sf_auth_flow", "sf_org_id")


@dataclass(frozen=True, kw_only=True)
class AccountMappingPlan(StepPlan):
    mapping: AccountMapping | None = None


async def plan_account_mapping(ctx: Context, upcoming: Upcoming = NOTHING_UPCOMING) -> AccountMappingPlan:
    """Verify both logins and compare the mapping with the stored one (no writes)."""
    config = ctx.config
    login = await verify_salesforce_login(ctx.salesforce)
    tenant = await ctx.cxone.authenticate()
    configured = config.cxone.tenant_id
    subject = "account mapping"
    if tenant is None:
        reason = (
            "CXone's token does not say which tenant the access key belongs to -> set cxone.tenant_id "
            "(Admin > Account Settings in CXone shows it)"
        )
        return _plan(PlanItem(subject, Action.FAILED, reason))
    if configured is not None and tenant.casefold() != configured.casefold():
        reason = (
            f"the CXone access key belongs to tenant {tenant}, not the configured cxone.tenant_id {configured} -> "
            "use an access key of a user in that tenant, or correct cxone.tenant_id"
        )
        return _plan(PlanItem(subject, Action.FAILED, reason))
    mapping = AccountMapping(
        cxone_tenant_id=tenant,
        cxone_access_key_user=config.cxone.access_key_user,
        sf_environment=config.salesforce.environment.value,
        sf_login_host=urlsplit(config.salesforce.login_url).netloc,
        sf_auth_flow=config.salesforce.auth.flow,
        sf_org_id=login.org_id,
        verified_at=utc_now(),
    )
    try:
        await asyncio.to_thread(ctx.store.identity.check, ContactCenter(tenant, login.org_id))
    except StoreOwnedElsewhereError as error:
        return _plan(PlanItem(subject, Action.FAILED, str(error)))
    stored = await asyncio.to_thread(ctx.store.setup.get_account_mapping, tenant)
    described = (
        f"CXone tenant {tenant} (access key of {mapping.cxone_access_key_user}) <-> Salesforce org "
        f"{login.org_id} ({mapping.sf_environment}, {mapping.sf_login_host}, {mapping.sf_auth_flow} flow)"
    )
    if stored is None:
        item = PlanItem(subject, Action.CREATE, f"map {described}; both logins verified")
    elif changed := [name for name in _COMPARED if getattr(stored, name) != getattr(mapping, name)]:
        changes = "; ".join(f"{name} {getattr(stored, name)} -> {getattr(mapping, name)}" for name in changed)
        item = PlanItem(subject, Action.UPDATE, f"{changes}; both logins verified")
    else:
        item = PlanItem(subject, Action.UNCHANGED, f"{described}; both logins verified")
    return _plan(item, mapping)


async def apply_account_mapping(ctx: Context, plan: AccountMappingPlan) -> StepResult:
    """Store the verified mapping; an unchanged one only gets its `verified_at` refreshed."""
    if plan.mapping is not None:
        mapping = plan.mapping
        center = ContactCenter(mapping.cxone_tenant_id, mapping.sf_org_id or "")
        await asyncio.to_thread(ctx.store.identity.claim, center)
        await asyncio.to_thread(ctx.store.setup.upsert_account_mapping, mapping)
    return plan.result()


def _plan(item: PlanItem, mapping: AccountMapping | None = None) -> AccountMappingPlan:
    return AccountMappingPlan(step=StepName.ACCOUNT_MAPPING, items=(item,), mapping=mapping, noun=_NOUN)
