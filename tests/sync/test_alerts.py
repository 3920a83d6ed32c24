"""The sync's alert events (each under its condition, not in a storm) and the automations that notify on them."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prefect.automations import Automation, DoNothing, SendNotification
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.schemas.events import RelatedResource, Resource
from typer.testing import CliRunner

from presence_sync.cli.main import app
from presence_sync.connectors import ApiUsage
from presence_sync.emulators.salesforce.emulator import OrgUpdate
from presence_sync.engine import Direction, Outcome
from presence_sync.flows.sync_alerts import AUTOMATION_PREFIX, NotificationBlockNotFound, SyncAlerts, install_automations
from presence_sync.models.config import AlertSettings
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.alerts import (
    BUDGET_NEARLY_SPENT,
    CONSOLE_NOT_LISTENING,
    HEARTBEAT,
    LAG_HIGH,
    RECORDS_REJECTED,
    WRITES_GAVE_UP,
    AlertWatch,
    SyncView,
    shard_of,
)
from presence_sync.tasks.sync.budget import PollBudget
from presence_sync.tasks.sync.summary import WindowStats
from tests.sync.support import World
from tests.sync.test_console_channel import console_ctx  # noqa: F401  (a config on the console gateway)
from tests.sync.test_console_channel import tick_until as console_tick_until
from tests.sync.test_sync_stalls import CXONE_STATES, fault

SETTINGS = AlertSettings(repeat_seconds=60, heartbeat_seconds=30, lag_p95_seconds=5, lag_min_samples=3,
                         gave_up_writes=2, console_lost_commands=10, budget_used_fraction=0.75)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def view(stats: WindowStats, **figures: object) -> SyncView:
    return SyncView(**{"held": True, "holder": "sync/run-1", "shard": "2/3", "stats": stats, **figures})  # type: ignore[arg-type]


def test_each_alert_fires_once_its_condition_holds_and_at_most_once_a_period() -> None:
    clock, stats = Clock(), WindowStats()
    watch = AlertWatch(SETTINGS, clock)
    names = lambda **figures: [e.name for e in watch.check(view(stats, **figures))]  # noqa: E731

    assert names() == [HEARTBEAT]  # the first held tick beats at once; nothing is wrong yet
    clock.now = 10
    assert names() == []
    stats.lags_ms[Direction.CXONE_TO_SALESFORCE] += [900.0, 1200.0, 7000.0]  # p95 7 s > 5 s
    stats.outcomes[Direction.SALESFORCE_TO_CXONE][Outcome.GAVE_UP] += 1  # one: below the threshold of 2
    stats.rejected["CXone"] += 1
    busy = {"usage": ApiUsage(used=8_000, limit=10_000), "console_lost": 12, "console_connected": 3, "console_linked": 9}
    assert names(**busy) == [LAG_HIGH, RECORDS_REJECTED, CONSOLE_NOT_LISTENING, BUDGET_NEARLY_SPENT]
    stats.outcomes[Direction.SALESFORCE_TO_CXONE][Outcome.GAVE_UP] += 1
    clock.now = 30
    assert names(**busy) == [HEARTBEAT, WRITES_GAVE_UP]  # the others spoke less than a period ago
    stats.rejected["CXone"] += 1
    clock.now = 71
    events = watch.check(view(stats, **busy))
    # A period later: still slow and spent (levels), one more rejected record; no new lost command.
    assert [e.name for e in events] == [HEARTBEAT, LAG_HIGH, RECORDS_REJECTED, BUDGET_NEARLY_SPENT]
    assert {e.shard for e in events} == {"2/3"}
    assert events[2].payload["count"] == 1 and events[2].payload["by_system"] == {"CXone": 2}
    assert watch.check(view(stats, held=False)) == []  # a window waiting for the lease says nothing


def test_counts_below_the_threshold_age_out_after_a_period() -> None:
    clock, stats = Clock(), WindowStats()
    watch = AlertWatch(SETTINGS, clock)
    stats.outcomes[Direction.CXONE_TO_SALESFORCE][Outcome.GAVE_UP] = 1
    assert WRITES_GAVE_UP not in [e.name for e in watch.check(view(stats))]
    clock.now = 61  # a quiet period: its one write given up is forgotten
    stats.outcomes[Direction.CXONE_TO_SALESFORCE][Outcome.GAVE_UP] = 2
    assert WRITES_GAVE_UP not in [e.name for e in watch.check(view(stats))]
    stats.outcomes[Direction.CXONE_TO_SALESFORCE][Outcome.GAVE_UP] = 3
    assert WRITES_GAVE_UP in [e.name for e in watch.check(view(stats))]


def test_the_shard_is_the_leases() -> None:
    assert [shard_of(name) for name in ("sync", "sync:2/3", "sync:")] == ["all", "2/3", "all"]


class Sent(list[Event]):
    """What `emit_event` was called with, as Prefect's own events (validated by its schema)."""

    def __call__(self, event: str, resource: dict[str, str], payload: dict[str, Any]) -> None:
        self.append(Event(event=event, resource=resource, payload=payload))


