"""The org's API request budget: a rolling 24-hour count against a daily limit.

Each data API call spends one request (a collection call too); a call made after the budget is spent
fails with 403 REQUEST_LIMIT_EXCEEDED and is not counted. Counting is per hour, so the window slides
without remembering every call.

    budget = ApiBudget(org.settings)
    used, limit = budget.charge(clock.now())
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from presence_sync.emulators.salesforce.errors import SalesforceApiError
from presence_sync.emulators.salesforce.org import OrgSettings

_WINDOW_HOURS = 24


def _hour(moment: datetime) -> int:
    return int(moment.timestamp() // 3600)


class ApiBudget:
    def __init__(self, settings: OrgSettings) -> None:
        self._settings = settings
        self._by_hour: Counter[int] = Counter()

    @property
    def limit(self) -> int:
        """The org's `api_daily_limit`, which `PUT /__emulator/org` may change at any time."""
        return self._settings.api_daily_limit

    def used(self, now: datetime) -> int:
        current = _hour(now)
        for hour in [h for h in self._by_hour if h <= current - _WINDOW_HOURS]:
            del self._by_hour[hour]
        return sum(self._by_hour.values())

    def charge(self, now: datetime) -> tuple[int, int]:
        """Spend one request; returns (used, limit) or raises 403 REQUEST_LIMIT_EXCEEDED."""
        used = self.used(now)
        if used >= self.limit:
            raise SalesforceApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self._by_hour[_hour(now)] += 1
        return used + 1, self.limit
