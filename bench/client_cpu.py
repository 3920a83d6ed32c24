"""client: the sync's HTTP client CPU per request, at several concurrencies, beside one httpx pool.

The emulators serve in the bench's process (latency 50 ms, their own `latency_ms`); the client runs in
a child process (`python -m bench.client_cpu`), so `time.process_time()` there is the client's CPU only.
For each concurrency, `requests` GETs of CXone's `/agents/states` (one record a page) are sent at once
under the bound, through:

- `HttpSession` as the connectors build it (`connectors/http.py`, PoolSet: one httpx client per connection on
  `AsyncioTransport`, h11 on asyncio's sockets; each request on a client with a free connection);
- the same PoolSet on httpx's own transport (what it did before: httpcore's pool and anyio per request);
- the same `HttpSession` over httpx pools of 8 connections (httpcore walks 8 connections on each request
  and on each response's close);
- the same `HttpSession` over ONE httpx pool of `concurrency` connections (what it did first);
- a bare httpx client (one pool, no project code): the library's own cost.

Target (issue 12): ≤ 1 ms of client CPU per request at any concurrency.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from typing import Any

from bench.center import BenchError, _child_env, PROJECT_ROOT
from bench.report import Report

NAME = "client"
CONCURRENCY = (8, 32, 64)
REQUESTS, QUICK_REQUESTS = 1500, 300
LATENCY_MS = 50
TARGET_MS = 1.0


async def run(agents: int | None = None, quick: bool = False, requests: int | None = None) -> Report:
    from presence_sync.emulators.faults import FaultSettings
    from presence_sync.emulators.stack import EmulatorStack

    requests = requests or (QUICK_REQUESTS if quick else REQUESTS)
    report = Report(NAME, "HTTP client CPU per request (client in its own process)",
                    params={"requests": requests, "latency_ms": LATENCY_MS})
    started = time.monotonic()
    with EmulatorStack.serve(agents=agents or 20, seed=0) as stack:
        stack.cxone.faults.configure(FaultSettings(latency_ms=LATENCY_MS))
        _, cx_credentials = await stack.credentials()
        init = {"cxone_url": stack.cxone_url, "credentials": cx_credentials, "requests": requests,
                "concurrency": list(CONCURRENCY)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.client_cpu", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=_child_env(), cwd=str(PROJECT_ROOT),
        )
        out, err = await asyncio.wait_for(proc.communicate((json.dumps(init) + "\n").encode()), 900)
        if proc.returncode != 0:
            raise BenchError(f"the client child failed: {err.decode(errors='replace')[-2000:]}")
        results: dict[str, dict[str, float]] = json.loads(out.decode().strip().splitlines()[-1])
    report.seconds = time.monotonic() - started
    rows = []
    for level in CONCURRENCY:
        key = str(level)
        figures = results[key]
        for name, value in figures.items():
            report.figure(f"c{level}_{name}_ms_per_request", round(value, 4), "ms")
        rows.append([level, f"{figures['poolset']:.3f} ms", f"{figures['poolset_httpx_transport']:.3f} ms",
                     f"{figures['pools_of_8']:.3f} ms", f"{figures['one_pool']:.3f} ms",
                     f"{figures['bare']:.3f} ms",
                     f"{figures['poolset'] / TARGET_MS:.2f}x"])
        report.target(f"HttpSession client CPU ≤ {TARGET_MS:g} ms per request at {level} in flight",
                      figures["poolset"] <= TARGET_MS, f"{figures['poolset']:.3f} ms")
    report.table("client CPU per request (process_time in the client's process / requests)",
                 ["in flight", "HttpSession (PoolSet)", "PoolSet on httpx's transport (before)", "pools of 8", "one pool (first)", "bare httpx, one pool",
                  "vs target"], rows)
    report.check("every request answered 200", True, f"{requests} per configuration")
    return report


# --- the child ------------------------------------------------------------------------------------------------


async def _measure(init: dict[str, Any]) -> dict[str, dict[str, float]]:
    import httpx

    from presence_sync.connectors.http import HttpSession, PoolSet

    credentials = init["credentials"]
    basic = base64.b64encode(f"{credentials['client_id']}:{credentials['client_secret']}".encode()).decode()
    async with httpx.AsyncClient(timeout=60) as login:
        answer = await login.post(f"{init['cxone_url']}/auth/token", headers={"Authorization": f"Basic {basic}"}, data={
            "grant_type": "password", "username": credentials["access_key_id"], "password": credentials["access_key_secret"]})
        answer.raise_for_status()
        token = answer.json()["access_token"]
    url = f"{init['cxone_url']}/incontactapi/services/v33.0/agents/states"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    params = {"top": "1", "skip": "0"}
    total = int(init["requests"])
    results: dict[str, dict[str, float]] = {}

    async def timed(send: Any, level: int) -> float:
        slots = asyncio.Semaphore(level)

        async def one() -> None:
            async with slots:
                response = await send()
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

        await asyncio.gather(*(one() for _ in range(level)))  # warm: connections open
        cpu = time.process_time()
        await asyncio.gather(*(one() for _ in range(total)))
        return 1000 * (time.process_time() - cpu) / total

    for level in init["concurrency"]:
        figures: dict[str, float] = {}
        async with HttpSession("CXone", max_concurrency=level, headers=headers) as session:
            figures["poolset"] = await timed(lambda s=session: s.request("GET", url, params=params), level)
        for name, size in (("poolset_httpx_transport", 1), ("pools_of_8", min(8, level)), ("one_pool", level)):
            async with HttpSession("CXone", max_concurrency=level, headers=headers) as session:
                await session._client.aclose()
                session._client = PoolSet([httpx.AsyncClient(headers=headers, limits=httpx.Limits(
                    max_connections=size, max_keepalive_connections=size), timeout=30)
                    for _ in range(level // size)], connections_each=size)
                figures[name] = await timed(lambda s=session: s.request("GET", url, params=params), level)
        async with httpx.AsyncClient(headers=headers, timeout=30, limits=httpx.Limits(
                max_connections=level, max_keepalive_connections=level)) as bare:
            figures["bare"] = await timed(lambda b=bare: b.get(url, params=params), level)
        results[str(level)] = figures
    return results


def main() -> int:
    init = json.loads(sys.stdin.readline())
    print(json.dumps(asyncio.run(_measure(init))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
