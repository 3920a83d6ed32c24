"""A store that belongs to another contact center is refused by the sync and by onboarding."""

from __future__ import annotations

import pytest

from presence_sync.models.store import ContactCenter, StoreOwnedElsewhereError
from presence_sync.tasks.context import Context, reset_store
from presence_sync.tasks.onboarding import run_steps
from tests.sync.support import World

OTHER = ContactCenter("11eb0000-aaaa-bbbb-cccc-00000000beef", "00D000000000OTHER")


async def test_onboarding_claims_the_store_for_its_contact_center(world: World, ctx: Context) -> None:
    owner = ctx.store.identity.owner()
    assert owner is not None and owner.sf_org_id.startswith("00D")


async def test_a_store_of_another_contact_center_is_refused_until_it_is_reset(world: World, ctx: Context) -> None:
    ours = ctx.store.identity.owner()
    assert ours is not None
    ctx.store.identity.reset()
    ctx.store.identity.claim(OTHER)

    runner = world.runner(ctx)
    with pytest.raises(StoreOwnedElsewhereError) as refused:
        await runner
    assert str(OTHER) in str(refused.value) and ours.cxone_tenant_id in str(refused.value)
    report = await run_steps(ctx)
    assert not report.succeeded and "--reset-store" in str(report)

    reset_store(ctx.config)
    report = await run_steps(ctx)
    assert report.succeeded, report
    assert ctx.store.identity.owner() == ours
    runner = await world.runner(ctx)
    await world.settle(runner)
