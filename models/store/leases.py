"""Who may sync right now: named leases with an expiry and a fencing token.

A lease is taken for a TTL and renewed while its holder works; every acquisition gets a new
fencing token, and ``fence`` lets a write transaction check (and on PostgreSQL row-lock) that
its lease is still the current holding, so a deposed holder can never save anything.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Update, or_, select, update

from presence_sync.models.store.errors import LeaseLostError
from presence_sync.models.store.part import StorePart, name_family, table_of
from presence_sync.models.store.tables import SyncLease

# A released lease expires at the epoch: free for the next holder, fencing token kept.
_RELEASED_AT = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lease; ``fencing_token`` tells this holding apart from every other one."""

    name: str
    holder: str
    fencing_token: int
    acquired_at: datetime


class Leases(StorePart):
    """The store's leases (``store.leases``).

    Usage::

        lease = store.leases.acquire("sync", holder="flow-run-123", ttl_seconds=30)
        if lease is not None:
            store.leases.renew(lease, ttl_seconds=30)      # False: another run took it over
            store.leases.release(lease)
    """

    def acquire(
        self, name: str, holder: str, ttl_seconds: float, now: datetime | None = None
    ) -> Lease | None:
        """Take the lease ``name`` for ``ttl_seconds`` if it is free, expired or already
        ``holder``'s; None while someone else holds it. Every acquisition gets a new
        fencing token. ``holder`` must be unique per run (e.g. the flow run id).
        Atomic (a single conditional upsert), so racing callers get one winner. Expiry
        is judged by the callers' clocks: keep hosts NTP-synced and the TTL well above
        any skew between them.
        """
        _check_ttl(ttl_seconds)
        now = now or self._clock()
        table = table_of(SyncLease)
        stmt = self._insert(table).values(
            name=name,
            holder=holder,
            fencing_token=1,
            acquired_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "holder": stmt.excluded.holder,
                "fencing_token": table.c.fencing_token + 1,
                "acquired_at": stmt.excluded.acquired_at,
                "expires_at": stmt.excluded.expires_at,
            },
            where=or_(table.c.expires_at <= now, table.c.holder == holder),
        ).returning(table.c.fencing_token)
        with self._write() as conn:
            token = conn.execute(stmt).scalar_one_or_none()
        return None if token is None else Lease(name, holder, token, now)

    def renew(self, lease: Lease, ttl_seconds: float, now: datetime | None = None) -> bool:
        """Extend a held lease to ``now + ttl_seconds``; False if another holder took it over."""
        _check_ttl(ttl_seconds)
        now = now or self._clock()
        with self._write() as conn:
            result = conn.execute(
                _lease_update(lease).values(expires_at=now + timedelta(seconds=ttl_seconds))
            )
        return result.rowcount == 1

    def release(self, lease: Lease) -> None:
        """Hand the lease back at once (a no-op if it was already taken over)."""
        with self._write() as conn:
            conn.execute(_lease_update(lease).values(expires_at=_RELEASED_AT))

    def family(self, base: str) -> list[SyncLease]:
        """The lease ``base`` and every ``base:<suffix>`` lease (e.g. the sync's shards,
        ``sync:1/2``), held or not, by name."""
        stmt = select(SyncLease).where(name_family(table_of(SyncLease).c.name, base))
        return sorted(self._models(stmt), key=lambda lease: lease.name)

    def get(self, name: str) -> SyncLease | None:
        """The lease row ``name`` (its holder, token and expiry), or None if never taken."""
        return next(iter(self._models(select(SyncLease).where(SyncLease.name == name))), None)


def fence(conn: Connection, lease: Lease) -> None:
    """Raise ``LeaseLostError`` unless ``lease`` is still held, inside the caller's transaction.

    A no-op UPDATE that matches only while the lease is ours; on PostgreSQL it also row-locks
    the lease, so a takeover waits for the caller's commit instead of racing it.
    """
    held = _lease_update(lease).values(fencing_token=table_of(SyncLease).c.fencing_token)
    if conn.execute(held).rowcount != 1:
        raise LeaseLostError(
            f"the sync lease {lease.name!r} was taken over by another run (this run, "
            f"{lease.holder!r}, held fencing token {lease.fencing_token}); this tick was not "
            "saved and the new holder carries on from the last saved cursors"
        )


def _lease_update(lease: Lease) -> Update:
    table = table_of(SyncLease)
    return update(table).where(
        table.c.name == lease.name,
        table.c.holder == lease.holder,
        table.c.fencing_token == lease.fencing_token,
    )


def _check_ttl(ttl_seconds: float) -> None:
    if not ttl_seconds > 0:
        raise ValueError(f"a lease needs a positive ttl_seconds, got {ttl_seconds!r}")
