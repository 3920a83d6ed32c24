"""Validation refuses to start, changing nothing, when it can already tell why it would fail."""

from __future__ import annotations

from presence_sync.tasks.validate import Cause, Hop, validate_agent
from tests.validate.conftest import TEST_AGENT, Center


def hold_sync_lease(center: Center) -> None:
    """What a running sync window does first (the validation only checks that someone holds it)."""
    assert center.ctx.store.leases.acquire("sync", "a-running-sync-window", ttl_seconds=600) is not None


async def test_an_agent_nobody_linked_is_named(center: Center) -> None:
    hold_sync_lease(center)
    report = await validate_agent(center.ctx, "nobody@example.com", timeout_seconds=1)
    assert not report.passed
    assert report.failure is not None and report.failure.hop is Hop.PREFLIGHT
    assert report.failure.diagnosis.cause is Cause.NOT_LINKED
    assert "'nobody@example.com'" in report.failure.diagnosis.explanation
    assert center.commands_published() == 0


async def test_without_a_running_sync_nothing_is_changed(center: Center) -> None:
    before = (center.cxone_shows(), center.salesforce_shows())
    report = await validate_agent(center.ctx, TEST_AGENT, timeout_seconds=1)
    assert report.failure is not None and report.failure.diagnosis.cause is Cause.SYNC_NOT_RUNNING
    assert "presence-sync sync CONFIG" in report.failure.diagnosis.fix
    assert "--with-sync" in report.failure.diagnosis.fix
    assert [row["result"] for row in report.rows()] == ["FAILED", "skipped", "skipped"]
    assert center.commands_published() == 0
    assert (center.cxone_shows(), center.salesforce_shows()) == before


async def test_an_expired_lease_is_a_stopped_sync(center: Center) -> None:
    lease = center.ctx.store.leases.acquire("sync", "an-old-window", ttl_seconds=600)
    center.ctx.store.leases.release(lease)
    report = await validate_agent(center.ctx, str(center.cxone_agent_id()), timeout_seconds=1)
    assert report.failure is not None and report.failure.diagnosis.cause is Cause.SYNC_NOT_RUNNING


async def test_an_agent_on_a_call_is_left_alone(center: Center) -> None:
    hold_sync_lease(center)
    tenant, agent_id = center.stack.cxone.tenant, center.cxone_agent_id()
    tenant.contact(agent_id, "offer")
    tenant.contact(agent_id, "accept")
    report = await validate_agent(center.ctx, TEST_AGENT, timeout_seconds=1)
    assert report.failure is not None and report.failure.diagnosis.cause is Cause.ON_CONTACT
    assert "InboundContact" in report.failure.diagnosis.explanation
    assert center.commands_published() == 0
    assert center.cxone_shows() == "InboundContact:"


async def test_a_state_the_rule_does_not_publish_can_not_be_validated(center: Center) -> None:
    hold_sync_lease(center)
    report = await validate_agent(center.ctx, TEST_AGENT, timeout_seconds=1, cxone_state="Unavailable")
    assert report.failure is not None and report.failure.diagnosis.cause is Cause.UNMAPPED
    assert "no publisher row" in report.failure.diagnosis.explanation
    assert center.commands_published() == 0


async def test_a_system_managed_state_can_not_be_set(center: Center) -> None:
    hold_sync_lease(center)
    report = await validate_agent(center.ctx, TEST_AGENT, timeout_seconds=1, cxone_state="ACW")
    assert report.failure is not None and report.failure.diagnosis.cause is Cause.UNMAPPED
    assert "system-managed" in report.failure.diagnosis.explanation


async def test_a_window_taking_over_from_the_last_counts_as_running(center: Center) -> None:
    """The next window waits for the lease before the last ends, and is handed it on release: no gap."""
    leases = center.ctx.store.leases
    ended = leases.acquire("sync", "the-last-window", ttl_seconds=600)
    assert ended is not None
    assert leases.acquire("sync", "the-next-window", ttl_seconds=600) is None  # waiting: next in line
    leases.release(ended)

    report = await validate_agent(center.ctx, TEST_AGENT, timeout_seconds=1.5, poll_seconds=0.05)
    assert report.failure is None or report.failure.diagnosis.cause is not Cause.SYNC_NOT_RUNNING, report.failure
    assert center.commands_published() > 0  # it went on to set the test agent's status
