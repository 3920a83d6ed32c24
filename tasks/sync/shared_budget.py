"""The API budget every sync shard shares: each request takes a slot of a global rate limit first.

A `SharedPacer` is what a connector awaits before each request (`client.pace_requests(pacer)`). It
takes `chunk` slots from the shared limit per call to the limit's keeper (Prefect's global rate
limits; `flows/shared_budget.py` is the adapter), then spends them locally: at 10,000 agents one
call per `chunk` requests, not one per request. The limit's decay rate is the shared budget, so
N shards together send what one would (`presence-sync limits install` sizes it).

When the keeper cannot be used (the limit does not exist, the Prefect API does not answer) the
sync must not stall: the pacer lets requests through, leaving the pacing to what each process does
anyway (the Salesforce poll interval stretched by `PollBudget`, 429s honoured), says so in ONE
warning, and asks the keeper again after `retry_seconds`. When no slot frees up within
`wait_seconds`, the request fails as `RateLimited` (transient): the poll or write is retried later.

    budget = SharedBudget.from_settings(config.sync.shared_budget, take_slots)
    budget.attach(ctx)                  # ctx.salesforce and ctx.cxone now pace every request
    budget.pacers["CXone"].calls        # calls made to the keeper (about requests / chunk)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from presence_sync.connectors import RateLimited
from presence_sync.models.config import SharedBudgetSettings
from presence_sync.tasks.context import Context

logger = logging.getLogger(__name__)

TakeSlots = Callable[[str, int, float], Awaitable[None]]
"""(limit name, slots, timeout seconds): returns once taken; raises `TimeoutError` when none freed up
in time, `SlotsUnavailable` when the limit can't be used at all."""

RETRY_SHARED_SECONDS = 60.0


class SlotsUnavailable(Exception):
    """The shared limit cannot be used now (it does not exist, or its keeper does not answer)."""


@dataclass
class SharedPacer:
    """One system's share of a global rate limit, taken `chunk` slots at a time (see the module doc)."""

    system: str
    limit: str
    take_slots: TakeSlots
    chunk: int = 16
    wait_seconds: float = 30.0
    retry_seconds: float = RETRY_SHARED_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    requests: int = 0  # requests paced
    calls: int = 0  # calls to the limit's keeper
    local_since: float | None = None  # pacing locally (the shared limit unusable) since then
    _permits: int = 0
    _warned: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def shared(self) -> bool:
        """Whether requests are paced by the shared limit now (False: local pacing only)."""
        return self.local_since is None

    async def __call__(self) -> None:
        self.requests += 1
        if self._spend():
            return
        async with self._lock:  # one refill at a time; the others spend what it brings
            if self._spend() or self._pacing_locally():
                return
            self.calls += 1
            try:
                await self.take_slots(self.limit, self.chunk, self.wait_seconds)
            except SlotsUnavailable as error:
                self._fall_back(error)
                return
            except TimeoutError:
                raise RateLimited(
                    f"{self.system}: the API budget shared by every sync shard (Prefect rate limit "
                    f"{self.limit!r}) had no free slot within {self.wait_seconds:g} s; the request is retried "
                    "later. The shards together are at the rate `presence-sync limits install` gave the limit",
                    system=self.system,
                ) from None
            if self.local_since is not None:
                logger.warning("%s: the shared API budget %r is in use again", self.system, self.limit)
                self.local_since = None
            self._permits = self.chunk - 1

    def _spend(self) -> bool:
        if self._permits > 0:
            self._permits -= 1
            return True
        return False

    def _pacing_locally(self) -> bool:
        return self.local_since is not None and self.monotonic() - self.local_since < self.retry_seconds

    def _fall_back(self, error: SlotsUnavailable) -> None:
        self.local_since = self.monotonic()
        if self._warned:
            logger.debug("%s: shared API budget %r still unavailable: %s", self.system, self.limit, error)
            return
        self._warned = True
        logger.warning(
            "%s: the API budget shared by the sync shards (Prefect rate limit %r) cannot be used (%s); "
            "this process paces itself meanwhile (poll interval from the API usage, 429s honoured) and "
            "tries the shared limit again every %g s. Create the limits with `presence-sync limits install "
            "CONFIG`, or set sync.shared_budget.enabled: false",
            self.system, self.limit, error, self.retry_seconds,
        )


@dataclass
class SharedBudget:
    """Both systems' pacers, from the config's `sync.shared_budget`."""

    pacers: dict[str, SharedPacer]

    @classmethod
    def from_settings(cls, settings: SharedBudgetSettings, take_slots: TakeSlots) -> SharedBudget:
        return cls({
            system: SharedPacer(system, limit, take_slots, chunk=settings.chunk, wait_seconds=settings.wait_seconds)
            for system, limit in (("Salesforce", settings.salesforce_limit), ("CXone", settings.cxone_limit))
        })

    def attach(self, ctx: Context) -> None:
        """Every request of the context's connectors takes its slot from now on."""
        ctx.salesforce.pace_requests(self.pacers["Salesforce"])
        ctx.cxone.pace_requests(self.pacers["CXone"])

    @property
    def local(self) -> list[str]:
        """The systems paced locally now (their shared limit unusable)."""
        return [system for system, pacer in self.pacers.items() if not pacer.shared]


@dataclass(frozen=True)
class LimitSize:
    """One global rate limit: `limit` slots (the burst), freed at `per_second` (the sustained rate)."""

    system: str
    name: str
    limit: int
    per_second: float
    basis: str  # where the rate comes from, in words

    @property
    def per_day(self) -> int:
        return round(self.per_second * 86_400)


def size_limits(
    settings: SharedBudgetSettings, *, reserve_fraction: float, salesforce_daily: int, shards: int
) -> list[LimitSize]:
    """The limits' sizes: the rates are the whole contact center's, whatever the number of shards.

    Salesforce: the org's daily requests less the reserve, spread over 24 h; a burst of a minute's
    worth. CXone: the configured requests per second; a burst of one second's worth. Either burst
    is at least two chunks per shard, so that every shard can hold one while the next is taken.

        size_limits(settings, reserve_fraction=0.2, salesforce_daily=10_100_000, shards=4)
        # [LimitSize("Salesforce", ..., limit=5611, per_second=93.5...), LimitSize("CXone", ..., limit=128, per_second=100.0)]
    """
    floor = 2 * settings.chunk * shards
    sf_rate = salesforce_daily * (1 - reserve_fraction) / 86_400
    cx_rate = settings.cxone_requests_per_second
    return [
        LimitSize(
            "Salesforce", settings.salesforce_limit, max(floor, round(sf_rate * 60)), sf_rate,
            f"{salesforce_daily:,} a day less {reserve_fraction:.0%} reserve",
        ),
        LimitSize(
            "CXone", settings.cxone_limit, max(floor, round(cx_rate)), cx_rate,
            f"{cx_rate:g}/s, the config's",
        ),
    ]
