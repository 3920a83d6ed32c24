"""`presence-sync status` and `presence-sync audit`: what the sync did, read back from the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from presence_sync.cli.main import app
from presence_sync.engine import Direction
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.status import StatusError, parse_since, read_audit, read_status
from tests.sync.support import AGENTS, World, agent_id

cli = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as they like: the assertions read cells, not wrapped fragments."""
    from presence_sync.cli import sync as cli_sync

    monkeypatch.setattr(cli_sync.console, "width", 220)


async def test_status_says_who_syncs_the_lag_each_way_the_writes_and_the_budget(world: World, ctx: Context) -> None:
    world.stack.salesforce.set_console(world.sf_user(2), open=False)
    runner = await world.runner(ctx, holder="window-7")
    await world.ticks(runner, 3)  # agent 2's command waits for an echo that can't come: no settling
    world.pick_sf(1, "On_Break")
    world.pick_cx(3, "Unavailable", "Lunch")  # a person's change each way: the first window only aligned
    await world.ticks(runner, 3)

    status = read_status(ctx.store, now=world.clock())

    assert status.running and status.lease_holder == "window-7"
    assert status.agents_linked == AGENTS
    lags = {lag.direction: lag for lag in status.lags}
    # The initial alignment of every agent but agent 2 (its console is closed: no echo), and agent 3's change.
    assert lags[Direction.CXONE_TO_SALESFORCE].carried == AGENTS
    assert lags[Direction.SALESFORCE_TO_CXONE].carried == 1
    assert all(lag.p50_seconds is not None and lag.p50_seconds >= 0 for lag in status.lags)
    assert status.write_counts["pending"] == 1  # agent 2's command, still waiting for its echo
    assert status.budget is not None and status.budget.limit == 5_000_000 and status.budget.used > 0
    assert status.cursors["cxone"] and status.cursors["salesforce"]
    # The unsharded sync is one shard, 1/1: its row has the lease holder, the lag of all agents, the last tick.
    [row] = status.shards
    assert (str(row.activity.shard), row.activity.holder, row.activity.agents) == ("1/1", "window-7", AGENTS)
    assert row.activity.last_tick_at is not None
    assert row.lag_p95_seconds == {lag.direction: lag.p95_seconds for lag in status.lags}

    await runner.close()
    after = read_status(ctx.store, now=world.clock())
    assert not after.running
    assert [(r.activity.lease_state, r.activity.last_holder) for r in after.shards] == [("free", "window-7")]


async def test_audit_tells_one_agents_story_in_order_by_id_or_email(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    world.pick_cx(3, "Unavailable", "Lunch")
    await world.settle(runner)

    by_email = read_audit(ctx.store, agent="agent3@example.com")
    assert read_audit(ctx.store, agent=str(agent_id(3))) == by_email
    # A poll made in the same millisecond as the pick reads it again (updatedSince includes that
    # millisecond): audited as a duplicate, which is not part of the story.
    assert [(a.direction, a.outcome, a.to_value) for a in by_email if a.outcome != "duplicate"] == [
        ("cxone->salesforce", "write", "Available_for_Chats"),
        ("cxone->salesforce", "echo", "Available_for_Chats"),
        ("cxone->salesforce", "write", "Lunch"),
        ("cxone->salesforce", "echo", "Lunch"),
    ]
    assert all(a.reason for a in by_email)
    assert read_audit(ctx.store, since=world.clock() + timedelta(minutes=1)) == []
    with pytest.raises(StatusError, match="no linked agent is called 'nobody@example.com'"):
        read_audit(ctx.store, agent="nobody@example.com")


def test_since_takes_durations_and_dates() -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert parse_since("15m", now) == now - timedelta(minutes=15)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("1d", now) == now - timedelta(days=1)
    assert parse_since("2026-01-05T09:30", now) == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    with pytest.raises(StatusError, match="write e.g. 15m, 2h, 1d"):
        parse_since("yesterday", now)


async def test_the_status_and_audit_commands_print_tables_and_refuse_bad_input_plainly(world: World, ctx: Context) -> None:
    runner = await world.runner(ctx)
    await world.settle(runner)
    await runner.close()
    config = str(world.config_path)

    status = cli.invoke(app, ["status", config])
    assert status.exit_code == 0, status.output
    assert f"agents linked: {AGENTS}" in status.output and "not running" in status.output
    assert "Salesforce API budget" in status.output
    assert "Shards" in status.output and "1/1" in status.output and "free" in status.output

    bad_shard = cli.invoke(app, ["sync", config, "--shard", "3/2"])
    assert bad_shard.exit_code == 2 and "1/2 ... 2/2" in bad_shard.output and "Traceback" not in bad_shard.output

    audit = cli.invoke(app, ["audit", config, "--agent", "agent1@example.com", "--since", "1h"])
    assert audit.exit_code == 0, audit.output
    assert "Available_for_Chats" in audit.output and "echo" in audit.output

    bad = cli.invoke(app, ["audit", config, "--since", "last tuesday"])
    assert bad.exit_code == 2 and "write e.g. 15m" in bad.output and "Traceback" not in bad.output
