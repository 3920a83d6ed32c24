"""The sync: the tick (poll, decide, record, apply) and the windows and reconcile passes built on it.

Plain async code; Prefect only wraps whole windows and reconcile passes (`flows.sync_tasks`).
A window waits between ticks on a `Wake`: a console push ends the wait, `stop_on_signals` (signals.py)
turns SIGTERM/SIGINT into a clean stop (the tick saved, the lease handed over at once).
What the flows hand to Prefect is decided here too: the alert events due after a tick
(`alerts.AlertWatch`) and the API budget shared by the shards, paced in chunks of slots
(`shared_budget.SharedPacer`).

    async with open_context("presence-sync.yaml") as ctx:
        result = await run_window(ctx, seconds=600, holder="sync/run-1")     # one sync window
        report = await run_reconcile(ctx, holder="reconcile/run-2")          # one reconcile pass
        await run_window(ctx, seconds=600, holder="sync/run-3", shard=Shard.parse("2/3"))  # one shard's
        report = await reconcile_shards(ctx, holder="reconcile/run-4")       # every shard syncing now

Shards (engine/shards.py) split the agents over several runs, each with its own lease and cursors;
`shard_state` reads back which shards a store knows, who holds each and when each last ticked.
"""

from presence_sync.tasks.sync.rulebook import StoredRuleError, load_rulebook
from presence_sync.tasks.sync.runner import ReconcileReport, Repair, SyncRunner
from presence_sync.tasks.sync.status import StatusReport, read_audit, read_status
from presence_sync.tasks.sync.shard_state import ShardActivity, current_shards, shard_activity
from presence_sync.tasks.sync.signals import stop_on_signals
from presence_sync.tasks.sync.window import (
    ReconcileTimeout,
    Wake,
    WindowResult,
    reconcile_shards,
    run_reconcile,
    run_window,
    watch_ticks,
)

__all__ = [
    "ReconcileReport",
    "ReconcileTimeout",
    "Repair",
    "ShardActivity",
    "StatusReport",
    "StoredRuleError",
    "SyncRunner",
    "Wake",
    "WindowResult",
    "current_shards",
    "load_rulebook",
    "read_audit",
    "read_status",
    "reconcile_shards",
    "run_reconcile",
    "run_window",
    "shard_activity",
    "stop_on_signals",
    "watch_ticks",
]
