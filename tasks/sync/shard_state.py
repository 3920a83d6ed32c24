"""Which sync shards a store knows, who holds each, and when each last ticked: read from the store alone.

Every sync run holds its shard's lease (`sync` unsharded, `sync:i/n` for shard i of n) and saves a
`last-tick` cursor of its shard (`last-tick`, `last-tick:i/n`) in each tick's transaction. From these,
`status` lists the shards, validate finds the run that syncs one agent, and reconcile asks every shard.

    for shard in shard_activity(store):
        print(shard.shard, shard.holder or shard.lease_state, shard.last_tick_at)
    current_shards(store)              # [Shard(1, 2), Shard(2, 2)]: the shards of the count syncing now
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from presence_sync.engine.shards import ALL, SYNC_LEASE, Shard, shard_from_name
from presence_sync.models.store import Store

LAST_TICK_CURSOR = "last-tick"  # JSON {"at": iso, "holder": run, "agents": linked agents of the shard}
_RELEASED_BEFORE = datetime(1971, 1, 1, tzinfo=UTC)  # a released lease expires at the epoch (store.leases)


@dataclass(frozen=True, slots=True)
class ShardActivity:
    """One shard as the store knows it: its lease and its last tick."""

    shard: Shard
    holder: str | None = None  # the run holding the lease now; None: nobody
    expires_at: datetime | None = None  # of the held lease
    last_holder: str | None = None  # who held it last, when nobody does now
    lease_state: str = "never held"  # "held" | "free" (released) | "expired" (its holder stopped renewing) | "never held"
    last_tick_at: datetime | None = None
    agents: int | None = None  # linked agents the shard synced at its last tick

    @property
    def running(self) -> bool:
        return self.holder is not None


def shard_activity(store: Store, now: datetime | None = None) -> list[ShardActivity]:
    """Every shard with a lease or a last tick in the store, by shard count then index (two queries)."""
    now = now or datetime.now(UTC)
    leases = {shard: lease for lease in store.leases.family(SYNC_LEASE) if (shard := shard_from_name(lease.name, SYNC_LEASE))}
    ticks = {
        shard: _last_tick(value)
        for name, value in store.sync.cursor_family(LAST_TICK_CURSOR).items()
        if (shard := shard_from_name(name, LAST_TICK_CURSOR))
    }
    shards = []
    for shard in sorted(leases.keys() | ticks.keys(), key=lambda s: (s.count, s.index)):
        at, agents = ticks.get(shard, (None, None))
        lease = leases.get(shard)
        if lease is None:
            shards.append(ShardActivity(shard, last_tick_at=at, agents=agents))
        elif lease.expires_at > now:
            shards.append(ShardActivity(shard, lease.holder, lease.expires_at, None, "held", at, agents))
        else:
            state = "free" if lease.expires_at < _RELEASED_BEFORE else "expired"
            shards.append(ShardActivity(shard, None, None, lease.holder, state, at, agents))
    return shards


def current_shards(store: Store, now: datetime | None = None) -> list[Shard]:
    """The shards of the count that syncs now (the count most held leases have), else of the count that
    ticked last; `[ALL]` for a store no shard has ticked in."""
    known = shard_activity(store, now)
    held = Counter(activity.shard.count for activity in known if activity.running)
    if held:
        count = held.most_common(1)[0][0]
    else:
        ticked = [a for a in known if a.last_tick_at is not None]
        count = max(ticked, key=lambda a: a.last_tick_at or _RELEASED_BEFORE).shard.count if ticked else 1
    return Shard(1, count).siblings() if count > 1 else [ALL]


def other_count_holders(store: Store, shard: Shard, now: datetime) -> list[str]:
    """Runs holding a lease of another shard count than `shard`'s: they may sync the same agents."""
    return [
        f"{activity.holder} (shard {activity.shard})"
        for activity in shard_activity(store, now)
        if activity.running and activity.shard.count != shard.count
    ]


def last_tick_value(at: datetime, holder: str, agents: int) -> str:
    return json.dumps({"at": at.isoformat(), "holder": holder, "agents": agents})


def _last_tick(value: str) -> tuple[datetime | None, int | None]:
    try:
        data = json.loads(value)
        return datetime.fromisoformat(data["at"]), int(data["agents"])
    except (ValueError, KeyError, TypeError):
        return None, None


__all__ = ["LAST_TICK_CURSOR", "ShardActivity", "current_shards", "last_tick_value", "other_count_holders", "shard_activity"]
