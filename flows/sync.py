"""The `sync` flow: one bounded window of the sync loop, scheduled back to back by its deployment.

An async flow: it takes the store's sync lease (waiting while the previous window still holds it),
ticks every `interval_seconds` for the window (poll both systems, decide, record, apply), then saves,
releases the lease and returns. The next scheduled run takes over without a gap, and two runs never
sync the same agents at once. Artifacts: one summary per window, one per kind of anomaly.

    state = await sync("presence-sync.yaml", seconds=30, return_state=True)
    state.message          # "28 ticks, 14 changes seen, 9 writes; the window is over"
    await sync("presence-sync.yaml", shard="2/3")   # shard 2 of 3: its agents, its own lease and cursors
"""

from __future__ import annotations

import uuid
from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Cancelled, Completed, Failed, State

from presence_sync.connectors import ConnectorError
from presence_sync.engine import EngineError, Shard
from presence_sync.flows.run_names import sync_run_name
from presence_sync.models.config import ConfigError, load_config
from presence_sync.models.secrets import preload_prefect_secrets
from presence_sync.models.store import StoreError
from presence_sync.tasks.context import open_context, transports_for
from presence_sync.flows.shared_budget import attach_shared_budget
from presence_sync.flows.sync_alerts import SyncAlerts
from presence_sync.flows.sync_tasks import publish_anomaly, publish_window
from presence_sync.tasks.sync.signals import stop_on_signals
from presence_sync.tasks.sync.window import Wake, run_window

# What an admin must fix (config, credentials, store, a stored rule): a message, not a traceback.
SYNC_USER_ERRORS = (ConfigError, StoreError, ConnectorError, EngineError)


def run_name(kind: str) -> str:
    """This run's lease holder name: the flow run id inside Prefect, else a fresh one."""
    return f"{kind}/{flow_run.id or uuid.uuid4()}"


@flow(name="sync", flow_run_name=sync_run_name, description="Keep every linked agent's state the same in CXone and Salesforce by the presence rule.")
async def sync(
    config_path: str,
    window_minutes: float | None = None,
    seconds: float | None = None,
    interval_seconds: float | None = None,
    shard: str | None = None,
) -> State[Any]:
    """Run one sync window: tick every `interval_seconds` until the window is over, then return.

    SIGTERM or SIGINT (a worker cancelling the run, systemd, Ctrl+C) ends it after the tick in progress:
    saved, the lease handed over at once, and the run Cancelled with what it did as its message.

    Args:
        config_path: The contact center's config file (YAML), as the worker sees it.
        window_minutes: How long this run syncs (default: the config's sync.window_minutes).
        seconds: The window in seconds instead (takes precedence; for short foreground runs).
        interval_seconds: Seconds between ticks (default: the config's sync.interval_seconds).
        shard: This run's shard, "i/n" (e.g. "2/3"): it syncs only its agents, under its own lease and
            cursors; a deployment per shard runs them side by side. None (or "1/1"): every agent.
    """
    wake = Wake()
    with stop_on_signals(wake):
        try:
            only = Shard.parse(shard)
            config = load_config(config_path)
            preload_prefect_secrets(config)
            length = seconds if seconds is not None else 60 * (window_minutes or config.sync.window_minutes)
            holder = run_name("sync")
            async with open_context(config, transports_for(config_path)) as ctx:
                attach_shared_budget(ctx)
                result = await run_window(
                    ctx,
                    seconds=length,
                    holder=holder,
                    run_id=holder,
                    interval_seconds=interval_seconds,
                    shard=only,
                    on_anomaly=publish_anomaly,
                    wake=wake,
                    after_tick=SyncAlerts(config.sync.alerts).after_tick,
                )
        except SYNC_USER_ERRORS as error:
            return Failed(message=str(error), data=error)
        await publish_window(result)
    if result.stopped_by is not None:
        return Cancelled(message=result.headline, data=result)
    return Completed(message=result.headline, data=result)
