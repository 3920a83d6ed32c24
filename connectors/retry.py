"""Which failed requests are worth repeating, and how long to wait in between.

    policy = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=30)
    policy.should_retry_status(503, idempotent=False)    # True: the server says it did nothing
    policy.backoff(attempt=3)                            # full jitter: uniform in [0, min(30, 0.5 * 2**2)]
    policy.backoff(attempt=1, retry_after=7.0)           # 7.0: the server's Retry-After wins

Transient: timeouts, connection errors, 5xx (503 included) and 429. Everything else is permanent
(4xx, including Salesforce's 403 REQUEST_LIMIT_EXCEEDED: a spent daily budget, not a blip).

Why non-idempotent requests (a POST that creates) are treated differently: repeating one whose first
try may have reached the server can create a duplicate record. So they are retried only when the
request surely did not get processed: it never left this machine (connect error, connect or pool
timeout) or the server explicitly turned it away (429, 503). A read timeout or a 500 on a create is
raised as a TransientError with `outcome_unknown=True`, for the caller to reconcile.
"""

from __future__ import annotations

import asyncio
import math
import random as _random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})

# The server turned the request away without processing it.
THROTTLE_STATUSES = frozenset({429, 503})

# Raised before a single byte of the request reached the server.
_NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)

# Transport failures that a later attempt can plausibly get past. Left out on purpose:
# UnsupportedProtocol, LocalProtocolError and ProxyError, which are configuration mistakes.
_TRANSIENT_TRANSPORT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def is_transient_status(status: int) -> bool:
    """429 and every 5xx."""
    return status == 429 or 500 <= status <= 599


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After: <seconds>` header; None when absent or not a number."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, a cap, Retry-After honoured, and a bounded number of tries.

    `sleep` and `random` are injectable so tests can count retries and delays without waiting:

        delays = []
        async def record(seconds): delays.append(seconds)
        policy = RetryPolicy(sleep=record, random=lambda: 1.0)
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A Retry-After longer than this is not slept through: the call fails with RateLimited(retry_after)
    # so a scheduler can come back later instead of holding a worker.
    max_retry_after: float = 120.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    random: Callable[[], float] = field(default=_random.random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1 (1 = no retries); got {self.max_attempts}")
        for name in ("base_delay", "max_delay", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be zero or more seconds; got {getattr(self, name)}")

    def should_retry_status(self, status: int, *, idempotent: bool) -> bool:
        """Whether a response with this status deserves another attempt."""
        if status in THROTTLE_STATUSES:
            return True
        return idempotent and is_transient_status(status)

    def should_retry_error(self, error: Exception, *, idempotent: bool) -> bool:
        """Whether a transport failure deserves another attempt."""
        if isinstance(error, _NOT_SENT_ERRORS):
            return True
        return idempotent and isinstance(error, _TRANSIENT_TRANSPORT_ERRORS)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return retry_after
        exponent = min(attempt - 1, 60)  # past this the cap has long won; avoids float overflow
        ceiling = min(self.max_delay, self.base_delay * 2**exponent)
        return self.random() * ceiling
