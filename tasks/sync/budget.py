"""Salesforce's daily API budget: how often the sync may poll so that the budget lasts the day.

Every data API answer says `Sforce-Limit-Info: api-usage=USED/LIMIT` (a rolling 24 hours). The pace is
what one poll costs (the growth of USED between two polls: our queries, our writes, and whatever else
uses the org's budget meanwhile). When polling every `base_interval` would spend more than the budget
left above the reserve within a day, the interval is stretched so that it lasts:

    interval = max(base_interval, cost_per_poll * 86400 / (remaining - reserve))

    budget = PollBudget(base_interval=1.0, reserve_fraction=0.2)
    budget.record(ApiUsage(used=14_000, limit=15_000))
    budget.interval()     # far more than 1 s: only 2,000 calls left above a 3,000-call reserve
"""

from __future__ import annotations

from dataclasses import dataclass

from presence_sync.connectors import ApiUsage

DAY_SECONDS = 86_400.0
MAX_INTERVAL_SECONDS = 300.0  # even a spent budget is polled now and then, to see it replenish
_SMOOTHING = 0.3  # weight of the newest cost reading


@dataclass
class PollBudget:
    """The poll interval one Salesforce source may use, from the API usage it reads back."""

    base_interval: float
    reserve_fraction: float
    max_interval: float = MAX_INTERVAL_SECONDS
    usage: ApiUsage | None = None
    cost_per_poll: float = 1.0  # API units one poll costs, smoothed; a query page at least

    def record(self, usage: ApiUsage | None) -> None:
        """Take the usage read after a poll (and the writes since the previous one)."""
        if usage is None:
            return
        if self.usage is not None and usage.limit == self.usage.limit and usage.used >= self.usage.used:
            cost = max(1.0, float(usage.used - self.usage.used))
            self.cost_per_poll = (1 - _SMOOTHING) * self.cost_per_poll + _SMOOTHING * cost
        self.usage = usage

    @property
    def usable(self) -> float | None:
        """Calls left above the reserve, or None before the first reading."""
        if self.usage is None:
            return None
        return self.usage.remaining - self.reserve_fraction * self.usage.limit

    @property
    def stretched(self) -> bool:
        return self.interval() > self.base_interval

    def interval(self) -> float:
        """Seconds between two polls so that the budget above the reserve lasts a day at this pace."""
        usable = self.usable
        if usable is None:
            return self.base_interval
        if usable <= 0:
            return self.max_interval
        needed = self.cost_per_poll * DAY_SECONDS / usable
        return min(self.max_interval, max(self.base_interval, needed))

    def describe(self) -> str:
        """One line for logs, status and artifacts."""
        if self.usage is None:
            return "Salesforce API budget: not read yet"
        usage = self.usage
        text = f"Salesforce API budget: {usage.used:,} of {usage.limit:,} used in the last 24 h"
        if self.stretched:
            text += (
                f"; polling slowed to every {self.interval():.0f} s to keep "
                f"{self.reserve_fraction:.0%} in reserve"
            )
        return text
