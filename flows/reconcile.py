"""The `reconcile` flow: compare both systems in full with the rule and repair drift.

Reads every agent's CXone state and every current Salesforce spell, lets the engine compare them with
what the incremental polls saw and with the rule, and repairs through the sync's own apply path. The
lease decides who does it: this run when no sync window runs, else the running window (asked through
the store), so reconcile never writes beside another run. Artifacts: a table of the repairs and a
one-line summary.

    state = await reconcile("presence-sync.yaml", return_state=True)
    report = await state.result()        # ReconcileReport: agents_checked, repairs, ...
    await reconcile("presence-sync.yaml", shard="2/3")     # one shard only

Sharded syncs: without `shard`, every shard of the count syncing now is reconciled side by side, each
by its running window (or by this run where a shard's lease is free), and the reports merged.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import Completed, Failed, State
from prefect.utilities.annotations import quote

from presence_sync.engine import Shard
from presence_sync.flows.run_names import reconcile_run_name
from presence_sync.flows.shared_budget import attach_shared_budget
from presence_sync.flows.sync import SYNC_USER_ERRORS, run_name
from presence_sync.models.config import load_config
from presence_sync.models.secrets import preload_prefect_secrets
from presence_sync.tasks.context import open_context, transports_for
from presence_sync.flows.sync_tasks import publish_reconcile, reconcile_pass
from presence_sync.tasks.sync.window import RECONCILE_WAIT_SECONDS, ReconcileTimeout


@flow(name="reconcile", flow_run_name=reconcile_run_name, description="Compare both systems with the presence rule and repair drift.")
async def reconcile(
    config_path: str, wait_seconds: float = RECONCILE_WAIT_SECONDS, shard: str | None = None
) -> State[Any]:
    """Reconcile both systems with the rule once.

    Args:
        config_path: The contact center's config file (YAML), as the worker sees it.
        wait_seconds: How long to wait for a running sync window to do the pass before giving up.
        shard: One shard, "i/n", to reconcile; None: every shard syncing now (all agents).
    """
    try:
        only = Shard.parse(shard) if shard else None
        config = load_config(config_path)
        preload_prefect_secrets(config)
        holder = run_name("reconcile")
        async with open_context(config, transports_for(config_path)) as ctx:
            attach_shared_budget(ctx)  # a full read of both systems spends the same shared budget
            report = await reconcile_pass(quote(ctx), holder, holder, wait_seconds, only)
    except (*SYNC_USER_ERRORS, ReconcileTimeout) as error:
        return Failed(message=str(error), data=error)
    await publish_reconcile(report)
    # A repair refused for a reason of its own (an agent logged out, a code the team lacks) is in the
    # report and the audit; the run itself did its job.
    return Completed(message=report.headline, data=report)
