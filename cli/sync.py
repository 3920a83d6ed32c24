"""`presence-sync sync | reconcile | status | audit`: the sync in the foreground, and what it did.

    presence-sync sync presence-sync.yaml --seconds 60
    presence-sync sync presence-sync.yaml --shard 2/3        # shard 2 of 3 (another process runs 1/3, 3/3)
    presence-sync reconcile presence-sync.yaml
    presence-sync status presence-sync.yaml
    presence-sync audit presence-sync.yaml --agent agent7@example.com --since 2h
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from presence_sync.cli.output import ConfigArgument, exit_code_for, print_error, report_table, whole

if TYPE_CHECKING:
    from presence_sync.models.store import Audit
    from presence_sync.tasks.sync.runner import ReconcileReport
    from presence_sync.tasks.sync.status import StatusReport
    from presence_sync.tasks.sync.window import WindowProgress, WindowResult

console = Console(highlight=False)


def _flow_outcome(state: Any) -> Any:
    """The flow's result; when the run failed, its message and the exit code for its cause (cli/output.py)."""
    result = state.result(raise_on_failure=False)
    if state.is_failed():
        error = result if isinstance(result, BaseException) else None
        print_error(str(error) if error is not None and str(error) else state.message or "the run failed")
        raise typer.Exit(exit_code_for(error) if error is not None else 1)
    return result


ShardOption = Annotated[
    str | None,
    typer.Option(
        "--shard", metavar="I/N",
        help="Sync shard I of N (e.g. 2/3): only its agents, under its own lease and cursors. Default: every agent.",
    ),
]


def _shard(text: str | None) -> str | None:
    """The --shard given, checked before any flow run starts (a clear error, not a failed run)."""
    from presence_sync.engine import Shard, ShardError

    try:
        return None if text is None else str(Shard.parse(text))
    except ShardError as error:
        raise typer.BadParameter(str(error), param_hint="--shard") from None


def sync(
    config: ConfigArgument,
    seconds: Annotated[
        float | None,
        typer.Option("--seconds", min=1, help="How long to sync (default: the config's sync.window_minutes)."),
    ] = None,
    reset_store: Annotated[
        bool,
        typer.Option(
            "--reset-store",
            help="Delete everything in the config's state store first (e.g. one that belongs to another "
            "contact center); run onboard next to link the agents again.",
        ),
    ] = False,
    shard: ShardOption = None,
) -> None:
    """Run the sync loop in the foreground for one window (the same flow the sync deployment runs).

    Ctrl+C or SIGTERM stops it cleanly: the tick in progress finishes, is saved, and the sync lease is
    handed over at once (exit 130 or 143); a second one stops at once.
    """
    from presence_sync.models.config import load_config

    shard = _shard(shard)
    loaded = load_config(config)
    settings = loaded.sync  # a config mistake is reported here, before any flow run starts
    if reset_store:
        from presence_sync.tasks.context import reset_store as reset

        reset(loaded)
        console.print("the state store was reset")
    from presence_sync.cli.prefect_api import use_prefect_api

    use_prefect_api()
    from presence_sync.flows.sync import sync as sync_flow
    from presence_sync.tasks.sync.window import watch_ticks

    length = seconds if seconds is not None else settings.window_minutes * 60
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TextColumn("{task.fields[figures]}"))
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("starting Prefect", total=length, figures="")

        def show(at: WindowProgress) -> None:
            stats = at.stats
            figures = (
                f"{stats.ticks} ticks · {sum(stats.changes_seen.values())} changes · {sum(stats.writes.values())} writes"
                if at.holding
                else "waiting for the sync lease (another run holds it)"
            )
            progress.update(bar, completed=at.elapsed, description="syncing", figures=figures)

        with watch_ticks(show):
            try:
                state = asyncio.run(sync_flow(str(config), seconds=length, shard=shard, return_state=True))  # type: ignore[call-overload]
            except KeyboardInterrupt:  # a second Ctrl+C: stopped at once; the lease expires on its own
                console.print("stopped at once; the sync lease expires within its lifetime, nothing decided is lost")
                raise typer.Exit(130) from None
    result: WindowResult = _flow_outcome(state)
    print_window(result)
    if result.stopped_by is not None:
        # The shell's convention for a stop by a signal (130 for SIGINT, 143 for SIGTERM).
        raise typer.Exit(128 + signal.Signals[result.stopped_by].value)


def print_window(result: WindowResult) -> None:
    from presence_sync.tasks.sync.summary import DIRECTION_LABELS, DIRECTIONS

    labels = (DIRECTION_LABELS[d] for d in DIRECTIONS)
    table = report_table(whole(""), *labels, title=f"Sync window ({result.seconds:g} s)")
    for figure, first, second in result.stats.figures():
        table.add_row(figure, first, second)
    console.print(table)
    for report in result.reconciles:
        console.print(f"reconcile during the window: {report.headline}")
    for anomaly in result.stats.anomalies:
        console.print(f"[yellow]{anomaly.kind}:[/] {anomaly.message}")
    console.print(("[green]✔[/] " if result.held_lease else "[yellow]![/] ") + result.headline)


