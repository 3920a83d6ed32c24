"""Every command's tables read on an 80-column terminal: cells wrap, none is cut ("Available_f…").

The onboarding report has its own test beside the onboard command (tests/onboarding/test_onboard_cli.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from presence_sync.cli import demo as cli_demo
from presence_sync.cli import serve as cli_serve
from presence_sync.cli import sync as cli_sync
from presence_sync.cli import validate as cli_validate
from presence_sync.deployments.serve import PREFECT_YAML, read_deployments
from presence_sync.engine import Direction
from presence_sync.models.store import Audit, WriteStatus
from presence_sync.tasks.sync.runner import ReconcileReport, Repair
from presence_sync.tasks.sync.status import ApiBudget, Lag, StatusReport
from presence_sync.tasks.sync.summary import WindowStats
from presence_sync.tasks.sync.window import WindowResult

WIDTH = 80
LONG_AGENT = "a.very.long.agent.name@contact-center.example.com"


def rendered(module: ModuleType, monkeypatch: pytest.MonkeyPatch, show: Callable[[], Any]) -> str:
    """What `show()` prints on the module's console at 80 columns."""
    console: Console = module.console
    monkeypatch.setattr(console, "width", WIDTH)
    with console.capture() as captured:
        show()
    return captured.get()


def assert_reads_at_80(text: str) -> None:
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= WIDTH, text


def test_status_with_failed_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    lags = [Lag(Direction.CXONE_TO_SALESFORCE, 1234, 0.82, 1.85, now), Lag(Direction.SALESFORCE_TO_CXONE, 56, None, None, None)]
    failure = SimpleNamespace(
        agent_id=1000123, side="salesforce", target="Available_for_Chats", attempts=5, status=WriteStatus.GAVE_UP,
        last_error="the agent's console is closed: no presence applier took the command within 30 s",
    )
    report = StatusReport(
        agents_linked=196, lease_holder="sync/6a3c2f0e-1b2d-4c5e-8f9a-0b1c2d3e4f5a", lease_expires_at=now,
        cursors={"cxone": "2026-12-04T11:59:59.000Z", "salesforce": "2026-12-04T11:59:58.000Z"}, lags=lags,
        write_counts={}, failures=[failure], budget=ApiBudget(1234, 5_000_000, 1.0, "2026-12-04T12:00:00Z"),  # type: ignore[list-item]
    )

    text = rendered(cli_sync, monkeypatch, lambda: cli_sync.print_status(report))

    assert_reads_at_80(text)
    assert "salesforce: Available_for_Chats" in text and "gave up after 5 attempts" in text


def test_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    at = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    rows = [
        Audit(at=at, agent_id=1000007, direction="cxone->salesforce", outcome="write", from_value="Unavailable: Lunch",
              to_value="Available_for_Chats", rule_row="publisher[0]: Available -> Available_for_Chats",
              reason="the agent became Available in CXone; the rule publishes Available_for_Chats"),
    ]

    text = rendered(cli_sync, monkeypatch, lambda: cli_sync.console.print(cli_sync.audit_table(rows, one_agent=False)))

    assert_reads_at_80(text)
    assert "Available_for_Chats" in text


def test_a_sync_window_and_a_reconcile(monkeypatch: pytest.MonkeyPatch) -> None:
    result = WindowResult(holder="sync/1", seconds=600, held_lease=True, stats=WindowStats())
    repair = Repair(agent_id=1000007, system="salesforce", shown="Unavailable_for_Lunch_Break", target="Available_for_Chats",
                    rule_row="publisher[0]: Available -> Available_for_Chats", result="ok")
    report = ReconcileReport(agents_checked=196, repairs=[repair], held_by="reconcile/6a3c2f0e-1b2d-4c5e-8f9a")

    text = rendered(cli_sync, monkeypatch, lambda: (cli_sync.print_window(result), cli_sync.print_reconcile(report)))

    assert_reads_at_80(text)
    assert "writes (incl. retries)" in text and "Available_for_Chats" in text


