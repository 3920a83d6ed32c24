"""Fault injection and request statistics shared by both emulators.

Each emulator app wraps itself in :class:`FaultMiddleware`, giving it an error formatter so that an
injected error looks like that system's own errors (Salesforce answers a JSON array, CXone an object).
Two sorts of faults, both set with `PUT /__emulator/faults` (`FaultSettings`):

- *weather*: rates (`error_rate`, `drop_rate`, `rate_limit_per_s`, `latency_ms`) drawn per request from
  one seeded random source, so a run with the same seed and the same request order sees the same faults;
- *targeted*: each entry of `targeted` hits the next `count` requests whose path matches its `path`
  pattern (and `method`), then is spent: an error (JSON or a load balancer's HTML page), a dropped
  connection before or after the request took effect, a silent server, a body that trickles, an
  oversized body, and, on list answers, short pages or one malformed record among good ones.

    faults = FaultInjector(seed=7)
    app.add_middleware(FaultMiddleware, injector=faults, error_body=salesforce_error_body)
    faults.configure(FaultSettings(error_rate=0.1, error_status=503))
    faults.configure(FaultSettings(targeted=[SlowBodyFault(kind="slow_body", path="*/agents/states", bytes_per_s=1)]))

Transport-level faults are applied here; list-content faults (`short_pages`, `malformed_record`) are
handed to the route in the request's state (`targeted_fault`), since only the route knows its records.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Match

CONTROL_PREFIX = "/__emulator/"

ErrorBody = Callable[[int, str], Any]
"""Builds the JSON body of an injected error: (status, message) -> body in the system's shape."""


class _Targeted(BaseModel):
    """Which requests a targeted fault hits: the next `count` whose path and method match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field("*", description="shell-style pattern on the request path, e.g. `*/agents/states`; `*`: every path")
    method: str | None = Field(None, description="only requests with this method, e.g. `POST`; null: any method")
    count: int | None = Field(1, ge=1, description="how many matching requests it hits; null: every one until faults are set again")

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and fnmatch.fnmatchcase(path, self.path)


class ErrorFault(_Targeted):
    """An error answer in the system's own JSON shape (`Retry-After: 1` with 429 and 503); the request is not handled."""

    kind: Literal["error"]
    status: int = Field(503, ge=400, le=599)


class HtmlErrorFault(_Targeted):
    """A load balancer's HTML error page (`text/html`) instead of the system's answer; the request is not handled."""

    kind: Literal["html_error"]
    status: int = Field(502, ge=400, le=599)


class DropFault(_Targeted):
    """The connection is cut: `drop_before` the request is handled, or `drop_after` it took effect (the answer is lost)."""

    kind: Literal["drop_before", "drop_after"]


class SilentFault(_Targeted):
    """No answer, not even headers, until the client gives up (disconnects); the request is not handled.

    `max_hold_s` bounds the wait for a client that never gives up: then the connection is cut.
    """

    kind: Literal["silent"]
    max_hold_s: float = Field(300.0, gt=0, le=3600)


class SlowBodyFault(_Targeted):
    """Slow-loris: the request is handled, headers come at once, the body trickles at `bytes_per_s`.

    The body is sent in chunks of a tenth of `bytes_per_s` (at least one byte), one chunk per tenth of
    a second (one byte a second at `bytes_per_s: 1`); it stops when the client disconnects.
    """

    kind: Literal["slow_body"]
    bytes_per_s: int = Field(1, ge=1, le=100_000_000)


class OversizedBodyFault(_Targeted):
    """The request is handled and its answer comes with `extra_bytes` of whitespace after the JSON:
    still valid, and as large as asked (Content-Length says so). Answers without a body are left alone."""

    kind: Literal["oversized_body"]
    extra_bytes: int = Field(64 * 1024 * 1024, ge=1, le=4 * 1024**3)


class ShortPagesFault(_Targeted):
    """CXone list answers hold at most `records_per_page` records whatever `top` asked, while `totalRecords`
    and `_links.next` say how many more there are (the API promises no full pages). Other answers: no effect."""

    kind: Literal["short_pages"]
    records_per_page: int = Field(1, ge=1)


class MalformedRecordFault(_Targeted):
    """One record of a list answer (a CXone list page, a Salesforce query page) is spoiled among good ones:
    its `field` becomes `value` (JSON null allowed), or with `field: null` the whole record becomes `value`.
    `index` picks the record (the last one if the page is shorter). Answers without records: no effect."""

    kind: Literal["malformed_record"]
    index: int = Field(0, ge=0)
    field: str | None = None
    value: Any = "malformed"


