"""A swarm of emulated agent consoles in one process, for the `consoles` benchmark (bench/consoles.py).

Each console speaks the gateway protocol as the Lightning component does: `hello` with a token minted
for its user, then for every `command` an `ack` (`applied`) and the status change it made; a `ping`
every heartbeat. Run by the benchmark as a child process, so the gateway's figures are its own:

    PRESENCE_SYNC_GATEWAY_SECRET=... python -m bench.console_swarm ws://127.0.0.1:8403/console 10000
    # prints "ready <n>" once every console is welcomed; on stdin's end prints its counts as JSON and exits
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect

from presence_sync.connectors.console.tokens import mint_token

ORG = "00D000000000001EAA"
CONNECTING_AT_ONCE = 200  # the handshakes in flight: a browser fleet reconnecting is spread out as well
TOKEN_LIFETIME = timedelta(minutes=30)


def user_id(n: int) -> str:
    """A 15-character Salesforce User id for console number n."""
    return f"005Bn{n:010d}"


class Swarm:
    def __init__(self, url: str, secret: SecretStr, count: int) -> None:
        self.url, self.secret, self.count = url, secret, count
        self.counts: Counter[str] = Counter()
        self.welcomed = 0
        self.settled = 0  # welcomed, refused or failed to connect
        self.all_welcomed = asyncio.Event()
        self._gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    def _settled(self) -> None:
        self.settled += 1
        if self.settled % 1000 == 0:
            print(f"progress {self.welcomed} welcomed of {self.settled} settled", flush=True)
        if self.settled == self.count:
            self.all_welcomed.set()

    async def console(self, n: int) -> None:
        token = mint_token(self.secret, user_id=user_id(n), org_id=ORG, lifetime=TOKEN_LIFETIME)
        try:
            async with self._gate:
                ws = await connect(self.url, open_timeout=120, ping_interval=None, max_size=2**16)
                await ws.send(json.dumps({"type": "hello", "protocol": 1, "token": token, "client": "BenchSwarm/1"}))
                welcome = json.loads(await ws.recv())
        except Exception as error:  # noqa: BLE001 - refused, reset, timed out: counted, the benchmark checks them
            self.counts[f"connect_failed_{type(error).__name__}"] += 1
            self._settled()
            return
        if welcome.get("type") != "welcome":
            self.counts[f"refused_{welcome.get('type')}"] += 1
            self._settled()
            await ws.close()
            return
        self.welcomed += 1
        self._settled()
        async with ws:
            heartbeat = asyncio.create_task(self._ping(ws, float(welcome.get("heartbeat_seconds", 25))))
            try:
                async for raw in ws:
                    await self._answer(ws, json.loads(raw))
            finally:
                heartbeat.cancel()

    async def _answer(self, ws: ClientConnection, message: dict[str, object]) -> None:
        if message.get("type") != "command":
            return
        self.counts["commands"] += 1
        status = {"status_id": message.get("status_id"), "status": message.get("status"), "label": message.get("status")}
        await ws.send(json.dumps({"type": "ack", "command_id": message["command_id"], "outcome": "applied", "status": status}))
        await ws.send(json.dumps({
            "type": "status_changed", "event": "status_changed", "reason": "OmniToolkitStatusChange", "status": status,
            "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "command_id": message["command_id"],
        }))

    @staticmethod
    async def _ping(ws: ClientConnection, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await ws.send('{"type": "ping"}')


async def main(url: str, count: int) -> None:
    swarm = Swarm(url, SecretStr(os.environ["PRESENCE_SYNC_GATEWAY_SECRET"]), count)
    consoles = [asyncio.create_task(swarm.console(n)) for n in range(count)]
    await swarm.all_welcomed.wait()
    print(f"ready {swarm.welcomed}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the benchmark is done
    for task in consoles:
        task.cancel()
    failed = sum(1 for task in consoles if task.done() and not task.cancelled() and task.exception() is not None)
    print(json.dumps({**swarm.counts, "welcomed": swarm.welcomed, "failed": failed}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
