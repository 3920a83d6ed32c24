"""The sync's alerts on Prefect: its events (`prefect.events.emit_event`) and the automations that notify on them.

`SyncAlerts.after_tick` is the sync window's hook: the events `AlertWatch` finds due, each about the
shard's resource (`presence-sync.sync.<shard>`, or `.all`). `install_automations` creates (or
updates, by name) one automation per alert, each with a send-notification action to the named
notification block; without a block, a do-nothing placeholder the admin replaces by rerunning with one.

    alerts = SyncAlerts(config.sync.alerts)
    await run_window(ctx, ..., after_tick=alerts.after_tick)
    installed = await install_automations(config.sync.alerts, block="slack-webhook/ops")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.automations import Automation, DoNothing, EventTrigger, Posture, SendNotification
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.exceptions import ObjectNotFound

from presence_sync.models.config import AlertSettings
from presence_sync.tasks.sync.alerts import (
    BUDGET_NEARLY_SPENT,
    CONSOLE_NOT_LISTENING,
    HEARTBEAT,
    LAG_HIGH,
    RECORDS_REJECTED,
    RESOURCE_PREFIX,
    SHARD_LABEL,
    WRITES_GAVE_UP,
    AlertWatch,
    SyncView,
    sync_resource,
)
from presence_sync.tasks.sync.runner import SyncRunner

AUTOMATION_PREFIX = "presence-sync: "
SYNC_FLOW_NAME = "sync"
_SHARD = f"{{{{ event.resource['{SHARD_LABEL}'] }}}}"
_MESSAGE = "{{ event.payload.message }}"


@dataclass
class SyncAlerts:
    """Emits the alert events of one sync window (`after_tick`); `shard` defaults to the lease's."""

    settings: AlertSettings
    shard: str | None = None
    monotonic: Callable[[], float] = time.monotonic
    emit: Callable[..., Any] = emit_event  # prefect.events.emit_event's signature
    emitted: list[str] = field(default_factory=list)  # event names, in order
    watch: AlertWatch = field(init=False)

    def __post_init__(self) -> None:
        self.watch = AlertWatch(self.settings, self.monotonic)

    async def after_tick(self, runner: SyncRunner) -> None:
        for event in self.watch.check(SyncView.of(runner, self.shard)):
            self.emit(event.name, resource=sync_resource(event.shard), payload=event.payload)
            self.emitted.append(event.name)


class NotificationBlockNotFound(LookupError):
    """The block named for the notifications does not exist, or cannot send notifications."""


@dataclass(frozen=True)
class AlertRule:
    """One automation: its title, the trigger, and the notification's subject and body."""

    title: str
    trigger: EventTrigger
    subject: str
    body: str

    @property
    def name(self) -> str:
        return f"{AUTOMATION_PREFIX}{self.title}"


def _on(event: str) -> EventTrigger:
    return EventTrigger(
        expect={event}, match={"prefect.resource.id": f"{RESOURCE_PREFIX}*"}, for_each={"prefect.resource.id"},
        posture=Posture.Reactive, threshold=1, within=timedelta(0),
    )


