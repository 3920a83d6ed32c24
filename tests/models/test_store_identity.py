"""A store belongs to one contact center (CXone tenant + Salesforce org): another's is refused, a reset starts over."""

from __future__ import annotations

import pytest

from presence_sync.models.store import (
    AccountMapping,
    ContactCenter,
    MIGRATIONS,
    Store,
    StoreOwnedElsewhereError,
    migrate,
)
from presence_sync.models.store.connection import create_store_engine, normalise_store_url
from tests.models.conftest import FakeClock, FreshUrl

OURS = ContactCenter("11eb0000-aaaa-bbbb-cccc-000000000001", "00D5g000004ABCDEAZ")
THEIRS = ContactCenter("11eb0000-aaaa-bbbb-cccc-000000000002", "00D5g000009WXYZEAZ")


def test_the_first_claim_is_recorded_and_the_same_center_passes(store: Store) -> None:
    assert store.identity.owner() is None
    store.identity.claim(OURS)
    store.identity.claim(ContactCenter(OURS.cxone_tenant_id.upper(), OURS.sf_org_id[:15]))  # same ids, other spelling
    assert store.identity.owner() == OURS


@pytest.mark.parametrize("other", [
    THEIRS,
    ContactCenter(OURS.cxone_tenant_id, THEIRS.sf_org_id),
    ContactCenter(THEIRS.cxone_tenant_id, OURS.sf_org_id),
], ids=["both", "other-org", "other-tenant"])
def test_another_contact_center_is_refused_naming_both(store: Store, other: ContactCenter) -> None:
    store.identity.claim(OURS)
    with pytest.raises(StoreOwnedElsewhereError) as refused:
        store.identity.claim(other)
    message = str(refused.value)
    assert str(OURS) in message and str(other) in message and "--reset-store" in message
    assert store.identity.owner() == OURS


def test_a_reset_store_starts_over_and_can_be_claimed_by_another(store: Store) -> None:
    store.identity.claim(OURS)
    store.sync.commit_tick(cursors={"cxone": "2026-11-25T10:00:00Z"})
    store.identity.reset()
    assert store.identity.owner() is None and store.sync.get_cursor("cxone") is None
    store.identity.claim(THEIRS)
    assert store.identity.owner() == THEIRS


def test_a_store_onboarded_before_version_4_is_claimed_by_its_account_mapping(
    fresh_url: FreshUrl, clock: FakeClock
) -> None:
    url = fresh_url()
    engine = create_store_engine(normalise_store_url(url))
    try:
        assert migrate(engine, MIGRATIONS[:3]) == 3
    finally:
        engine.dispose()
    with Store(create_store_engine(normalise_store_url(url)), clock=clock) as old:
        old.setup.upsert_account_mapping(AccountMapping(
            cxone_tenant_id=OURS.cxone_tenant_id, cxone_access_key_user="api@example.com",
            sf_environment="production", sf_login_host="login.salesforce.com", sf_auth_flow="password",
            sf_org_id=OURS.sf_org_id,
        ))

    with Store.open(url, clock=clock) as upgraded:
        assert upgraded.schema_version() == MIGRATIONS[-1].version >= 4
        assert upgraded.identity.owner() == OURS
        with pytest.raises(StoreOwnedElsewhereError):
            upgraded.identity.claim(THEIRS)
