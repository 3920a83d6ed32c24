"""The sync's batch-level Prefect pieces: artifacts per window and per anomaly, the reconcile pass as a task.

Never one task per agent or per change: the hot loop (`tasks.sync.runner`) is plain async code. A
window publishes one summary (a markdown artifact with its table) and at most one artifact per kind of
anomaly; a reconcile pass one markdown artifact with its repairs.

    await publish_window(result)                    # inside the sync flow
    report = await reconcile_pass(ctx, holder, ...)  # a task run, retried on transient API errors
"""

from __future__ import annotations

from typing import Any

from prefect import Task, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import exponential_backoff

from presence_sync.connectors import is_transient
from presence_sync.engine.shards import Shard
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.runner import ReconcileReport
from presence_sync.tasks.sync.summary import Anomaly
from presence_sync.tasks.sync.window import RECONCILE_WAIT_SECONDS, WindowResult, reconcile_shards

WINDOW_ARTIFACT_KEY = "sync-window"
RECONCILE_ARTIFACT_KEY = "reconcile"
_SHOWN_REPAIRS = 500  # rows in the reconcile table artifact; the audit keeps every one


def _retry_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    return isinstance(state.data, BaseException) and is_transient(state.data)


async def publish_anomaly(anomaly: Anomaly) -> None:
    """One markdown artifact for the first anomaly of its kind in a run."""
    await acreate_markdown_artifact(
        key=f"sync-anomaly-{anomaly.kind}",
        markdown=f"# Sync anomaly: {anomaly.kind}\n\n{anomaly.message}",
        description=f"presence-sync: {anomaly.kind}",
    )


async def publish_window(result: WindowResult) -> None:
    """The window's summary: one markdown artifact, its figures per direction as a table."""
    stats = result.stats
    notes = [f"Holder: `{result.holder}`; {result.headline}."]
    notes += [f"Reconcile during this window: {report.headline}." for report in result.reconciles]
    await acreate_markdown_artifact(
        key=WINDOW_ARTIFACT_KEY,
        markdown=stats.markdown(f"Sync window of {result.seconds:g} s", notes),
        description=f"Sync window: {result.headline}",
    )


async def publish_reconcile(report: ReconcileReport) -> None:
    """What a reconcile pass repaired: one markdown artifact, a table row per write under its headline."""
    rows = [repair.as_row() for repair in report.repairs[:_SHOWN_REPAIRS]]
    more = len(report.repairs) - len(rows)
    lines = [f"# Reconcile: {report.headline}", "", f"Done by `{report.held_by}`."]
    if rows:
        header = list(rows[0])
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_cell(row[column]) for column in header) + " |" for row in rows]
    if more > 0:
        lines += ["", f"The table shows the first {len(rows)} repairs; {more} more are in the audit."]
    await acreate_markdown_artifact(key=RECONCILE_ARTIFACT_KEY, markdown="\n".join(lines), description=report.headline)


def _cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


@task(
    cache_policy=NO_CACHE,  # reads live systems: never reuse an earlier answer
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2.0),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_transient,
)
async def reconcile_pass(
    ctx: Context, holder: str, run_id: str | None, wait_seconds: float = RECONCILE_WAIT_SECONDS,
    shard: Shard | None = None,
) -> ReconcileReport:
    """One reconcile pass per shard (by this run, or by the sync window holding the shard's lease);
    `shard` None: every shard syncing now (`reconcile_shards`)."""
    return await reconcile_shards(ctx, holder=holder, run_id=run_id, wait_seconds=wait_seconds, shard=shard)
