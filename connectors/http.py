"""Transport plumbing shared by both clients: small pooled httpx clients (PoolSet), a bound on requests in
flight, the loop that applies the RetryPolicy, and decoding answers into typed values.

    session = HttpSession("CXone", max_concurrency=16, retry=RetryPolicy())
    response = await session.request("GET", "https://api.example/agents")
    agents = parse_json(response, AgentsPage, system="CXone", endpoint="GET /agents", expected="an agents page")
    await session.aclose()

Transient statuses (5xx, 429) never come back out of `request`: they are retried or raised as
TransientError / RateLimited. Every other response is returned for the client to interpret.

Every attempt has one overall deadline (`deadline_seconds`: connect, headers and the whole body;
httpx's own timeouts are per phase and per read, so a body trickling a byte at a time never trips
them) and a body size cap (`max_body_bytes`, read as a stream, so an oversized answer is never held
whole). A deadline hit is a `DeadlineExceeded` (transient: retried for idempotent requests, like a
read timeout; for others the outcome is unknown), a cap hit a `BodyTooLarge`; both name the host,
method and path and are logged once, when the call gives up.

A connect failure (or no answer at all) from a host that never answered this session is checked with
one quick probe before any retry: an unreachable host fails at once with `HostUnreachable`, naming
the URL and the cause, instead of after the whole retry budget (connectors/reachability.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json as jsonlib
import logging
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import TypeAdapter, ValidationError

from presence_sync.connectors.errors import (
    BodyTooLarge,
    ConnectorError,
    DeadlineExceeded,
    HostUnreachable,
    MalformedResponse,
    RateLimited,
    TransientError,
)
from presence_sync.connectors.reachability import DEFAULT_PROBE_SECONDS, Reachability, origin_of
from presence_sync.connectors.retry import (
    IDEMPOTENT_METHODS,
    THROTTLE_STATUSES,
    RetryPolicy,
    is_transient_status,
    parse_retry_after,
)
from presence_sync.connectors.transport import AsyncioTransport

logger = logging.getLogger(__name__)

T = TypeVar("T")

_EXCERPT_LIMIT = 300
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_DEADLINE_SECONDS = 30.0  # one attempt, connect to last body byte
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024  # far above any documented page (2,000 records)
# Failures after which a host that never answered is probed before any retry (connectors/reachability.py).
_NO_CONNECTION_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout)


class _AttemptFailed(Exception):
    """An attempt that ran past its deadline or its body cap (internal to `HttpSession.request`)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # "deadline" | "too large"


def endpoint_label(method: str, url: httpx.URL | str) -> str:
    """'GET /services/data/v62.0/query': what error messages and logs name (never the query string)."""
    return f"{method.upper()} {httpx.URL(url).path}"


class _LazyEndpoint:
    """`endpoint_label(method, url)`, worked out the first time it is formatted."""

    __slots__ = ("method", "url", "_label")

    def __init__(self, method: str, url: httpx.URL | str) -> None:
        self.method, self.url, self._label = method, url, None

    def __str__(self) -> str:
        if self._label is None:
            self._label = endpoint_label(self.method, self.url)
        return self._label


def endpoint_of(response: httpx.Response) -> str:
    """The endpoint label of the request that got this response."""
    return endpoint_label(response.request.method, response.request.url)


def describe_error_body(response: httpx.Response) -> str | None:
    """The server's own words about an error, from either documented shape, shortened; None if absent.

    Salesforce data API: `[{"message", "errorCode"}]`; OAuth: `{"error", "error_description"}`.
    """
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if not isinstance(body, dict):
        return None
    code = body.get("errorCode") or body.get("error")
    text = body.get("message") or body.get("error_description")
    parts = [str(part) for part in (code, text) if part]
    return ": ".join(parts)[:_EXCERPT_LIMIT] if parts else None


POOL_CONNECTIONS = 1  # kept connections per httpx client: a request never waits for another's connection


