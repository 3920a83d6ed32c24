"""Which contact center a store belongs to: one CXone tenant and one Salesforce org.

A store holds one contact center's agent memory, cursors and sessions; used for another, its memory
would be inherited (writes skipped as if done, echoes expected that never come). So the first run
that knows both ids claims the store, and every later one checks the claim.

    store.identity.claim("11eb...", "00D5g000004ABCD")    # StoreOwnedElsewhereError when another's
    store.identity.reset()                                  # start over: every row gone, claim too
"""

from dataclasses import dataclass

from sqlalchemy import delete, select

from presence_sync.models.store.errors import StoreOwnedElsewhereError
from presence_sync.models.store.part import StorePart, table_of
from presence_sync.models.store.tables import STORE_TABLES, StoreOwner

_OWNER_ROW = 1


@dataclass(frozen=True, slots=True)
class ContactCenter:
    """A CXone tenant and the Salesforce org it is synced with."""

    cxone_tenant_id: str
    sf_org_id: str

    def __str__(self) -> str:
        return f"CXone tenant {self.cxone_tenant_id} with Salesforce org {self.sf_org_id}"

    def same_as(self, other: "ContactCenter") -> bool:
        # Tenant ids are GUIDs (case-insensitive); org ids come as 15 or 18 characters, the first 15 decide.
        return (
            self.cxone_tenant_id.casefold() == other.cxone_tenant_id.casefold()
            and self.sf_org_id[:15] == other.sf_org_id[:15]
        )


class StoreIdentity(StorePart):
    """The store's contact center (``store.identity``)."""

    def owner(self) -> ContactCenter | None:
        with self._read() as conn:
            row = conn.execute(select(table_of(StoreOwner))).first()
        return None if row is None else ContactCenter(row.cxone_tenant_id, row.sf_org_id)

    def check(self, center: ContactCenter, store_label: str = "this store") -> ContactCenter | None:
        """The owner when it is `center` (or None when unclaimed); `StoreOwnedElsewhereError` otherwise."""
        owner = self.owner()
        if owner is not None and not owner.same_as(center):
            raise StoreOwnedElsewhereError(
                f"{store_label} belongs to {owner}, not to {center} (the config's accounts): using it would "
                "inherit another contact center's agent memory. Point sync.store_url at this contact center's "
                "own store, or start this one over with --reset-store (its sync state and onboarding "
                "records are deleted)."
            )
        return owner

    def claim(self, center: ContactCenter, store_label: str = "this store") -> None:
        """Record `center` as the store's contact center, unless it is already; refuse another's."""
        if self.check(center, store_label) is not None:
            return
        table = table_of(StoreOwner)
        with self._write() as conn:
            stmt = self._insert(table).values(
                id=_OWNER_ROW, cxone_tenant_id=center.cxone_tenant_id, sf_org_id=center.sf_org_id,
                claimed_at=self._clock(),
            ).on_conflict_do_nothing(index_elements=["id"])
            conn.execute(stmt)
        self.check(center, store_label)  # another process may have claimed it in between

    def reset(self) -> None:
        """Delete every row of every table (the schema stays): a store to start over with."""
        with self._write() as conn:
            for table in reversed(STORE_TABLES):
                conn.execute(delete(table))
