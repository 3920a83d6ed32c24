"""The component's own logic (PresenceSyncCore.js, under Node) against the real gateway: one protocol.

Node plays the console with a fake Omni toolkit (one status denied by the profile); the gateway runs
in this test's event loop on a loopback port; the test is the sync, on the broker's side.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from presence_sync.connectors.console.broker import CommandOutcome, ConsoleCommand, InProcessBroker, StatusPush
from tests.console.support import DEADLINE, STATUS_BREAK, USER_A, events_until, serve_gateway, settings, token_for

DRIVER = Path(__file__).with_name("console_driver.js")
STATUS_LUNCH = "0N5000000000004CAA"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed (`make test` installs it)")


def node_command() -> list[str]:
    """Node with a WebSocket client: built in from Node 22, behind a flag from 20.10; else skip."""
    assert NODE is not None
    for flags in ([], ["--experimental-websocket"]):
        probe = subprocess.run([NODE, *flags, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
                               capture_output=True, timeout=60)
        if probe.returncode == 0:
            return [NODE, *flags, str(DRIVER)]
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    pytest.skip(f"Node {version} has no WebSocket client (Node 20.10+ with a flag, or 22+)")


async def test_the_component_logic_speaks_the_gateways_protocol() -> None:
    broker = InProcessBroker()
    async with serve_gateway(settings(), broker) as gw:
        process = await asyncio.create_subprocess_exec(
            *node_command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        assert process.stdin is not None and process.stdout is not None
        config = {"url": gw.url, "userId": USER_A, "tokens": [token_for(USER_A) for _ in range(3)],
                  "denied": [STATUS_LUNCH], "names": {STATUS_BREAK[:15]: "On_Break"}}
        process.stdin.write((json.dumps(config) + "\n").encode())
        await process.stdin.drain()
        try:
            async with asyncio.timeout(DEADLINE * 2):
                while json.loads(await process.stdout.readline()).get("state") != "connected":
                    pass
            assert await broker.connected_consoles() == {USER_A: 1}

            await broker.submit([ConsoleCommand.set_status(USER_A, STATUS_BREAK, "On_Break", command_id="to-break",
                                                           timeout=timedelta(seconds=60))])
            first = await events_until(broker, 2)
            outcome = next(event for event in first if isinstance(event, CommandOutcome))
            push = next(event for event in first if isinstance(event, StatusPush))
            assert (outcome.command_id, outcome.outcome) == ("to-break", "applied")
            assert outcome.status is not None and outcome.status.status == "On_Break"
            assert (push.reason, push.command_id) == ("OmniToolkitStatusChange", "to-break")  # ours, recognised

            await broker.submit([ConsoleCommand.set_status(USER_A, STATUS_LUNCH, "Lunch", command_id="to-lunch",
                                                           timeout=timedelta(seconds=60))])
            [denied] = await events_until(broker, 1, after=first[-1].seq)
            assert (denied.outcome, denied.error) == ("failed", "No access to presence status 0N5000000000004")

            manual = {"statusId": STATUS_BREAK[:15], "statusApiName": "On_Break", "reason": "OmniManualStatusChange"}
            process.stdin.write((json.dumps(manual) + "\n").encode())
            await process.stdin.drain()
            [pushed] = await events_until(broker, 1, after=denied.seq)
            assert isinstance(pushed, StatusPush)
            assert (pushed.reason, pushed.command_id, pushed.user_id) == ("OmniManualStatusChange", None, USER_A)
        finally:
            process.stdin.close()
            _, errors = await asyncio.wait_for(process.communicate(), DEADLINE)
        assert process.returncode == 0, errors.decode()