def reconcile(
    config: ConfigArgument,
    wait: Annotated[
        float, typer.Option("--wait", min=1, help="Seconds to wait for a running sync window to do the pass.")
    ] = 120.0,
    shard: Annotated[
        str | None,
        typer.Option("--shard", metavar="I/N", help="Reconcile shard I of N only. Default: every shard syncing now."),
    ] = None,
) -> None:
    """Compare both systems in full with the rule and repair drift; list what was repaired."""
    from presence_sync.models.config import load_config

    shard = _shard(shard)
    load_config(config)
    from presence_sync.cli.prefect_api import use_prefect_api

    use_prefect_api()
    from presence_sync.flows.reconcile import reconcile as reconcile_flow

    with console.status("reconciling both systems with the rule"):
        state = asyncio.run(reconcile_flow(str(config), wait, shard, return_state=True))  # type: ignore[call-overload]
    print_reconcile(_flow_outcome(state))


def print_reconcile(report: ReconcileReport) -> None:
    if report.repairs:
        table = report_table(whole("agent"), "repair (rule row)", "result", title="Repairs")
        for repair in report.repairs:
            change = Text(f"{repair.system}: {repair.shown} → {repair.target}")
            if repair.rule_row:
                change.append(f"\n({repair.rule_row})", style="dim")
            result = Text(repair.result, style="green" if repair.result == "ok" else "red")
            table.add_row(str(repair.agent_id), change, result)
        console.print(table)
    console.print(f"{'[green]✔[/]' if not report.failed else '[yellow]![/]'} {report.headline} (by {report.held_by})")


def status(config: ConfigArgument) -> None:
    """Agents linked, who syncs now, lag per direction, pending and failed writes, the API budget."""
    from presence_sync.models.config import load_config
    from presence_sync.tasks.context import open_store
    from presence_sync.tasks.sync.status import read_status

    store = open_store(load_config(config))
    try:
        report = read_status(store)
    finally:
        store.close()
    print_status(report)


def print_status(report: StatusReport) -> None:
    from presence_sync.tasks.sync.summary import DIRECTION_LABELS

    held = sum(1 for row in report.shards if row.activity.running)
    if report.sharded and report.running:
        running = f"[green]running[/] ({held} shard lease{'' if held == 1 else 's'} held; see Shards)"
    elif report.running:
        running = f"[green]running[/] ({report.lease_holder}, lease until {report.lease_expires_at:%H:%M:%S} UTC)"
    else:
        running = "[yellow]not running[/] (no run holds the sync lease)"
    console.print(f"sync: {running}")
    console.print(f"agents linked: {report.agents_linked}")
    if report.coverage is not None and report.coverage.problem is not None:
        console.print(f"[yellow]agents per rule: unknown[/] ({escape(report.coverage.problem)})")
    elif report.coverage is not None:
        coverage = report.coverage
        per_rule = ", ".join(f"{name} {count}" for name, count in coverage.agents_per_rule.items()) or "no rule stored"
        console.print(f"agents per rule: {escape(per_rule)}; without a rule (not synced): {coverage.without_rule_count}")
        if coverage.without_rule:
            more = coverage.without_rule_count - len(coverage.without_rule)
            listed = "; ".join(coverage.without_rule) + (f"; and {more} more" if more > 0 else "")
            console.print(f"  {escape(listed)}")
    lags = report_table(
        "direction", whole("carried (15 min)"), whole("lag p50"), whole("lag p95"), "last decision (UTC)", title="Lag"
    )
    for lag in report.lags:
        lags.add_row(
            DIRECTION_LABELS[lag.direction], str(lag.carried), _seconds(lag.p50_seconds), _seconds(lag.p95_seconds),
            "-" if lag.last_decision_at is None else f"{lag.last_decision_at:%Y-%m-%d %H:%M:%S}",
        )
    console.print(lags)
    if report.shards:
        console.print(shards_table(report))
    counts = report.write_counts
    console.print(
        f"writes: {counts.get('pending', 0)} in flight, {counts.get('failed', 0)} failed, "
        f"{counts.get('gave_up', 0)} given up"
    )
    rejected = report.rejected_records
    console.print(
        f"rejected records (malformed, skipped): {rejected.get('CXone', 0)} from CXone, "
        f"{rejected.get('Salesforce', 0)} from Salesforce"
    )
    if report.failures:
        failed = report_table(whole("agent"), "write", "reason", title="Failed writes")
        for write in report.failures:
            attempts = f"{write.attempts} attempt{'' if write.attempts == 1 else 's'}"
            what = f"{write.side}: {write.target}\n{write.status.value.replace('_', ' ')} after {attempts}"
            failed.add_row(str(write.agent_id), Text(what), Text(write.last_error or ""))
        console.print(failed)
    if report.budget is None:
        console.print("Salesforce API budget: not read yet (no sync tick so far)")
    else:
        budget = report.budget
        console.print(
            f"Salesforce API budget: {budget.used:,} of {budget.limit:,} used (24 h); polling every "
            f"{budget.poll_interval_seconds:g} s (read {budget.read_at})"
        )
    if report.consoles is not None:
        consoles = report.consoles
        poll = (f"presence poll relaxed {consoles.relaxed_poll_factor:g}x, {consoles.polls_saved:,} polls saved"
                if consoles.poll_relaxed else "presence poll at its usual pace (not every agent's console is connected)")
        console.print(
            f"consoles: {consoles.connected_agents} of {consoles.linked_agents} linked agents connected "
            f"({consoles.connected_consoles} connections); {poll} (read {consoles.read_at})"
        )
    console.print("cursors: " + ", ".join(f"{name} {value or '-'}" for name, value in report.cursors.items()))