def test_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    from presence_sync.tasks.validate.report import Cause, Diagnosis, Hop, HopResult, ValidationReport

    closed = Diagnosis(Cause.CONSOLE_CLOSED, "no new presence spell for the user.", "open the Service Console")
    report = ValidationReport(LONG_AGENT, hops=[
        HopResult(Hop.SALESFORCE_TO_CXONE, "set Available_for_Chats in Salesforce", "Available", "Available", True, 0.61),
        HopResult(Hop.CXONE_TO_SALESFORCE, "set Unavailable: Lunch in CXone", "Lunch", "Available_for_Chats", False,
                  diagnosis=closed),
    ])

    text = rendered(cli_validate, monkeypatch, lambda: cli_validate.print_report(report))

    assert_reads_at_80(text.split("\n✘")[0])  # the table; the verdict lines below wrap as the terminal does
    assert "Available_for_Chats" in text


def test_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESENCE_SYNC_CONFIG", "/srv/presence-sync/centers/acme-contact-center.yaml")
    specs = read_deployments(PREFECT_YAML)

    table = cli_serve.deployments_table(specs, f"Serving {PREFECT_YAML} on http://127.0.0.1:4200/api")
    text = rendered(cli_serve, monkeypatch, lambda: cli_serve.console.print(table))

    assert_reads_at_80(text)
    assert "{" not in text  # concurrency in words, not prefect.yaml's mapping
    assert "up to 2; more wait" in text and "flows/refresh_users.py" in text


def test_the_demo_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    from presence_sync.tasks.demo.summary import DemoSummary, Latency

    summary = DemoSummary(
        agents=200, day_seconds=60, seed=0, config_path=str(Path("/tmp/presence-sync-demo-abcdefgh/presence-sync.yaml")),
        changes=Counter(cxone=4618, salesforce=760),
        latency={"cxone->salesforce": Latency(4466, 10.79, 11.41, 12.28), "salesforce->cxone": Latency(747, 10.78, 11.44, 12.64)},
        window=WindowStats(), flow_runs={"onboard": "onboard-presence-sync-demo-abcdefgh"},
    )

    text = rendered(cli_demo, monkeypatch, lambda: cli_demo.print_summary(summary))

    assert_reads_at_80(text.split("Not measured")[0])
    assert "propagation p50 / p95 / max" in " ".join(text.split())


@pytest.mark.parametrize("busy", [False, True])
def test_the_demo_summary_says_whether_the_machine_was_too_busy(monkeypatch: pytest.MonkeyPatch, busy: bool) -> None:
    from presence_sync.tasks.demo.busy import MachineLoad
    from presence_sync.tasks.demo.summary import DemoSummary, summary_markdown

    machine = (MachineLoad(cores=2, load_before=9.8, load_after=11.2, lag_p95_seconds=0.85, lag_max_seconds=2.4, samples=612)
               if busy else MachineLoad(cores=2, load_before=0.3, load_after=1.1, lag_p95_seconds=0.01, lag_max_seconds=0.05, samples=640))
    summary = DemoSummary(agents=24, day_seconds=15, seed=4, config_path="/tmp/demo/presence-sync.yaml", machine=machine)

    text = " ".join(rendered(cli_demo, monkeypatch, lambda: cli_demo.print_summary(summary)).split())
    markdown = summary_markdown(summary)

    assert machine.busy is busy
    for shown in (text, markdown):
        assert ("The machine was busy while the demo ran" in shown) is busy
        assert ("The machine had room for the demo" in shown) is not busy
        assert "on 2 cores" in shown
    if busy:
        assert "load 9.8 before, 11.2 after" in text and "0.85 s late at p95" in text and "⚠" in text
        assert "idle machine" in markdown


async def test_the_loop_lag_sampler_counts_a_blocked_loop() -> None:
    import time

    from presence_sync.tasks.demo.busy import LoopLag

    async with LoopLag(sample_seconds=0.01) as lag:
        while len(lag.lags) < 3:  # a few samples of an idle loop
            await asyncio.sleep(0.01)
        time.sleep(0.3)  # the loop is starved: the sample in flight wakes at least this late
        while len(lag.lags) < 5:
            await asyncio.sleep(0.01)

    machine = lag.machine_load()
    assert machine.samples >= 5 and machine.lag_max_seconds >= 0.25
    assert machine.cores >= 1
