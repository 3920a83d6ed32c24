"""The sync: the tick (poll, decide, record, apply) and the windows and reconcile passes built on it.

Plain async code; Prefect only wraps whole windows and reconcile passes (`flows.sync_tasks`). What the
flows hand to Prefect is decided here too: the alert events due after a tick (`alerts.AlertWatch`) and
the API budget shared by the shards, paced in chunks of slots (`shared_budget.SharedPacer`).

    async with open_context("presence-sync.yaml") as ctx:
        result = await run_window(ctx, seconds=600, holder="sync/run-1")     # one sync window
        report = await run_reconcile(ctx, holder="reconcile/run-2")          # one reconcile pass
"""

from presence_sync.tasks.sync.rulebook import StoredRuleError, load_rulebook
from presence_sync.tasks.sync.runner import ReconcileReport, Repair, SyncRunner
from presence_sync.tasks.sync.status import StatusReport, read_audit, read_status
from presence_sync.tasks.sync.window import ReconcileTimeout, WindowResult, run_reconcile, run_window, watch_ticks

__all__ = [
    "ReconcileReport",
    "ReconcileTimeout",
    "Repair",
    "StatusReport",
    "StoredRuleError",
    "SyncRunner",
    "WindowResult",
    "load_rulebook",
    "read_audit",
    "read_status",
    "run_reconcile",
    "run_window",
    "watch_ticks",
]
