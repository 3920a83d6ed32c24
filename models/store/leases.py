"""Who may sync right now: named leases with an expiry and a fencing token.

A lease is taken for a TTL and renewed while its holder works; a run waiting for it registers as
the next holder, and release hands it straight over (no moment free between two sync windows,
however slow the machine). Every acquisition gets a new fencing token, and ``fence`` lets a write transaction check (and on PostgreSQL row-lock) that
its lease is still the current holding, so a deposed holder can never save anything.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Update, and_, case, literal, not_, null, or_, select, update

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
        self, name: str, holder: str, ttl_seconds: float, now: datetime | None = None, *, queue: bool = True
    ) -> Lease | None:
        """Take the lease ``name`` for ``ttl_seconds`` if it is free, expired, already ``holder``'s
        or handed over to ``holder``; None while someone else holds it. Every acquisition gets a
        new fencing token. ``holder`` must be unique per run (e.g. the flow run id).

        While someone else holds it, ``holder`` (with ``queue``) registers as the next holder for
        ``ttl_seconds``, unless another waiter's registration is still fresh: ``release`` then
        hands the lease straight over, and the waiter's next ``acquire`` finds it holds it. A
        waiter renews its registration by asking again; a dead waiter's registration lapses. A
        fresh registration also keeps an expired lease for its waiter.

        Atomic (a single upsert whose every column is a CASE on the row it finds), so racing
        callers get one winner. Expiry is judged by the callers' clocks: keep hosts NTP-synced
        and the TTL well above any skew between them.
        """
        _check_ttl(ttl_seconds)
        now = now or self._clock()
        expires_at = now + timedelta(seconds=ttl_seconds)
        table = table_of(SyncLease)
        c = table.c
        when = c.expires_at.type
        other_waits = and_(c.next_holder.is_not(None), c.next_holder != holder, c.next_until > now)
        takes = or_(and_(c.holder == holder, c.expires_at > now), and_(c.expires_at <= now, not_(other_waits)))
        registers = and_(literal(queue), not_(other_waits))
        # A holder that takes the lease gives up its own registration; a stale one of another is harmless.
        kept_next = case((c.next_holder == holder, null()), else_=c.next_holder)
        kept_until = case((c.next_holder == holder, null()), else_=c.next_until)
        stmt = self._insert(table).values(
            name=name, holder=holder, fencing_token=1, acquired_at=now, expires_at=expires_at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "holder": case((takes, literal(holder)), else_=c.holder),
                "fencing_token": case((takes, c.fencing_token + 1), else_=c.fencing_token),
                "acquired_at": case((takes, literal(now, when)), else_=c.acquired_at),
                "expires_at": case((takes, literal(expires_at, when)), else_=c.expires_at),
                "next_holder": case((takes, kept_next), (registers, literal(holder)), else_=c.next_holder),
                "next_until": case((takes, kept_until), (registers, literal(expires_at, when)), else_=c.next_until),
            },
        ).returning(c.holder, c.fencing_token, c.expires_at)
        with self._write() as conn:
            row = conn.execute(stmt).one()
        # The row as it is now: ours with our expiry only if this call took it (an expired holding
        # of ours that a waiter keeps still names us, with its old expiry).
        took = row.holder == holder and row.expires_at == expires_at
        return Lease(name, holder, row.fencing_token, now) if took else None

    def renew(self, lease: Lease, ttl_seconds: float, now: datetime | None = None) -> bool:
        """Extend a held lease to ``now + ttl_seconds``; False if another holder took it over."""
        _check_ttl(ttl_seconds)
        now = now or self._clock()
        with self._write() as conn:
            result = conn.execute(
                _lease_update(lease).values(expires_at=now + timedelta(seconds=ttl_seconds))
            )
        return result.rowcount == 1

    def release(self, lease: Lease, now: datetime | None = None) -> str | None:
        """Hand the lease back at once: to its registered next holder if that registration is
        still fresh (a new fencing token, held until the registration would have lapsed), else
        free. Returns the holder it went to (None: freed, or already taken over: a no-op).
        """
        now = now or self._clock()
        c = table_of(SyncLease).c
        hands_over = and_(c.next_holder.is_not(None), c.next_until > now)
        stmt = (
            _lease_update(lease)
            .values(
                holder=case((hands_over, c.next_holder), else_=c.holder),
                fencing_token=case((hands_over, c.fencing_token + 1), else_=c.fencing_token),
                acquired_at=case((hands_over, literal(now, c.acquired_at.type)), else_=c.acquired_at),
                expires_at=case((hands_over, c.next_until), else_=literal(_RELEASED_AT, c.expires_at.type)),
                next_holder=null(),
                next_until=null(),
            )
            .returning(c.holder)
        )
        with self._write() as conn:
            new_holder = conn.execute(stmt).scalar_one_or_none()
        return None if new_holder is None or new_holder == lease.holder else new_holder

    def withdraw(self, name: str, holder: str) -> None:
        """Take back ``holder``'s registration as the next holder of ``name`` (it stopped waiting)."""
        c = table_of(SyncLease).c
        with self._write() as conn:
            conn.execute(
                update(table_of(SyncLease))
                .where(c.name == name, c.next_holder == holder)
                .values(next_holder=null(), next_until=null())
            )

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