async def test_a_running_sync_emits_each_event_under_its_fault(world: World, ctx: Context) -> None:
    clock, events = Clock(), Sent()
    settings = AlertSettings(repeat_seconds=10, lag_p95_seconds=0.001, lag_min_samples=1, gave_up_writes=1,
                             budget_used_fraction=0.01)
    alerts = SyncAlerts(settings, monotonic=clock, emit=events)
    runner = await world.runner(ctx)
    policy = runner.policy

    async def tick_until(name: str, limit: int = 40, seconds: float = 1.0) -> None:
        for _ in range(limit):
            await world.ticks(runner, 1, seconds)
            clock.now += 11  # every tick a new period: whatever is due goes out
            await alerts.after_tick(runner)
            if name in alerts.emitted:
                return
        raise AssertionError(f"no {name} event within {limit} ticks")

    await tick_until(HEARTBEAT, limit=1)
    world.pick_cx(1, "Unavailable", "Break")
    await tick_until(LAG_HIGH)  # the change's echo timed: its lag is above 1 ms
    assert alerts.emitted.count(RECORDS_REJECTED) == 0
    fault(world, "cxone", path=CXONE_STATES, count=1, field="agentStateName", value="OnFire", kind="malformed_record")
    world.pick_cx(2, "Unavailable", "Break")
    await tick_until(RECORDS_REJECTED)
    world.stack.salesforce.configure_org(OrgUpdate(api_daily_limit=2_000))
    await tick_until(BUDGET_NEARLY_SPENT)
    world.stack.salesforce.set_console(world.sf_user(3), open=False)
    world.pick_cx(3, "Unavailable", "Break")
    await tick_until(WRITES_GAVE_UP, limit=4 * policy.max_attempts, seconds=policy.echo_timeout_seconds)
    await runner.close()

    assert [e.event for e in events] == alerts.emitted
    assert Counter(e.event for e in events)[RECORDS_REJECTED] == 1
    assert {e.resource.id for e in events} == {"presence-sync.sync.all"}
    assert {e.resource["presence-sync.shard"] for e in events} == {"all"}
    secrets = [v.get_secret_value() for v in (ctx.config.cxone.access_key_secret, ctx.config.salesforce.auth.password)
               if v is not None]
    assert not any(secret in e.model_dump_json() for e in events for secret in secrets)