_Fault = (
    ErrorFault | HtmlErrorFault | DropFault | SilentFault | SlowBodyFault | OversizedBodyFault
    | ShortPagesFault | MalformedRecordFault
)
TargetedFault = Annotated[_Fault, Field(discriminator="kind")]
FaultT = TypeVar("FaultT", bound=_Targeted)
_STATE_KEY = "emulator_fault"  # in the ASGI scope's state: the targeted fault a route applies itself


class FaultSettings(BaseModel):
    """What `PUT /__emulator/faults` accepts (apis.md, "The emulators' own controls").

    Example (a body: `{"targeted": [{"kind": "short_pages", "path": "*/agents/states", "count": null,
    "records_per_page": 7}]}`):
        FaultSettings(error_rate=0.1, targeted=[HtmlErrorFault(kind="html_error", path="*/query", count=3)])
    """

    latency_ms: int = Field(0, ge=0, le=60_000)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    error_status: int = Field(503, ge=400, le=599)
    rate_limit_per_s: float | None = Field(None, gt=0)
    drop_rate: float = Field(0.0, ge=0.0, le=1.0)
    token_ttl_s: int | None = Field(None, gt=0)
    targeted: list[TargetedFault] = Field(
        default_factory=list,
        max_length=100,
        description="faults for chosen requests, each hitting the next `count` matching ones; the first match wins",
    )


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised inside the app to cut the connection.

    In-process (httpx's ASGI transport) the client sees this very error, as it would see a
    `RemoteProtocolError` from a real peer hanging up; under uvicorn the response has started, so the
    server can only close the socket, and the client sees the same thing over the wire.
    """


FaultKind = Literal["none", "error", "rate_limited", "drop_before", "drop_after", "targeted"]


@dataclass
class FaultDecision:
    kind: FaultKind = "none"
    latency_s: float = 0.0
    retry_after_s: int = 0
    targeted: _Fault | None = None


@dataclass
class RequestStats:
    """Request counts by method and route template, plus the faults that were injected."""

    by_route: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    # Requests whose client hung up before the handler had read them (uvicorn then hands the handler
    # a disconnect, not the buffered body): counted in `by_route`, but nothing they asked for happened.
    abandoned: Counter[str] = field(default_factory=Counter)

    def snapshot(self, clock_now: datetime) -> dict[str, Any]:
        writes = sum(n for key, n in self.by_route.items() if is_write(key))
        return {
            "requests": dict(sorted(self.by_route.items())),
            "total_requests": sum(self.by_route.values()),
            "write_requests": writes,
            "errors_injected": dict(sorted(self.injected.items())),
            "abandoned_by_client": dict(sorted(self.abandoned.items())),
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
        self._remaining: list[int | None] = []  # per targeted fault: requests it still hits (None: no end)

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings
            self._remaining = [fault.count for fault in settings.targeted]
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
            self._remaining = []

    def decide(self, method: str = "GET", path: str = "/") -> FaultDecision:
        with self._lock:
            s = self.settings
            decision = FaultDecision(latency_s=s.latency_ms / 1000)
            targeted = self._take_targeted(method, path)
            if targeted is not None:
                for _ in range(3):  # the weather's sequence stays the same whatever the targeted faults hit
                    self._rng.random()
                decision.kind, decision.targeted = "targeted", targeted
                self.stats.injected[targeted.kind] += 1
                return decision
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

    def count(self, method: str, route: str, abandoned: bool = False) -> None:
        with self._lock:
            self.stats.by_route[f"{method} {route}"] += 1
            if abandoned:
                self.stats.abandoned[f"{method} {route}"] += 1

    def _take_targeted(self, method: str, path: str) -> _Fault | None:
        for position, fault in enumerate(self.settings.targeted):
            left = self._remaining[position]
            if (left is None or left > 0) and fault.matches(method, path):
                if left is not None:
                    self._remaining[position] = left - 1
                return fault
        return None


class FaultMiddleware:
    """Pure ASGI middleware: injects faults on the system's surface, never on `/__emulator/`."""

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        injector: FaultInjector,
        error_body: ErrorBody,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.app = app
        self.injector = injector
        self.error_body = error_body
        self.sleep = sleep  # tests count a slow body's pauses instead of waiting them out

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        decision = self.injector.decide(scope["method"], scope["path"])
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        exchange = _Exchange(receive, send)
        receive, send = exchange.receive, exchange.send
        try:
            if decision.targeted is not None:
                await self._targeted(decision.targeted, scope, receive, send)
                return
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
            self.injector.count(scope["method"], _route_template(scope), abandoned=exchange.hung_up)

    async def _targeted(self, fault: _Fault, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if isinstance(fault, ErrorFault):
            headers = [(b"retry-after", b"1")] if fault.status in (429, 503) else []
            await _send_json(send, fault.status, self.error_body(fault.status, "Injected fault."), headers)
        elif isinstance(fault, HtmlErrorFault):
            await _send_html_error(send, fault.status)
        elif isinstance(fault, DropFault):
            if fault.kind == "drop_after":
                await self.app(scope, receive, _discard)
            await _drop(send)
        elif isinstance(fault, SilentFault):
            if not await _client_gone(receive, within_s=fault.max_hold_s):
                await _drop(send)
        elif isinstance(fault, SlowBodyFault):
            start, body = await _answer_of(self.app, scope, receive)
            await send(start)
            await self._trickle(send, receive, body, fault.bytes_per_s)
        elif isinstance(fault, OversizedBodyFault):
            start, body = await _answer_of(self.app, scope, receive)
            await _send_padded(send, start, body, fault.extra_bytes)
        else:  # list content: the route applies it
            scope.setdefault("state", {})[_STATE_KEY] = fault
            await self.app(scope, receive, send)

    async def _trickle(self, send: Any, receive: Any, body: bytes, bytes_per_s: int) -> None:
        chunk = max(1, bytes_per_s // 10)
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        try:
            for offset in range(0, max(len(body), 1), chunk):
                if offset:
                    await self.sleep(chunk / bytes_per_s)
                if gone.is_set():
                    return
                more = offset + chunk < len(body)
                await send({"type": "http.response.body", "body": body[offset : offset + chunk], "more_body": more})
        finally:
            watcher.cancel()


def targeted_fault(scope: Mapping[str, Any], kind: type[FaultT]) -> FaultT | None:
    """The list-content fault of this `kind` that `FaultMiddleware` handed to the route, if any.

    Example:
        short = targeted_fault(request.scope, ShortPagesFault)
        size = min(size, short.records_per_page) if short else size
    """
    fault = (scope.get("state") or {}).get(_STATE_KEY)
    return fault if isinstance(fault, kind) else None


def spoil_record(records: list[Any], fault: MalformedRecordFault) -> list[Any]:
    """`records` with the one `fault` picks spoiled (a copy: the stored records stay as they are)."""
    if not records:
        return records
    spoiled = list(records)
    index = min(fault.index, len(records) - 1)
    if fault.field is None or not isinstance(records[index], dict):
        spoiled[index] = fault.value
    else:
        spoiled[index] = {**records[index], fault.field: fault.value}
    return spoiled


async def _answer_of(app: Callable[..., Awaitable[None]], scope: dict[str, Any], receive: Any) -> tuple[dict[str, Any], bytes]:
    """Run the app and keep its whole answer: the start message and the body."""
    start: dict[str, Any] = {}
    body = bytearray()

    async def keep(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, keep)
    return start, bytes(body)


async def _send_padded(send: Any, start: dict[str, Any], body: bytes, extra_bytes: int) -> None:
    if not body:
        await send(start)
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [(name, value) for name, value in start.get("headers", []) if name.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body) + extra_bytes).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": True})
    block = b" " * min(extra_bytes, 1024 * 1024)  # streamed: the emulator holds one block, whatever the size
    left = extra_bytes
    while left > 0:
        part = block if left >= len(block) else block[:left]
        left -= len(part)
        await send({"type": "http.response.body", "body": part, "more_body": left > 0})


async def _send_html_error(send: Any, status: int) -> None:
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:  # a status without a standard phrase, e.g. 599
        title = str(status)
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>load balancer</center>\r\n</body>\r\n</html>\r\n"
    ).encode()
    headers = [(b"content-type", b"text/html"), (b"content-length", str(len(page)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": page})


async def _watch_disconnect(receive: Any, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


async def _client_gone(receive: Any, *, within_s: float) -> bool:
    """Wait for the client to disconnect, at most `within_s`; whether it did."""
    gone = asyncio.Event()
    try:
        await asyncio.wait_for(_watch_disconnect(receive, gone), within_s)
    except TimeoutError:
        return False
    return True


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


class _Exchange:
    """One request's receive and send, noting whether its client hung up before it was answered."""

    def __init__(self, receive: Any, send: Any) -> None:
        self._receive, self._send = receive, send
        self.answered = self.hung_up = False

    async def receive(self) -> Any:
        message = await self._receive()
        if message["type"] == "http.disconnect" and not self.answered:
            self.hung_up = True
        return message

    async def send(self, message: Any) -> None:
        self.answered = self.answered or message["type"] == "http.response.start"
        await self._send(message)


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