def shards_table(report: StatusReport) -> Table:
    """One row per shard (the unsharded sync is shard 1/1): its lease holder, lag and last tick."""
    from presence_sync.tasks.sync.summary import DIRECTION_LABELS, DIRECTIONS

    lag_columns = (f"lag p95 {DIRECTION_LABELS[d]}" for d in DIRECTIONS)
    table = report_table(
        "shard", "lease holder", *lag_columns, "last tick (UTC)", whole("agents"), title="Shards (lag: 15 min)"
    )
    for row in report.shards:
        shard = row.activity
        if shard.running:
            holder = Text(f"{shard.holder}\nuntil {shard.expires_at:%H:%M:%S}")
        else:
            last = f"\n(last: {shard.last_holder})" if shard.last_holder else ""
            holder = Text(shard.lease_state + last, style="yellow" if shard.lease_state == "expired" else "dim")
        table.add_row(
            str(shard.shard), holder, *(_seconds(row.lag_p95_seconds[d]) for d in DIRECTIONS),
            "-" if shard.last_tick_at is None else f"{shard.last_tick_at:%Y-%m-%d %H:%M:%S}",
            "-" if shard.agents is None else str(shard.agents),
        )
    return table


def audit(
    config: ConfigArgument,
    agent: Annotated[
        str | None, typer.Option("--agent", help="CXone agent id, or the agent's email/user name.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="How far back: 15m, 2h, 1d, or a date/time (UTC).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many decisions.")] = 50,
) -> None:
    """The sync's decisions (of one agent) over time, with the rule row and the reason for each."""
    from presence_sync.models.config import load_config
    from presence_sync.tasks.context import open_store
    from presence_sync.tasks.sync.status import StatusError, parse_since, read_audit

    try:
        moment = None if since is None else parse_since(since)
    except StatusError as error:
        raise typer.BadParameter(str(error), param_hint="--since") from None
    store = open_store(load_config(config))
    try:
        rows = read_audit(store, agent=agent, since=moment, limit=limit)
    except StatusError as error:
        raise typer.BadParameter(str(error), param_hint="--agent") from None
    finally:
        store.close()
    if not rows:
        console.print("no decisions recorded" + (f" for {agent}" if agent else "") + (f" since {since}" if since else ""))
        return
    console.print(audit_table(rows, one_agent=agent is not None))


def audit_table(rows: list[Audit], *, one_agent: bool) -> Table:
    """Decisions oldest first, two lines each (what was decided; why), readable at any terminal width."""
    one_day = len({row.at.date() for row in rows}) == 1
    title = f"Audit ({rows[0].at:%Y-%m-%d}, UTC)" if one_day else "Audit (UTC)"
    table = Table.grid(padding=(0, 2))
    table.title = title
    table.add_column("at", no_wrap=True, style="dim")
    table.add_column("decision", overflow="fold")
    for row in rows:
        at = f"{row.at:%H:%M:%S.%f}"[:-3] if one_day else f"{row.at:%Y-%m-%d %H:%M:%S}"
        agent = "" if one_agent else f"agent {row.agent_id}  "
        direction = _AUDIT_DIRECTIONS.get(row.direction, row.direction)
        change = escape(f"{row.from_value or '·'} → {row.to_value or '·'}")
        why = escape(row.reason) + (f" [dim]({escape(row.rule_row)})[/]" if row.rule_row else "")
        why += f" [dim]· rule {escape(row.rule_name)}[/]" if row.rule_name else ""
        table.add_row(at, f"{agent}[bold]{row.outcome}[/]  {direction}  {change}\n{why}")
    return table


_AUDIT_DIRECTIONS = {"cxone->salesforce": "CXone → Salesforce", "salesforce->cxone": "Salesforce → CXone"}


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def register(app: typer.Typer) -> None:
    for command in (sync, reconcile, status, audit):
        app.command()(command)