def alert_rules(settings: AlertSettings) -> list[AlertRule]:
    """The automations `alerts install` creates, thresholds from the config's `sync.alerts`."""
    quiet = int(settings.no_holder_seconds)
    return [
        AlertRule(
            "sync window failed or crashed",
            EventTrigger(
                expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                match={"prefect.resource.id": "prefect.flow-run.*"},
                match_related={"prefect.resource.role": "flow", "prefect.resource.name": SYNC_FLOW_NAME},
                posture=Posture.Reactive, threshold=1, within=timedelta(0),
            ),
            "presence-sync: a sync window {{ flow_run.state.name }}",
            "Sync window {{ flow_run.name }} ended {{ flow_run.state.name }}: {{ flow_run.state.message }}",
        ),
        AlertRule(
            "no sync holds the lease",
            EventTrigger(
                expect={HEARTBEAT}, match={"prefect.resource.id": f"{RESOURCE_PREFIX}*"},
                for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
                within=timedelta(seconds=quiet),
            ),
            "presence-sync: no sync window is running",
            f"No sync window has held the lease for {quiet} s ({{{{ automation.name }}}}): agents' states are "
            "not synced. Check the sync deployment's runs and its worker.",
        ),
        AlertRule(
            "propagation lag p95 over the threshold", _on(LAG_HIGH),
            f"presence-sync: sync {_SHARD} is slow", _MESSAGE,
        ),
        AlertRule("writes given up", _on(WRITES_GAVE_UP), f"presence-sync: writes given up ({_SHARD})", _MESSAGE),
        AlertRule(
            "malformed records rejected", _on(RECORDS_REJECTED), f"presence-sync: records rejected ({_SHARD})", _MESSAGE,
        ),
        AlertRule(
            "consoles not listening", _on(CONSOLE_NOT_LISTENING),
            f"presence-sync: Salesforce consoles not listening ({_SHARD})", _MESSAGE,
        ),
        AlertRule(
            "Salesforce API budget nearly spent", _on(BUDGET_NEARLY_SPENT),
            "presence-sync: Salesforce API budget nearly spent", _MESSAGE,
        ),
    ]


async def notification_block_id(block: str) -> UUID:
    """The id of a notification block named `TYPE/NAME` (e.g. `slack-webhook/ops`) or by its name alone."""
    async with get_client() as client:
        if "/" in block:
            slug, _, name = block.partition("/")
            try:
                document = await client.read_block_document_by_name(name, slug)
            except ObjectNotFound:
                raise NotificationBlockNotFound(_no_block(block)) from None
            found = [document]
        else:
            found = [d for d in await client.read_block_documents() if d.name == block]
        usable = [d for d in found if d.block_schema is None or "notify" in d.block_schema.capabilities]
    if not found:
        raise NotificationBlockNotFound(_no_block(block))
    if not usable:
        raise NotificationBlockNotFound(f"the block {block!r} cannot send notifications; {_HOW_TO_BLOCK}")
    if len(usable) > 1:
        names = ", ".join(f"{d.block_type.slug}/{d.name}" for d in usable if d.block_type is not None)
        raise NotificationBlockNotFound(f"several notification blocks are named {block!r} ({names}); name one as TYPE/NAME")
    assert usable[0].id is not None
    return usable[0].id


_HOW_TO_BLOCK = (
    "create one in the Prefect UI (Blocks -> + -> e.g. Slack Webhook, Email, Microsoft Teams Webhook) "
    "and pass it as --block TYPE/NAME, e.g. --block slack-webhook/presence-sync-ops"
)


def _no_block(block: str) -> str:
    return f"Prefect has no block {block!r}; {_HOW_TO_BLOCK}"


async def install_automations(settings: AlertSettings, block: str | None) -> list[tuple[Automation, str]]:
    """Create or update (matched by name) every alert automation; returns each with "created"/"updated"."""
    block_id = await notification_block_id(block) if block is not None else None
    installed: list[tuple[Automation, str]] = []
    for rule in alert_rules(settings):
        action = (
            SendNotification(block_document_id=block_id, subject=rule.subject, body=rule.body)
            if block_id is not None else DoNothing()
        )
        automation = Automation(
            name=rule.name,
            description=(
                f"presence-sync alert ({'notifies ' + block if block else 'placeholder: no notification block yet'}); "
                "made by `presence-sync alerts install`, which updates it"
            ),
            enabled=True, trigger=rule.trigger, actions=[action],
        )
        try:
            existing = await Automation.aread(name=rule.name)
        except ValueError:
            installed.append((await automation.acreate(), "created"))
            continue
        automation.id = existing.id
        await automation.aupdate()
        installed.append((automation, "updated"))
    return installed
