"""Fault injection and request statistics shared by both emulators.

Each emulator app wraps itself in :class:`FaultMiddleware`, giving it an error formatter so that an
injected error looks like that system's own errors (Salesforce answers a JSON array, CXone an object).
Decisions come from one seeded random source, so a run with the same seed and the same request order
sees the same faults.

    faults = FaultInjector(seed=7)
    app.add_middleware(FaultMiddleware, injector=faults, error_body=salesforce_error_body)
    faults.configure(FaultSettings(error_rate=0.1, error_status=503))
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from starlette.routing import Match
from pydantic import BaseModel, Field

CONTROL_PREFIX = "/__emulator/"

ErrorBody = Callable[[int, str], Any]
"""Builds the JSON body of an injected error: (status, message) -> body in the system's shape."""


class FaultSettings(BaseModel):
    """What `PUT /__emulator/faults` accepts (apis.md, "The emulators' own controls")."""

    latency_ms: int = Field(0, ge=0, le=60_000)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    error_status: int = Field(503, ge=400, le=599)
    rate_limit_per_s: float | None = Field(None, gt=0)
    drop_rate: float = Field(0.0, ge=0.0, le=1.0)
    token_ttl_s: int | None = Field(None, gt=0)


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised inside the app to cut the connection.

    In-process (httpx's ASGI transport) the client sees this very error, as it would see a
    `RemoteProtocolError` from a real peer hanging up; under uvicorn the response has started, so the
    server can only close the socket, and the client sees the same thing over the wire.
    """


FaultKind = Literal["none", "error", "rate_limited", "drop_before", "drop_after"]


@dataclass
class FaultDecision:
    kind: FaultKind = "none"
    latency_s: float = 0.0
    retry_after_s: int = 0


@dataclass
class RequestStats:
    """Request counts by method and route template, plus the faults that were injected."""

    by_route: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)

    def snapshot(self, clock_now: datetime) -> dict[str, Any]:
        writes = sum(n for key, n in self.by_route.items() if is_write(key))
        return {
            "requests": dict(sorted(self.by_route.items())),
            "total_requests": sum(self.by_route.values()),
            "write_requests": writes,
            "errors_injected": dict(sorted(self.injected.items())),
            "clock": clock_now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POSTs that change nothing in the org or tenant: logging in. A dry run logs in, and still writes nothing.
LOGIN_ROUTES = frozenset({"POST /services/oauth2/token", "POST /auth/token"})


def is_write(route_key: str) -> bool:
    """Whether a "METHOD /route/template" key is a request that may change the system's data."""
    return route_key.split(" ", 1)[0] in WRITE_METHODS and route_key not in LOGIN_ROUTES


class FaultInjector:
    """Seeded fault decisions plus the stats of the requests it has seen.

    Thread-safe: the emulators may be served from a background thread while tests read stats.
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self.stats = RequestStats()
        self._seed = seed
        self._rng = random.Random(seed)
        self._bucket_tokens = 0.0
        self._bucket_at = time.monotonic()

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings
            # Same seed, same settings -> same sequence of faults from here on.
            self._rng = random.Random(self._seed)
            self._bucket_tokens = settings.rate_limit_per_s or 0.0
            self._bucket_at = time.monotonic()

    def reset(self, seed: int | None = None) -> None:
        with self._lock:
            if seed is not None:
                self._seed = seed
            self.settings = FaultSettings()
            self.stats = RequestStats()
            self._rng = random.Random(self._seed)

    def decide(self) -> FaultDecision:
        with self._lock:
            s = self.settings
            decision = FaultDecision(latency_s=s.latency_ms / 1000)
            if s.rate_limit_per_s is not None:
                now = time.monotonic()
                self._bucket_tokens = min(
                    s.rate_limit_per_s, self._bucket_tokens + (now - self._bucket_at) * s.rate_limit_per_s
                )
                self._bucket_at = now
                if self._bucket_tokens < 1.0:
                    wait = (1.0 - self._bucket_tokens) / s.rate_limit_per_s
                    decision.kind = "rate_limited"
                    decision.retry_after_s = max(1, math.ceil(wait))
                    self.stats.injected["rate_limited"] += 1
                    return decision
                self._bucket_tokens -= 1.0
            # Draw both numbers every time so one setting does not shift the other's sequence.
            drop_draw, error_draw, half = self._rng.random(), self._rng.random(), self._rng.random()
            if drop_draw < s.drop_rate:
                decision.kind = "drop_after" if half < 0.5 else "drop_before"
                self.stats.injected[decision.kind] += 1
            elif error_draw < s.error_rate:
                decision.kind = "error"
                self.stats.injected[f"status_{s.error_status}"] += 1
            return decision

    def count(self, method: str, route: str) -> None:
        with self._lock:
            self.stats.by_route[f"{method} {route}"] += 1


class FaultMiddleware:
    """Pure ASGI middleware: injects faults on the system's surface, never on `/__emulator/`."""

    def __init__(self, app: Callable[..., Awaitable[None]], injector: FaultInjector, error_body: ErrorBody) -> None:
        self.app = app
        self.injector = injector
        self.error_body = error_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        decision = self.injector.decide()
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        try:
            if decision.kind == "rate_limited":
                await _send_json(
                    send,
                    429,
                    self.error_body(429, "Too many requests: retry after the delay given in Retry-After."),
                    [(b"retry-after", str(decision.retry_after_s).encode())],
                )
                return
            if decision.kind == "error":
                status = self.injector.settings.error_status
                headers = [(b"retry-after", b"1")] if status in (429, 503) else []
                await _send_json(send, status, self.error_body(status, "Injected fault: service unavailable."), headers)
                return
            if decision.kind == "drop_before":
                await _drop(send)
            if decision.kind == "drop_after":
                # The request is handled (its effects happen) but the answer never arrives.
                await self.app(scope, receive, _discard)
                await _drop(send)
            await self.app(scope, receive, send)
        finally:
            self.injector.count(scope["method"], _route_template(scope))


def _route_template(scope: dict[str, Any]) -> str:
    """`/sobjects/{sobject}/{record_id}` rather than the concrete path, also for requests we faulted
    before routing (Starlette puts the app in the scope ahead of its middleware)."""
    app = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return getattr(route, "path", scope["path"])
    return scope["path"]


async def _send_json(send: Any, status: int, body: Any, headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            + headers,
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _discard(message: Any) -> None:
    return None


async def _drop(send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]}
    )
    raise DroppedConnection("Server disconnected without sending a complete response (injected fault).")


class EmulatorClock:
    """The emulators' notion of now: UTC, millisecond precision like both real APIs.

    Tests may replace `now` to control time; `advance` shifts it for token-expiry scenarios.
    """

    def __init__(self) -> None:
        self._offset_s = 0.0

    def now(self) -> datetime:
        ts = datetime.now(UTC).timestamp() + self._offset_s
        return datetime.fromtimestamp(math.floor(ts * 1000) / 1000, UTC)

    def advance(self, seconds: float) -> None:
        self._offset_s += seconds


def iso_z(moment: datetime) -> str:
    """`2026-11-25T10:00:00.000Z`, the timestamp format both APIs use."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
