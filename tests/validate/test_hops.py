"""Validation against a running sync: it passes on a healthy setup, and names the broken hop and why."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import suppress

import pytest

from presence_sync.connectors.soql import quote_string
from presence_sync.tasks.sync.status import sync_activity
from presence_sync.tasks.validate import Cause, Hop, ValidationReport, validate_agent, validate_with_sync
from presence_sync.tasks.context import open_context
from presence_sync.tasks.sync.window import run_window
from tests.validate.conftest import TEST_AGENT, Center

HOP_TIMEOUT = 2.0  # a broken hop waits this long before it is diagnosed; a healthy one takes a few sync ticks
SYNC_INTERVAL = 0.2


@pytest.fixture
async def syncing(center: Center) -> AsyncIterator[Center]:
    """A sync window running beside the test, with its own connectors, as a deployed sync would."""
    async with open_context(center.config_path, center.transports()) as ctx:
        window = asyncio.create_task(run_window(ctx, seconds=300, holder="test-window", interval_seconds=SYNC_INTERVAL))
        deadline = time.monotonic() + 30
        while not sync_activity(center.ctx.store).running:
            assert not window.done() and time.monotonic() < deadline, "the sync window did not take its lease"
            await asyncio.sleep(0.05)
        await settle(center)
        yield center
        window.cancel()
        with suppress(asyncio.CancelledError):
            await window


async def settle(center: Center) -> None:
    """Until the sync has carried the seeded states over (Salesforce shows Available_for_Chats)."""
    deadline = time.monotonic() + 30
    while center.salesforce_shows() != "Available_for_Chats":
        assert time.monotonic() < deadline, "the sync did not publish the seeded CXone state"
        await asyncio.sleep(0.05)


def diagnosed(report: ValidationReport, hop: Hop) -> Cause:
    result = next(r for r in report.hops if r.hop is hop)
    assert not result.passed and result.diagnosis is not None, result
    return result.diagnosis.cause


async def test_a_healthy_agent_passes_both_hops_and_is_restored(syncing: Center) -> None:
    before = (syncing.cxone_shows(), syncing.salesforce_shows())
    report = await validate_agent(syncing.ctx, TEST_AGENT, timeout_seconds=10, poll_seconds=0.05)
    assert report.passed, report.headline
    hops = {r.hop: r for r in report.hops}
    assert hops[Hop.SALESFORCE_TO_CXONE].expected == "CXone Unavailable: Break"
    assert hops[Hop.SALESFORCE_TO_CXONE].observed == "CXone Unavailable: Break"
    assert hops[Hop.CXONE_TO_SALESFORCE].expected == "Salesforce Available_for_Chats"
    assert all(hops[h].seconds is not None for h in (Hop.SALESFORCE_TO_CXONE, Hop.CXONE_TO_SALESFORCE))
    assert hops[Hop.RESTORE].passed
    assert (syncing.cxone_shows(), syncing.salesforce_shows()) == before == ("Available:", "Available_for_Chats")


async def test_chosen_states_are_used(syncing: Center) -> None:
    report = await validate_agent(
        syncing.ctx, TEST_AGENT, timeout_seconds=10, poll_seconds=0.05, salesforce_status="Lunch", cxone_state="Unavailable: Break"
    )
    assert report.passed, report.headline
    actions = [r.action for r in report.hops]
    assert actions[:2] == ["presence applier set Salesforce to Lunch", "Agent API set CXone to Unavailable: Break"]
    assert (syncing.cxone_shows(), syncing.salesforce_shows()) == ("Available:", "Available_for_Chats")


async def test_a_closed_console_fails_both_hops_as_such(syncing: Center) -> None:
    syncing.stack.salesforce.set_console(syncing.salesforce_user_id(), False)
    report = await validate_agent(syncing.ctx, TEST_AGENT, timeout_seconds=HOP_TIMEOUT, poll_seconds=0.05)
    assert report.failure is not None and report.failure.hop is Hop.SALESFORCE_TO_CXONE
    assert diagnosed(report, Hop.SALESFORCE_TO_CXONE) is Cause.CONSOLE_CLOSED
    assert report.failure.note == "never applied in Salesforce"
    # The sync did its part for the second hop; its command was lost in the closed console too.
    assert diagnosed(report, Hop.CXONE_TO_SALESFORCE) is Cause.CONSOLE_CLOSED
    assert "the sync's presence command" in report.hops[1].diagnosis.explanation
    assert "validation failed for agent1@example.com at Salesforce → CXone: Salesforce console closed" in report.headline


async def test_an_agent_logged_out_of_cxone_fails_at_once(syncing: Center) -> None:
    syncing.stack.cxone.tenant.set_session(syncing.cxone_agent_id(), False)
    started = time.monotonic()
    report = await validate_agent(syncing.ctx, TEST_AGENT, timeout_seconds=30, poll_seconds=0.05)
    assert diagnosed(report, Hop.SALESFORCE_TO_CXONE) is Cause.CXONE_LOGGED_OUT
    assert diagnosed(report, Hop.CXONE_TO_SALESFORCE) is Cause.CXONE_LOGGED_OUT
    assert "409" in report.failure.diagnosis.explanation
    # Diagnosed from what CXone answers, not by waiting out the 30 s timeout.
    assert time.monotonic() - started < 30


async def test_a_status_the_profile_can_not_use_is_named(syncing: Center) -> None:
    sf = syncing.ctx.salesforce
    [status] = await sf.query("SELECT Id FROM ServicePresenceStatus WHERE DeveloperName = 'On_Break'")
    grants = await sf.query("SELECT Id FROM SetupEntityAccess WHERE SetupEntityId = " + quote_string(status["Id"]))
    for grant in grants:
        await sf.delete("SetupEntityAccess", grant["Id"])
    report = await validate_agent(syncing.ctx, TEST_AGENT, timeout_seconds=HOP_TIMEOUT, poll_seconds=0.05)
    assert diagnosed(report, Hop.SALESFORCE_TO_CXONE) is Cause.NO_PROFILE_ACCESS
    assert "On_Break" in report.failure.diagnosis.fix


async def test_with_sync_a_window_of_its_own_carries_both_hops_and_hands_the_lease_back(center: Center) -> None:
    # The README's sequence: onboard, then validate, with no sync deployment running yet.
    assert not sync_activity(center.ctx.store).running

    report = await validate_with_sync(center.ctx, TEST_AGENT, timeout_seconds=60)

    assert report.passed, report.markdown()
    assert [r.hop for r in report.hops if r.passed][:2] == [Hop.SALESFORCE_TO_CXONE, Hop.CXONE_TO_SALESFORCE]
    assert not sync_activity(center.ctx.store).running  # the window ended with the validation