@pytest.mark.prefect
async def test_alerts_install_creates_the_automations_once_and_attaches_a_named_block(
    prefect_harness: None, tmp_path: Path, world: World
) -> None:
    result = await asyncio.to_thread(CliRunner().invoke, app, ["alerts", "install", str(world.config_path)])
    assert result.exit_code == 0, result.output
    assert "placeholder" in result.output
    assert result.output.count(" created ") == 7, result.output
    settings = AlertSettings()
    ops = CustomWebhookNotificationBlock(name="ops", url="http://127.0.0.1:9/alerts", json_data={"text": "{{body}}"})
    await ops.asave("presence-sync-ops", overwrite=True)
    installed = await install_automations(settings, block="custom-webhook/presence-sync-ops")
    assert [done for _, done in installed] == ["updated"] * 7  # matched by name: never twice
    async with get_client() as client:
        copies = [len(await client.read_automations_by_name(a.name)) for a, _ in installed]
    assert copies == [1] * 7
    for automation, _ in installed:
        stored = await Automation.aread(name=automation.name)
        assert stored.id == automation.id and stored.enabled
        assert [type(a) for a in stored.actions] == [SendNotification]
    heartbeat = await Automation.aread(name=f"{AUTOMATION_PREFIX}no sync holds the lease")
    assert heartbeat.trigger.posture == "Proactive" and heartbeat.trigger.expect == {HEARTBEAT}  # type: ignore[attr-defined]
    assert heartbeat.trigger.within.total_seconds() == settings.no_holder_seconds  # type: ignore[attr-defined]
    failed = await Automation.aread(name=f"{AUTOMATION_PREFIX}sync window failed or crashed")
    assert failed.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}  # type: ignore[attr-defined]

    placeholder = await install_automations(settings, block=None)
    assert all(type(a.actions[0]) is DoNothing for a, _ in placeholder)
    by_name = await install_automations(settings, block="presence-sync-ops")  # the name alone finds it too
    assert all(type(a.actions[0]) is SendNotification for a, _ in by_name)
    with pytest.raises(NotificationBlockNotFound, match="Blocks"):
        await install_automations(settings, block="slack-webhook/nobody")


async def server_events(names: list[str], resource_id: str) -> list[dict[str, Any]]:
    """The events the Prefect server stored (it writes them in the background: waits for the first)."""
    found: list[dict[str, Any]] = []
    async with get_client() as client:
        for _ in range(120):
            response = await client._client.post("/events/filter", json={
                "filter": {"event": {"name": names}, "resource": {"id": [resource_id]}},
            })
            found = response.json()["events"]
            if found:
                break
            await asyncio.sleep(0.5)
    return found


@pytest.mark.prefect
async def test_a_shards_heartbeat_reaches_the_prefect_server_as_the_shards_resource(prefect_harness: None) -> None:
    window = SimpleNamespace(held=True, holder="sync/run-7", lease_name="sync:2/3", stats=WindowStats(),
                             budget=PollBudget(1.0, 0.2), console=None)
    await SyncAlerts(AlertSettings()).after_tick(window)  # type: ignore[arg-type]  (what SyncView reads of a runner)
    [event] = await server_events([HEARTBEAT], "presence-sync.sync.2/3")
    assert event["resource"]["presence-sync.shard"] == "2/3" and event["payload"]["holder"] == "sync/run-7"


@pytest.mark.prefect
async def test_a_failed_sync_window_is_the_event_the_failed_or_crashed_automation_expects(
    prefect_harness: None, tmp_path: Path
) -> None:
    from presence_sync.flows.sync import sync
    from presence_sync.flows.sync_alerts import alert_rules

    missing = tmp_path / "missing.yaml"
    state = await sync(str(missing), seconds=1, return_state=True)
    assert state.is_failed()
    trigger = alert_rules(AlertSettings())[0].trigger
    found = await server_events(sorted(trigger.expect), f"prefect.flow-run.{state.state_details.flow_run_id}")
    assert [event["event"] for event in found] == ["prefect.flow-run.Failed"]
    flows = [r for r in found[0]["related"] if r["prefect.resource.role"] == "flow"]
    assert [r["prefect.resource.name"] for r in flows] == ["sync"]
    assert trigger.match.matches(Resource(found[0]["resource"]))
    assert trigger.match_related.includes([RelatedResource(r) for r in found[0]["related"]])  # type: ignore[union-attr]


async def test_commands_no_console_takes_raise_the_consoles_not_listening_event(
    world: World, console_ctx: Context  # noqa: F811
) -> None:
    events = Sent()
    alerts = SyncAlerts(AlertSettings(console_lost_commands=3), emit=events)
    runner = await world.runner(console_ctx)  # no agent's console connects to the gateway
    assert runner.console is not None
    source = runner.console.source
    await console_tick_until(world, runner, lambda: source.lost >= 3, "three commands lost")
    await alerts.after_tick(runner)
    await runner.close()
    [event] = [e for e in events if e.event == CONSOLE_NOT_LISTENING]
    assert event.payload["lost_commands"] >= 3 and event.payload["connected_agents"] == 0
    assert event.payload["linked_agents"] == len(source.agents_by_user) > 0
