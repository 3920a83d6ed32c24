"""Both emulators together, in-process (tests) or on loopback (demo, `presence-sync emulate`).

    stack = EmulatorStack.in_process(agents=20)
    salesforce, cxone = stack.transports()    # ASGI transports: clients reach the apps without sockets

    with EmulatorStack.serve(agents=200) as stack:   # real HTTP on 127.0.0.1
        print(stack.salesforce_url, stack.cxone_url)
        await stack.credentials()                    # the seeded fake credentials of both

Nothing here knows the product: a config for the stack is written by the product's side
(models/config/render.py), which reads the stack's URLs and credentials.

Salesforce tells its hosts apart by name (apis.md): `127.0.0.1:{port}` is the generic login host and
`localhost:{port}` the org's My Domain, one server under two names.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from presence_sync.emulators.cxone.app import create_app as create_cxone_app
from presence_sync.emulators.cxone.options import CxoneEmulatorOptions
from presence_sync.emulators.demo_center import DEFAULT_AGENT_COUNT
from presence_sync.emulators.salesforce.app import create_app as create_salesforce_app
from presence_sync.emulators.salesforce.options import SalesforceEmulatorOptions
from presence_sync.emulators.server import RunningServer, start_in_thread

# Nominal ports of the in-process stack: nothing listens, they only make the URLs look like loopback.
IN_PROCESS_SALESFORCE_PORT = 8401
IN_PROCESS_CXONE_PORT = 8402


@dataclass
class EmulatorStack:
    salesforce_app: FastAPI
    cxone_app: FastAPI
    salesforce_url: str
    salesforce_my_domain_url: str
    cxone_url: str
    in_process: bool
    _servers: list[RunningServer] = field(default_factory=list, repr=False)

    @staticmethod
    def build_apps(
        *,
        agents: int = DEFAULT_AGENT_COUNT,
        seed: int = 0,
        apply_delay_ms: int = 0,
        salesforce: dict[str, Any] | None = None,
        cxone: dict[str, Any] | None = None,
    ) -> tuple[FastAPI, FastAPI]:
        sf_options = SalesforceEmulatorOptions(
            agents=agents, seed=seed, default_apply_delay_ms=apply_delay_ms, **(salesforce or {})
        )
        cx_options = CxoneEmulatorOptions(agents=agents, seed=seed, **(cxone or {}))
        return create_salesforce_app(sf_options), create_cxone_app(cx_options)

    @classmethod
    def in_process(cls, **options: Any) -> EmulatorStack:
        """Both apps in this process; clients reach them through the ASGI `transports()`."""
        sf_app, cx_app = cls.build_apps(**options)
        return cls(
            salesforce_app=sf_app,
            cxone_app=cx_app,
            salesforce_url=f"http://127.0.0.1:{IN_PROCESS_SALESFORCE_PORT}",
            salesforce_my_domain_url=f"http://localhost:{IN_PROCESS_SALESFORCE_PORT}",
            cxone_url=f"http://127.0.0.1:{IN_PROCESS_CXONE_PORT}",
            in_process=True,
        )

    @classmethod
    @contextmanager
    def serve(
        cls,
        *,
        host: str = "127.0.0.1",
        salesforce_port: int = 0,
        cxone_port: int = 0,
        **options: Any,
    ) -> Iterator[EmulatorStack]:
        """Both apps under uvicorn on `host` (port 0: any free port) until the block ends."""
        sf_app, cx_app = cls.build_apps(**options)
        servers: list[RunningServer] = []
        try:
            servers.append(start_in_thread(sf_app, host, salesforce_port))
            servers.append(start_in_thread(cx_app, host, cxone_port))
            sf, cx = servers
            my_domain_host = "localhost" if host in ("127.0.0.1", "localhost") else host
            yield cls(
                salesforce_app=sf_app,
                cxone_app=cx_app,
                salesforce_url=f"http://{host}:{sf.port}",
                salesforce_my_domain_url=f"http://{my_domain_host}:{sf.port}",
                cxone_url=f"http://{host}:{cx.port}",
                in_process=False,
                _servers=servers,
            )
        finally:
            for server in reversed(servers):
                server.stop()

    def serving_cpu_seconds(self) -> dict[str, float]:
        """CPU time each served emulator's thread has used so far, by system (empty in-process)."""
        if not self._servers:
            return {}
        salesforce, cxone = self._servers
        return {"salesforce": salesforce.cpu_seconds(), "cxone": cxone.cpu_seconds()}

    @property
    def salesforce(self) -> Any:
        """The Salesforce emulator's in-process control object (set_presence, set_console, ...)."""
        return self.salesforce_app.state.emulator

    @property
    def cxone(self) -> Any:
        """The CXone emulator's in-process control object (`.tenant.set_state`, `.tenant.contact`, ...)."""
        return self.cxone_app.state.emulator

    def transports(self) -> tuple[httpx.AsyncBaseTransport | None, httpx.AsyncBaseTransport | None]:
        """ASGI transports for an in-process stack; None (real sockets) for a served one."""
        if not self.in_process:
            return None, None
        return httpx.ASGITransport(app=self.salesforce_app), httpx.ASGITransport(app=self.cxone_app)

    def salesforce_http(self) -> httpx.AsyncClient:
        """A raw client for the Salesforce emulator (its `/__emulator/` controls, or API checks)."""
        return httpx.AsyncClient(transport=self.transports()[0], base_url=self.salesforce_url, timeout=30)

    def cxone_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transports()[1], base_url=self.cxone_url, timeout=30)

    async def credentials(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The seeded fake credentials of both emulators, as their `/__emulator/credentials` give them."""
        async with self.salesforce_http() as sf, self.cxone_http() as cx:
            sf_answer, cx_answer = await sf.get("/__emulator/credentials"), await cx.get("/__emulator/credentials")
        sf_answer.raise_for_status()
        cx_answer.raise_for_status()
        return sf_answer.json(), cx_answer.json()
