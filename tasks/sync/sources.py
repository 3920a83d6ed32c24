"""Where a tick's observations come from: one `ChangeSource` per system, each owning its cursor.

Both sources implement the same interface, the way Airbyte's CDK `Cursor` works: `fetch(now)` reads
what changed past the source's committed cursor and hands out a `Polled` batch with the cursor state
that covers it; the runner saves that state in the transaction that saves the batch's outcome, and
only then calls `committed(polled)`, so a source never moves past data that is not handled. A crash
in between re-reads the batch. `ready(now)` says whether a fetch is due (the Salesforce poll paces
itself by the API budget). A push source (e.g. a Streaming API subscription) can replace a poll.

    cxone = CxonePollSource(ctx.cxone, cursor=store.sync.get_cursor(CXONE_CURSOR))
    polled = await cxone.fetch(now)
    ...commit polled.cursors and polled.seen_keys with the outcome...
    cxone.committed(polled)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from presence_sync.connectors import CxoneClient, PresenceSpell, SalesforceClient, spell_pages
from presence_sync.connectors.presence import parse_api_time
from presence_sync.connectors.timestamps import to_utc_iso
from presence_sync.engine import Observation, WriteResult
from presence_sync.tasks.sync.budget import PollBudget
from presence_sync.tasks.sync.observations import cxone_observation, spell_observations

CXONE_CURSOR = "cxone"
SALESFORCE_CURSOR = "salesforce"
# Salesforce stamps spells in milliseconds and may commit them out of order by a little: re-read this
# much before the watermark and drop what was seen already.
SPELL_OVERLAP = timedelta(seconds=5)


@dataclass
class Polled:
    """One read of one system: the observations, the cursor state that covers them, what was read."""

    observations: list[Observation] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)  # saved with the batch's outcome
    seen_keys: list[str] = field(default_factory=list)  # Salesforce spell keys to remember, likewise
    api_reads: int = 0
    problems: list[str] = field(default_factory=list)  # records skipped, in plain words
    write_results: list[WriteResult] = field(default_factory=list)  # what earlier writes came to (console acks)


class ChangeSource(Protocol):
    """One system's changes for the tick, and the cursor the source owns (see the module docstring)."""

    system: str  # "CXone" | "Salesforce": how stats and messages name it

    def ready(self, now: datetime) -> bool:
        """Whether a fetch is due now."""
        ...

    async def fetch(self, now: datetime) -> Polled:
        """The changes past the committed cursor, with the cursor state that covers them."""
        ...

    def committed(self, polled: Polled) -> None:
        """The outcome of `polled` and its cursor state are saved: move on past it."""
        ...


class CxonePollSource:
    """`GET /agents/states?updatedSince=cursor`; the cursor is the previous answer's `lastPollTime`.

    Without a cursor (the first run), every agent's current state is read. Polled every tick.
    """

    system = "CXone"

    def __init__(self, cxone: CxoneClient, cursor: str | None) -> None:
        self.cxone = cxone
        self.cursor = cursor

    def ready(self, now: datetime) -> bool:
        return True

    async def fetch(self, now: datetime) -> Polled:
        page = await self.cxone.agent_states(updated_since=self.cursor)
        polled = Polled(api_reads=1, problems=list(page.problems))
        polled.observations = [cxone_observation(record) for record in page.states]
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
    already seen in the overlap are dropped. Only spells of `agents_by_user` (linked users) count.
    `budget` sets how often it polls; `interval_factor` stretches that while something else (consoles
    pushing their changes) already reports what the poll would find, and `already_reported` drops a
    spell that such a report carried already.
    """

    system = "Salesforce"

    def __init__(
        self,
        salesforce: SalesforceClient,
        cursor: str | None,
        seen: Iterable[str],
        budget: PollBudget,
        agents_by_user: Mapping[str, int],
        clock_skew: timedelta = timedelta(seconds=1),
        interval_factor: Callable[[], float] | None = None,
        already_reported: Callable[[Observation], bool] | None = None,
    ) -> None:
        self.salesforce = salesforce
        self.interval_factor = interval_factor
        self.already_reported = already_reported
        self.clock_skew = clock_skew
        self.watermark = None if cursor is None else parse_api_time(cursor, "the saved Salesforce watermark")
        self.seen = set(seen)
        self.budget = budget
        self.agents_by_user = agents_by_user
        self.next_poll_at: datetime | None = None
        self._seen_after_commit: set[str] = self.seen

    def ready(self, now: datetime) -> bool:
        # Due at the tick nearest the due time: ticks jitter around their interval.
        slack = timedelta(seconds=self.budget.base_interval / 2)
        return self.next_poll_at is None or now + slack >= self.next_poll_at

    async def fetch(self, now: datetime) -> Polled:
        floor = None if self.watermark is None else self.watermark - SPELL_OVERLAP
        polled = Polled()
        spells: list[PresenceSpell] = []
        async for page in spell_pages(self.salesforce, floor):
            polled.api_reads += 1
            spells += page.records
            polled.problems += page.problems
        self.budget.record(self.salesforce.api_usage)
        factor = self.interval_factor() if self.interval_factor is not None else 1.0
        self.next_poll_at = now + timedelta(seconds=self.budget.interval() * factor)
        observed = spell_observations(spells, self.agents_by_user)
        for key, observation in observed:
            # A spell read again only because it ended now: its start is older than the window, seen before.
            if key not in self.seen and (floor is None or observation.at > floor):
                polled.seen_keys.append(key)
                if self.already_reported is None or not self.already_reported(observation):
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
