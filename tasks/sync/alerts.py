"""What an operator must be told about a running sync, as alert events: decided here, emitted by the flow.

After each tick, `AlertWatch.check` reads what the window holds (`SyncView`) and returns the events
due, at most one per kind every `sync.alerts.repeat_seconds` (no storm):

| event | when |
|---|---|
| `presence-sync.sync.heartbeat` | every `heartbeat_seconds` while the window holds its lease (a proactive automation alerts when none arrives) |
| `presence-sync.lag.high` | the window's propagation lag p95 (either direction) above `lag_p95_seconds` |
| `presence-sync.writes.gave-up` | `gave_up_writes` writes given up |
| `presence-sync.records.rejected` | `rejected_records` malformed records skipped |
| `presence-sync.console.not-listening` | `console_lost_commands` console commands lost (no console of the agent listening) |
| `presence-sync.budget.nearly-spent` | the org's daily API usage at `budget_used_fraction` of its limit |

Counts are per period: at least the threshold since the last event of the kind (or within the last
`repeat_seconds`). A failed or crashed window is Prefect's own flow-run event (`prefect.flow-run.Failed`,
`.Crashed`): nothing is emitted for it here. Payloads hold counts, figures and the lease holder (a
flow run id): never a secret, an agent's name or a record's content.

    watch = AlertWatch(config.sync.alerts)
    for event in watch.check(SyncView.of(runner)):
        emit(event.name, resource=sync_resource(event.shard), payload=event.payload)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from presence_sync.connectors import ApiUsage
from presence_sync.engine import Outcome
from presence_sync.models.config import AlertSettings
from presence_sync.tasks.sync.runner import LEASE_NAME, SyncRunner
from presence_sync.tasks.sync.summary import DIRECTION_LABELS, DIRECTIONS, WindowStats

HEARTBEAT = "presence-sync.sync.heartbeat"
LAG_HIGH = "presence-sync.lag.high"
WRITES_GAVE_UP = "presence-sync.writes.gave-up"
RECORDS_REJECTED = "presence-sync.records.rejected"
CONSOLE_NOT_LISTENING = "presence-sync.console.not-listening"
BUDGET_NEARLY_SPENT = "presence-sync.budget.nearly-spent"
ALERT_EVENTS = (LAG_HIGH, WRITES_GAVE_UP, RECORDS_REJECTED, CONSOLE_NOT_LISTENING, BUDGET_NEARLY_SPENT)
RESOURCE_PREFIX = "presence-sync.sync."
SHARD_LABEL = "presence-sync.shard"
ALL_AGENTS = "all"


def shard_of(lease_name: str) -> str:
    """The shard a lease is for: `sync` -> "all" (unsharded), `sync:2/3` -> "2/3"."""
    _, colon, shard = lease_name.partition(":")
    return shard if colon and shard else ALL_AGENTS


def sync_resource(shard: str | None) -> dict[str, str]:
    """The Prefect resource the events are about: one per shard (`presence-sync.sync.2/3`, `.all`)."""
    shard = shard or ALL_AGENTS
    return {
        "prefect.resource.id": f"{RESOURCE_PREFIX}{shard}",
        "prefect.resource.name": f"presence-sync sync ({'all agents' if shard == ALL_AGENTS else 'shard ' + shard})",
        SHARD_LABEL: shard,
    }


@dataclass(frozen=True)
class SyncView:
    """What the watch reads of a window after a tick."""

    held: bool
    holder: str
    shard: str
    stats: WindowStats
    usage: ApiUsage | None = None
    poll_interval_seconds: float | None = None
    console_lost: int | None = None  # None: no console gateway channel
    console_connected: int = 0
    console_linked: int = 0

    @classmethod
    def of(cls, runner: SyncRunner, shard: str | None = None) -> SyncView:
        console = runner.console.source if runner.console is not None else None
        return cls(
            held=runner.held,
            holder=runner.holder,
            shard=shard or shard_of(runner.lease_name or LEASE_NAME),
            stats=runner.stats,
            usage=runner.budget.usage,
            poll_interval_seconds=runner.budget.interval(),
            console_lost=console.lost if console is not None else None,
            console_connected=len(console.connected_users & console.agents_by_user.keys()) if console else 0,
            console_linked=len(console.agents_by_user) if console is not None else 0,
        )


@dataclass(frozen=True)
class AlertEvent:
    name: str
    shard: str
    payload: dict[str, Any]


@dataclass
class _Kind:
    last_at: float | None = None  # when its last event went out
    base: int = 0  # the count its period started from
    base_at: float = 0.0
    seen: int = 0  # the count at the previous check


@dataclass
class AlertWatch:
    """Which alert events are due after a tick (see the module doc); one watch per window."""

    settings: AlertSettings
    monotonic: Callable[[], float] = time.monotonic
    _kinds: dict[str, _Kind] = field(default_factory=dict)
    _started: float | None = None

    def check(self, view: SyncView) -> list[AlertEvent]:
        now = self.monotonic()
        if self._started is None:
            self._started = now
        if not view.held:
            return []
        settings = self.settings
        due: list[tuple[str, dict[str, Any]]] = []
        if self._every(HEARTBEAT, now, settings.heartbeat_seconds):
            due.append((HEARTBEAT, self._heartbeat(view)))
        stats = view.stats
        lags = {DIRECTION_LABELS[d]: stats.lag(d, 95) for d in DIRECTIONS if len(stats.lags_ms[d]) >= settings.lag_min_samples}
        slow = {label: p95 for label, p95 in lags.items() if p95 is not None and p95 > settings.lag_p95_seconds}
        if slow and self._every(LAG_HIGH, now, settings.repeat_seconds):
            worst = max(slow, key=lambda label: slow[label])
            due.append((LAG_HIGH, {
                "message": f"propagation lag p95 {slow[worst]:.1f} s ({worst}) is above {settings.lag_p95_seconds:g} s",
                "lag_p95_seconds": {label: round(p95, 3) for label, p95 in slow.items()},
                "threshold_seconds": settings.lag_p95_seconds,
            }))
        gave_up = sum(stats.count(d, Outcome.GAVE_UP) for d in DIRECTIONS)
        if (count := self._counted(WRITES_GAVE_UP, now, gave_up, settings.gave_up_writes)) is not None:
            due.append((WRITES_GAVE_UP, {
                "message": f"{count} writes given up after their retries; the audit names each agent and why",
                "count": count, "in_window": gave_up,
            }))
        rejected = sum(stats.rejected.values())
        if (count := self._counted(RECORDS_REJECTED, now, rejected, settings.rejected_records)) is not None:
            due.append((RECORDS_REJECTED, {
                "message": f"{count} malformed records skipped ({_by_system(stats)}); see the sync's log",
                "count": count, "by_system": dict(stats.rejected),
            }))
        if view.console_lost is not None and (
            count := self._counted(CONSOLE_NOT_LISTENING, now, view.console_lost, settings.console_lost_commands)
        ) is not None:
            due.append((CONSOLE_NOT_LISTENING, {
                "message": (
                    f"{count} Salesforce commands lost: no console of the agent took them "
                    f"({view.console_connected} of {view.console_linked} linked agents' consoles connected)"
                ),
                "lost_commands": count, "connected_agents": view.console_connected,
                "linked_agents": view.console_linked,
            }))
        usage = view.usage
        if usage is not None and usage.limit > 0 and usage.used / usage.limit >= settings.budget_used_fraction:
            if self._every(BUDGET_NEARLY_SPENT, now, settings.repeat_seconds):
                due.append((BUDGET_NEARLY_SPENT, {
                    "message": (
                        f"Salesforce API budget {usage.used:,} of {usage.limit:,} used in the last 24 h "
                        f"({usage.used / usage.limit:.0%}); polling every {view.poll_interval_seconds or 0:.0f} s"
                    ),
                    "used": usage.used, "limit": usage.limit, "threshold_fraction": settings.budget_used_fraction,
                }))
        return [AlertEvent(name, view.shard, {"holder": view.holder, **payload}) for name, payload in due]

    def _every(self, name: str, now: float, seconds: float) -> bool:
        kind = self._kinds.setdefault(name, _Kind())
        if kind.last_at is not None and now - kind.last_at < seconds:
            return False
        kind.last_at = now
        return True

    def _counted(self, name: str, now: float, total: int, threshold: int) -> int | None:
        """How many since the period began when at least `threshold` (and the kind may speak), else None."""
        kind = self._kinds.setdefault(name, _Kind(base_at=self._started or now))
        quiet = kind.last_at is None or now - kind.last_at >= self.settings.repeat_seconds
        if quiet and now - kind.base_at >= self.settings.repeat_seconds:
            kind.base, kind.base_at = kind.seen, now  # a period ended below the threshold: its counts age out
        kind.seen = total
        count = total - kind.base
        if count >= threshold and quiet:
            kind.last_at, kind.base, kind.base_at = now, total, now
            return count
        return None

    @staticmethod
    def _heartbeat(view: SyncView) -> dict[str, Any]:
        stats = view.stats
        return {
            "message": f"sync {view.shard} held by {view.holder}: {stats.ticks} ticks this window",
            "ticks": stats.ticks,
            "changes_seen": sum(stats.changes_seen.values()),
            "writes": sum(stats.writes.values()),
            "lag_p95_seconds": {DIRECTION_LABELS[d]: stats.lag(d, 95) for d in DIRECTIONS},
        }


def _by_system(stats: WindowStats) -> str:
    return ", ".join(f"{system} {count}" for system, count in sorted(stats.rejected.items()))
