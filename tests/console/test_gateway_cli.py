"""`presence-sync gateway`: serves the gateway, takes the secret from the environment, never prints it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.console.support import DEADLINE, SECRET, USER_A, Console, token_for

PRESENCE_SYNC = Path(sys.executable).parent / "presence-sync"


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRESENCE_SYNC_GATEWAY_")}
    env.update(extra)
    return env


async def test_the_command_serves_consoles_and_keeps_the_secret_to_itself() -> None:
    process = await asyncio.create_subprocess_exec(
        str(PRESENCE_SYNC), "gateway", "--port", "0",
        env=_env(PRESENCE_SYNC_GATEWAY_SECRET=SECRET.get_secret_value(), COLUMNS="200"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        async with asyncio.timeout(DEADLINE * 3):  # the first import of the CLI is slow on a busy machine
            while not (url := next((m.group(1) for line in output if (m := re.search(r"(ws://\S+/console)", line))), None)):
                line = (await process.stdout.readline()).decode()
                assert line, "".join(output)
                output.append(line)
        async with Console.connect(url, token_for(USER_A)) as console:
            assert (await console.welcomed())["user_id"] == USER_A
            # The client offers permessage-deflate, as browsers do; the gateway declines (no zlib per console).
            assert "Sec-WebSocket-Extensions" not in console.ws.response.headers
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), DEADLINE)
        output.append(rest.decode())
    text = "".join(output)
    assert "1 secret(s) loaded" in text
    assert SECRET.get_secret_value() not in text


def test_a_missing_or_weak_secret_is_a_clear_error() -> None:
    missing = subprocess.run([str(PRESENCE_SYNC), "gateway"], env=_env(), capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert "set PRESENCE_SYNC_GATEWAY_SECRET" in missing.stderr and "Traceback" not in missing.stderr
    weak = subprocess.run([str(PRESENCE_SYNC), "gateway"], env=_env(PRESENCE_SYNC_GATEWAY_SECRET="hunter2-weak"),
                          capture_output=True, text=True, timeout=120)
    assert weak.returncode == 2 and "at least 32" in weak.stderr
    assert "hunter2-weak" not in weak.stderr + weak.stdout
