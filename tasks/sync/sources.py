"""Where a tick's observations come from: CXone deltas, and a Salesforce change source.

Salesforce changes come through the `SalesforceChangeSource` seam. Today's implementation polls
UserServicePresence spells (`SalesforcePollSource`); a Streaming API subscription (a push source) can
sit beside it later with the same three methods. A source hands out a `Polled` batch; its cursor moves
only when the runner says the batch's outcome is saved (`committed`), so a crash re-reads the batch.

    cxone = CxonePollSource(ctx.cxone, cursor=store.get_cursor(CXONE_CURSOR))
    polled = await cxone.fetch(now)
    ...commit polled.cursors with the outcome...
    cxone.committed(polled)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from presence_sync.connectors import CxoneClient, SalesforceClient
from presence_sync.connectors.soql import quote
from presence_sync.connectors.timestamps import to_utc_iso
from presence_sync.engine import Observation
from presence_sync.tasks.sync.budget import PollBudget
from presence_sync.tasks.sync.observations import (
    SPELL_FIELDS,
    RecordError,
    Spell,
    cxone_observation,
    parse_api_time,
    spell_observations,
)

logger = logging.getLogger(__name__)

CXONE_CURSOR = "cxone"
SALESFORCE_CURSOR = "salesforce"
# Salesforce stamps spells in milliseconds and may commit them out of order by a little: re-read this
# much before the watermark and drop what was seen already.
SPELL_OVERLAP = timedelta(seconds=5)


@dataclass
class Polled:
    """One read of one system: the observations, the cursors to save with their outcome, what was read."""

    observations: list[Observation] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    seen_keys: list[str] = field(default_factory=list)  # Salesforce spell keys to remember
    api_reads: int = 0
    problems: list[str] = field(default_factory=list)  # records skipped, in plain words


class ChangeSource(Protocol):
    """Anything a tick reads changes from: told when the outcome of a batch is saved."""

    def committed(self, polled: Polled) -> None:
        """The outcome of `polled` is saved: move on past it."""
        ...


class SalesforceChangeSource(ChangeSource, Protocol):
    """Salesforce presence changes for the tick (a poll today, a push subscription later)."""

    def ready(self, now: datetime) -> bool:
        """Whether a fetch is due now (a poll may be slowed down to save the API budget)."""
        ...

    async def fetch(self, agents_by_user: Mapping[str, int], now: datetime) -> Polled:
        """The changes since the last committed batch, of linked users only."""
        ...


class CxonePollSource:
    """`GET /agents/states?updatedSince=cursor`; the cursor is the previous answer's `lastPollTime`.

    Without a cursor (the first run), every agent's current state is read.
    """

    def __init__(self, cxone: CxoneClient, cursor: str | None) -> None:
        self.cxone = cxone
        self.cursor = cursor

    async def fetch(self, now: datetime) -> Polled:
        page = await self.cxone.agent_states(updated_since=self.cursor)
        polled = Polled(api_reads=1)
        for record in page.states:
            try:
                polled.observations.append(cxone_observation(record))
            except RecordError as error:
                polled.problems.append(str(error))
        if page.last_poll_time:
            polled.cursors[CXONE_CURSOR] = page.last_poll_time
        return polled

    def committed(self, polled: Polled) -> None:
        self.cursor = polled.cursors.get(CXONE_CURSOR, self.cursor)


class SalesforcePollSource:
    """Polls UserServicePresence spells from a watermark, with overlap and de-duplication by spell key.

    The cursor (watermark) is the time up to which every spell has been read: the newest spell seen,
    or, when none is newer, the poll's own start less the clock skew allowed (so a quiet org's polls
    stop re-reading the last burst). Without one, the current spells are read (a full picture to start
    from). Each poll asks for spells that started or ended after `watermark - SPELL_OVERLAP`; keys
    already seen in the overlap are dropped. `budget` sets how often it polls.
    """

    def __init__(
        self,
        salesforce: SalesforceClient,
        cursor: str | None,
        seen: Iterable[str],
        budget: PollBudget,
        clock_skew: timedelta = timedelta(seconds=1),
    ) -> None:
        self.salesforce = salesforce
        self.clock_skew = clock_skew
        self.watermark = None if cursor is None else parse_api_time(cursor, "the saved Salesforce watermark")
        self.seen = set(seen)
        self.budget = budget
        self.next_poll_at: datetime | None = None
        self._seen_after_commit: set[str] = self.seen

    def ready(self, now: datetime) -> bool:
        # Due at the tick nearest the due time: ticks jitter around their interval.
        slack = timedelta(seconds=self.budget.base_interval / 2)
        return self.next_poll_at is None or now + slack >= self.next_poll_at

    async def fetch(self, agents_by_user: Mapping[str, int], now: datetime) -> Polled:
        floor = None if self.watermark is None else self.watermark - SPELL_OVERLAP
        polled = Polled()
        spells: list[Spell] = []
        async for page in self.salesforce.query_pages(_spell_query(floor)):
            polled.api_reads += 1
            for record in page:
                try:
                    spells.append(Spell.from_record(record))
                except RecordError as error:
                    polled.problems.append(str(error))
        self.budget.record(self.salesforce.api_usage)
        self.next_poll_at = now + timedelta(seconds=self.budget.interval())
        observed = spell_observations(spells, agents_by_user)
        for key, observation in observed:
            # A spell read again only because it ended now: its start is older than the window, seen before.
            if key not in self.seen and (floor is None or observation.at > floor):
                polled.seen_keys.append(key)
                polled.observations.append(observation)
        # Read up to: the newest spell, or at least our poll's start less the clock skew allowed
        # (Salesforce's clock may be that far behind ours; late commits are what the overlap is for).
        known = [spell.latest for spell in spells] + ([self.watermark] if self.watermark is not None else [])
        watermark = max([*known, now - self.clock_skew])
        polled.cursors[SALESFORCE_CURSOR] = to_utc_iso(watermark)
        # The next poll re-reads only keys stamped after its floor, and every one of them is in this read.
        next_floor = watermark - SPELL_OVERLAP
        self._seen_after_commit = {key for key, o in observed if o.at > next_floor}
        return polled

    def committed(self, polled: Polled) -> None:
        cursor = polled.cursors.get(SALESFORCE_CURSOR)
        if cursor is not None:
            self.watermark = parse_api_time(cursor, "the Salesforce watermark")
            self.seen = self._seen_after_commit


def _spell_query(floor: datetime | None) -> str:
    """Spells that started or ended after `floor`; without one, the current spells."""
    if floor is None:
        where = "IsCurrentState = true"
    else:
        since = quote(floor)
        where = f"StatusStartDate > {since} OR StatusEndDate > {since}"
    return f"SELECT {SPELL_FIELDS} FROM UserServicePresence WHERE {where} ORDER BY StatusStartDate"


async def read_current_spells(salesforce: SalesforceClient) -> list[Spell]:
    """Every current spell (who is in which Omni status now): reconcile's full read of Salesforce."""
    return [Spell.from_record(record) for record in await salesforce.query(_spell_query(None))]