class _NoCookies(httpx.Cookies):
    """Cookies that are never kept: both APIs authenticate every request with a bearer token, and
    httpx's extraction wraps every request and response in urllib's classes (the response's headers
    copied into an `email.message.Message`), ~10 % of a request's CPU, only to find no cookie we
    would ever send back."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _Client(httpx.AsyncClient):
    """An httpx client that keeps no cookies."""

    _cookies_never_kept = _NoCookies()

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return self._cookies_never_kept

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("this client keeps no cookies")


def _proxies_configured() -> bool:
    return any(scheme in ("http", "https", "all") for scheme in urllib.request.getproxies())


class PoolSet:
    """Small httpx clients lent out one request at a time, as one client: `with pools.lease() as client`.

    Each client holds POOL_CONNECTIONS (one) on `AsyncioTransport` (connectors/transport.py), so no
    pool arbitrates between requests: httpcore's pool did bookkeeping over every connection it held on
    each request and on each response's close, and one pool of 64 cost ~7-11 ms of CPU per request at 64
    in flight, a client per connection on httpx's transport ~0.6-0.7 ms, on `AsyncioTransport` ~0.36 ms
    (`python -m bench client`, 2 cores). A request takes a client with a free connection, the most
    recently freed first (its connection is warm; those not needed for a while expire). The bound on
    requests in flight stays the session's semaphore; requests beyond it (logins, not bounded) share a
    client in turn, on a connection of their own.

        pools = PoolSet.build(transport=None, timeout=DEFAULT_TIMEOUT, headers={}, max_concurrency=32)
        with pools.lease() as client:
            response = await client.send(pools.build_request("GET", "https://api.example/agents"))

    A given transport (in-process emulators, tests) gets one client: it is its own pool.
    """

    def __init__(self, clients: list[httpx.AsyncClient], connections_each: int = POOL_CONNECTIONS) -> None:
        self.clients = clients
        self._free = [client for client in reversed(clients) for _ in range(connections_each)]
        self._turn = itertools.cycle(clients)

    @classmethod
    def build(
        cls,
        *,
        transport: httpx.AsyncBaseTransport | None,
        timeout: httpx.Timeout,
        headers: Mapping[str, str] | None,
        max_concurrency: int,
    ) -> PoolSet:
        pools = 1 if transport is not None else -(-max_concurrency // POOL_CONNECTIONS)
        size = -(-max_concurrency // pools)
        # One TLS context for all: each client would otherwise load the CA bundle itself (~30 ms of CPU).
        tls = httpx.create_ssl_context() if transport is None else True
        # Behind a proxy (HTTP(S)_PROXY), httpx's own transport: it knows how to tunnel.
        own_network = transport is None and not _proxies_configured()
        return cls([
            _Client(
                transport=AsyncioTransport(ssl_context=tls, keepalive=size) if own_network else transport,
                verify=tls,
                timeout=timeout,
                headers=dict(headers or {}),
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                follow_redirects=False,
            )
            for _ in range(pools)
        ], connections_each=size)

    def build_request(self, method: str, url: str, **kwargs: Any) -> httpx.Request:
        # Every client has the same headers and timeouts: any of them builds the request.
        return self.clients[0].build_request(method, url, **kwargs)

    @contextlib.contextmanager
    def lease(self) -> Iterator[httpx.AsyncClient]:
        """A client with a free connection for one request, from `send` until its response is closed."""
        if not self._free:
            yield next(self._turn)
            return
        client = self._free.pop()
        try:
            yield client
        finally:
            self._free.append(client)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


Pace = Callable[[], Awaitable[None]]
"""Waits until one more request may be sent (a shared API budget); raises a ConnectorError to refuse it."""


class HttpSession:
    """Connection pools (PoolSet), at most `max_concurrency` requests in flight, retries per `retry`.

    `redact` scrubs server-provided text before it is put into an error message. `pace`, when set, is
    awaited before every attempt of a bounded request (not logins), e.g. to take a slot of a budget
    shared with other processes.
    """

    def __init__(
        self,
        system: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_concurrency: int = 16,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        redact: Callable[[str], str] = str,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        probe_seconds: float | None = DEFAULT_PROBE_SECONDS,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1; got {max_concurrency}")
        if deadline_seconds <= 0 or max_body_bytes < 1:
            raise ValueError(
                f"deadline_seconds and max_body_bytes must be positive; got {deadline_seconds}, {max_body_bytes}"
            )
        self.system = system
        self.deadline_seconds = deadline_seconds
        self.max_body_bytes = max_body_bytes
        self.retry = retry or RetryPolicy()
        self._redact = redact
        self._slots = asyncio.Semaphore(max_concurrency)
        self.pace: Pace | None = None
        self._client = PoolSet.build(transport=transport, timeout=timeout, headers=headers, max_concurrency=max_concurrency)
        # A given transport (in-process emulators, tests) has no network path to probe.
        self.reachability = Reachability(None if transport is not None else probe_seconds)

    async def __aenter__(self) -> HttpSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        bounded: bool = True,
    ) -> httpx.Response:
        """Send one logical request, retrying per policy; `idempotent` defaults from the method.

        `auth` runs on every attempt (a BearerAuth renews on 401 and resends inside one attempt).
        `bounded=False` is for login requests: callers holding a slot may be waiting on the token
        they fetch, so they must not wait for a slot themselves.
        """
        method = method.upper()
        # Named only when something goes wrong: parsing the URL again costs ~10 µs a request.
        endpoint = _LazyEndpoint(method, url)
        repeatable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            if bounded and self.pace is not None:
                await self.pace()
            try:
                async with self._slots if bounded else contextlib.nullcontext():
                    request = self._client.build_request(
                        method, url, headers=headers, params=params, json=json, data=data
                    )
                    response = await self._exchange(request, auth)
            except _AttemptFailed as failure:
                if failure.kind == "deadline":
                    await self._fail_if_unreachable(request.url, str(endpoint), "no complete answer in time")
                # A deadline hit is like a read timeout: repeated when that is safe, else outcome unknown.
                if failure.kind == "deadline" and attempt < policy.max_attempts and repeatable:
                    await self._pause(str(endpoint), attempt, "no complete answer in time", policy.backoff(attempt))
                    continue
                raise self._limit_failure(failure.kind, request, attempt, repeatable) from None
            except httpx.RequestError as error:
                if isinstance(error, _NO_CONNECTION_ERRORS):
                    await self._fail_if_unreachable(request.url, str(endpoint), type(error).__name__)
                if attempt < policy.max_attempts and policy.should_retry_error(error, idempotent=repeatable):
                    await self._pause(str(endpoint), attempt, type(error).__name__, policy.backoff(attempt))
                    continue
                raise self._transport_failure(str(endpoint), error, attempt, repeatable) from error
            self.reachability.answered(request.url)
            logger.debug("%s %s -> %d (attempt %d)", self.system, endpoint, response.status_code, attempt)
            if not is_transient_status(response.status_code):
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            too_long = retry_after is not None and retry_after > policy.max_retry_after
            if (
                attempt < policy.max_attempts
                and not too_long
                and policy.should_retry_status(response.status_code, idempotent=repeatable)
            ):
                reason = f"HTTP {response.status_code}"
                await self._pause(str(endpoint), attempt, reason, policy.backoff(attempt, retry_after))
                continue
            raise self._status_failure(str(endpoint), response, attempt, repeatable, retry_after)

    async def _exchange(self, request: httpx.Request, auth: httpx.Auth | tuple[str, str] | None) -> httpx.Response:
        """One attempt within the deadline, its body read (up to the cap) before it is returned."""
        try:
            async with asyncio.timeout(self.deadline_seconds):
                with self._client.lease() as client:
                    response = await client.send(request, auth=auth, stream=True)
                    try:
                        response._content = await self._capped_body(response)
                    finally:
                        await response.aclose()
        except TimeoutError:
            raise _AttemptFailed("deadline") from None
        return response

    async def _capped_body(self, response: httpx.Response) -> bytes:
        """What `Response.aread()` does, with the cap: the body is then read once and for all."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _AttemptFailed("too large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _AttemptFailed("too large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _fail_if_unreachable(self, url: httpx.URL, endpoint: str, failure: str) -> None:
        """Raise `HostUnreachable` when the host never answered and fails a quick probe too."""
        cause = await self.reachability.unreachable_cause(url)
        if cause is None:
            return
        origin = origin_of(url)
        error = HostUnreachable(
            f"{self.system} at {origin} is unreachable: {cause} ({endpoint} failed with {failure}, then a quick "
            f"check of the host). Check the configured URL ({origin}), that the host is up, and that this "
            "machine can reach it (firewall, proxy, VPN).",
            system=self.system, endpoint=endpoint,
        )
        logger.warning("%s", error)
        raise error

    def _limit_failure(self, kind: str, request: httpx.Request, attempts: int, repeatable: bool) -> ConnectorError:
        endpoint = endpoint_label(request.method, request.url)
        where = f"{request.url.host} {endpoint}"
        if kind == "too large":
            error: ConnectorError = BodyTooLarge(
                f"{self.system} answered {where} with a body larger than {self.max_body_bytes:,} bytes; it was "
                "not read. Check that the URL points at the API itself; if it does, raise the body size cap.",
                system=self.system, endpoint=endpoint,
            )
        else:
            unknown = not repeatable
            error = DeadlineExceeded(
                f"{self.system} did not answer {where} completely within {self.deadline_seconds:g} s "
                f"(after {_attempts(attempts)}); {_unknown_outcome_note() if unknown else ''}"
                f"check the network path to {self.system} and its status page; it is retried later.",
                system=self.system, endpoint=endpoint, outcome_unknown=unknown,
            )
        logger.warning("%s", error)
        return error

    def redact(self, text: str) -> str:
        """`text` (something a server said) with every known secret scrubbed, fit for an error message."""
        return self._redact(text)

    async def _pause(self, endpoint: str, attempt: int, reason: str, delay: float) -> None:
        logger.warning(
            "%s %s failed (%s); retry %d/%d in %.2f s",
            self.system, endpoint, reason, attempt + 1, self.retry.max_attempts, delay,
        )
        await self.retry.sleep(delay)

    def _transport_failure(
        self, endpoint: str, error: httpx.RequestError, attempts: int, repeatable: bool
    ) -> ConnectorError:
        kind = type(error).__name__
        if not self.retry.should_retry_error(error, idempotent=True):
            return ConnectorError(
                f"{self.system} {endpoint} at {origin_of(error.request.url)} failed ({kind}: "
                f"{self._redact(str(error))}): check the "
                "configured URL (scheme http/https, host name) and any proxy settings.",
                system=self.system,
                endpoint=endpoint,
            )
        unknown = not repeatable and not self.retry.should_retry_error(error, idempotent=False)
        return TransientError(
            f"{self.system} did not answer {endpoint} at {origin_of(error.request.url)} ({kind}) after "
            f"{_attempts(attempts)}; "
            f"{_unknown_outcome_note() if unknown else ''}"
            f"check the network path to {self.system} and its status page, then retry.",
            system=self.system,
            endpoint=endpoint,
            outcome_unknown=unknown,
        )

    def _status_failure(
        self,
        endpoint: str,
        response: httpx.Response,
        attempts: int,
        repeatable: bool,
        retry_after: float | None,
    ) -> TransientError:
        status = response.status_code
        server_says = describe_error_body(response)
        said = f" ({self._redact(server_says)})" if server_says else ""
        if status == 429 or (status in THROTTLE_STATUSES and retry_after is not None):
            wait = f"asked to wait {retry_after:g} s" if retry_after is not None else "is throttling us"
            return RateLimited(
                f"{self.system} {wait} on {endpoint} (HTTP {status}{said}) after {_attempts(attempts)}; "
                "retry later, or lower the request rate (sync interval, max_concurrency).",
                system=self.system,
                endpoint=endpoint,
                status_code=status,
                retry_after=retry_after,
            )
        unknown = not repeatable and status not in THROTTLE_STATUSES
        return TransientError(
            f"{self.system} answered {endpoint} with HTTP {status}{said} after {_attempts(attempts)}; "
            f"{_unknown_outcome_note() if unknown else ''}"
            f"this is a fault on the {self.system} side: retry later and check its status page.",
            system=self.system,
            endpoint=endpoint,
            status_code=status,
            outcome_unknown=unknown,
        )


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def _unknown_outcome_note() -> str:
    return "the request may or may not have been applied (not repeated, as that could create a duplicate); "


def decode_json(response: httpx.Response, *, system: str, endpoint: str) -> Any:
    """The JSON body, or MalformedResponse naming the endpoint."""
    try:
        # orjson first: a poll page of 2,000 spells parses ~4x faster. It takes strict UTF-8 JSON only;
        # what it refuses (a byte-order mark, UTF-16, NaN) gets the standard library's verdict. (It reads
        # an integer past 64 bits as a float; no id or count of either API comes near that.)
        return orjson.loads(response.content)
    except ValueError:
        pass
    try:
        return jsonlib.loads(response.content)
    except ValueError:
        content_type = response.headers.get("Content-Type", "no content type")
        raise malformed_response(system, endpoint, f"a body that is not JSON ({content_type})", "JSON") from None


def parse_json(response: httpx.Response, shape: Any, *, system: str, endpoint: str, expected: str) -> Any:
    """Decode and validate the body against `shape` (a type usable by pydantic's TypeAdapter)."""
    return validate_shape(decode_json(response, system=system, endpoint=endpoint), shape,
                          system=system, endpoint=endpoint, expected=expected)


def validate_shape(body: Any, shape: Any, *, system: str, endpoint: str, expected: str) -> Any:
    """`body` validated as `shape`, or MalformedResponse naming the first problem (never the values)."""
    try:
        return _adapter(shape).validate_python(body)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        where = _json_path(first["loc"])
        raise malformed_response(system, endpoint, f"{where}: {first['msg']}", expected) from None


@functools.lru_cache(maxsize=None)
def _adapter(shape: Any) -> TypeAdapter[Any]:
    return TypeAdapter(shape)


def _json_path(loc: tuple[int | str, ...]) -> str:
    path = "body"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def malformed_response(system: str, endpoint: str, problem: str, expected: str) -> MalformedResponse:
    """The one wording of "this answer is not what the API documents"."""
    return MalformedResponse(
        f"{system} answered {endpoint} with an unexpected response ({problem}; expected {expected}). "
        f"Check that the configured URL points at {system} itself, not a proxy or a login page; "
        f"if it does, retry later and report it if it persists.",
        system=system,
        endpoint=endpoint,
    )
