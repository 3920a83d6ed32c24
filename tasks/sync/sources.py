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

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import NamedTuple, Protocol

from presence_sync.connectors import (
    ConnectorError,
    CxoneAgentState,
    CxoneClient,
    DeadlineExceeded,
    PresenceSpell,
    SalesforceClient,
    spell_pages,
)
from presence_sync.connectors.presence import parse_api_time
from presence_sync.connectors.timestamps import to_utc_iso
from presence_sync.engine import Observation, WriteResult
from presence_sync.tasks.sync.budget import PollBudget
from presence_sync.tasks.sync.observations import cxone_observation, spell_observations

logger = logging.getLogger(__name__)

CXONE_CURSOR = "cxone"
SALESFORCE_CURSOR = "salesforce"
# Salesforce stamps spells in milliseconds and may commit them out of order by a little: a spell
# committed up to this long after its stamp is still read (re-read, and what was seen already dropped).
SPELL_OVERLAP = timedelta(seconds=5)
# How often a poll is a sweep, re-reading the overlap; the polls between read from the watermark only.
# Re-reading it every poll cost six polls' worth of records each second (seconds of polling after a
# 10,000-agent burst); a spell committed late is now found by the next sweep, at most this much later.
SPELL_SWEEP_EVERY = timedelta(seconds=5)


@dataclass
class Polled:
    """One read of one system: the observations, the cursor state that covers them, what was read."""

    observations: list[Observation] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)  # saved with the batch's outcome
    seen_keys: list[str] = field(default_factory=list)  # Salesforce spell keys to remember, likewise
    api_reads: int = 0
    problems: list[str] = field(default_factory=list)  # records skipped, in plain words
    write_results: list[WriteResult] = field(default_factory=list)  # what earlier writes came to (console acks)


HandOut = Callable[[Polled], None]


class ChangeSource(Protocol):
    """One system's changes for the tick, and the cursor the source owns (see the module docstring)."""

    system: str  # "CXone" | "Salesforce": how stats and messages name it
    # Whether a read asks for its pages at once (after the first): deciding a page handed out early then
    # holds no later page back. A read that asks for each page once the one before is in is held back.
    pages_at_once: bool

    def ready(self, now: datetime) -> bool:
        """Whether a fetch is due now."""
        ...

    async def fetch(self, now: datetime, early: HandOut | None = None) -> Polled:
        """The changes past the committed cursor, with the cursor state that covers them. A source that
        reads in pages may hand `early` each page's changes as soon as it is read (a burst's read is
        many): the batch it returns then holds the rest, and its cursor state covers both."""
        ...

    def committed(self, polled: Polled) -> None:
        """The outcome of `polled` and its cursor state are saved: move on past it."""
        ...


class CxonePollSource:
    """`GET /agents/states?updatedSince=cursor`; the cursor is the previous answer's `lastPollTime`.

    Without a cursor (the first run), every agent's current state is read. Polled every tick. A read
    of many pages (a burst's) hands each page's states to `early` as the page arrives: the listing asks
    for its pages after the first at once (`connectors.paging`), so the tick decides the first while
    the others are out.
    """

    system = "CXone"
    pages_at_once = True

    def __init__(self, cxone: CxoneClient, cursor: str | None) -> None:
        self.cxone = cxone
        self.cursor = cursor

    def ready(self, now: datetime) -> bool:
        return True

    async def fetch(self, now: datetime, early: HandOut | None = None) -> Polled:
        handed: set[str] = set()  # source ids of the states handed out page by page

        def hand_out(states: list[CxoneAgentState]) -> None:
            observations = [cxone_observation(state) for state in states if state.source_id not in handed]
            handed.update(observation.source_id for observation in observations)
            if observations and early is not None:
                early(Polled(observations=observations))

        page = await self.cxone.agent_states(updated_since=self.cursor, on_page=None if early is None else hand_out)
        polled = Polled(api_reads=1, problems=list(page.problems))
        polled.observations = [cxone_observation(record) for record in page.states if record.source_id not in handed]
        if page.last_poll_time:
            polled.cursors[CXONE_CURSOR] = page.last_poll_time
        return polled

    def committed(self, polled: Polled) -> None:
        self.cursor = polled.cursors.get(CXONE_CURSOR, self.cursor)


class SalesforcePollSource:
    """Polls UserServicePresence spells from a watermark, with sweeps and de-duplication by spell key.

    The cursor (watermark) is the time up to which every spell has been read: the newest spell seen,
    or, when none is newer, the poll's own start less the clock skew allowed (so a quiet org's polls
    stop re-reading the last burst). Without one, the current spells are read (a full picture to start
    from). A poll asks for spells that started or ended after the watermark. Every `SPELL_SWEEP_EVERY`
    a sweep asks from the watermark the previous sweep started from, less `SPELL_OVERLAP`, so that a
    spell Salesforce committed up to that late is still read; the sweep runs in the background (after
    a burst it re-reads the burst, seconds of pages, which no tick waits for) and the first poll after
    it finished hands out what it found. A poll's own read hands each page's spell starts to `early`
    as the page arrives (a burst's read is ten pages). Keys already seen are dropped (they are
    remembered as long as a sweep may read them again). Only spells of `agents_by_user` (linked users)
    count.
    `budget` sets how often it polls; `interval_factor` stretches that while something else (consoles
    pushing their changes) already reports what the poll would find, and `already_reported` drops a
    spell that such a report carried already. `sweep_deadline_seconds` bounds a sweep (it is started
    again at the next poll when it failed or ran out of time). `close()` stops a sweep under way.
    """

    system = "Salesforce"
    pages_at_once = False  # each page's request names the next (nextRecordsUrl)

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
        sweep_deadline_seconds: float = 60.0,
    ) -> None:
        self.salesforce = salesforce
        self.interval_factor = interval_factor
        self.already_reported = already_reported
        self.clock_skew = clock_skew
        self.sweep_deadline_seconds = sweep_deadline_seconds
        self.watermark = None if cursor is None else parse_api_time(cursor, "the saved Salesforce watermark")
        self.sweep_mark: datetime | None = None  # the watermark the last sweep read from (None: sweep next)
        self.next_sweep_at: datetime | None = None
        # Seen keys with their spell time; the saved ones (their time not kept) count as of the watermark.
        self.seen: dict[str, datetime] = dict.fromkeys(seen, self.watermark or _LONG_AGO)
        self.budget = budget
        self.agents_by_user = agents_by_user
        self.next_poll_at: datetime | None = None
        self._sweep: asyncio.Task[_Read] | None = None
        self._after_commit: _SourceState | None = None

    def ready(self, now: datetime) -> bool:
        # Due at the tick nearest the due time: ticks jitter around their interval.
        slack = timedelta(seconds=self.budget.base_interval / 2)
        return self.next_poll_at is None or now + slack >= self.next_poll_at

    async def fetch(self, now: datetime, early: HandOut | None = None) -> Polled:
        swept = self._finished_sweep()
        factor = self.interval_factor() if self.interval_factor is not None else 1.0
        # The next sweep starts once this one's outcome is saved: it reads from where this one began.
        sweep_due = swept is None and self.watermark is not None and self._sweep is None and (
            self.next_sweep_at is None or now + timedelta(seconds=self.budget.base_interval / 2) >= self.next_sweep_at
        )
        # Polls paced slower than sweeps (a tight API budget) read the overlap themselves: one request.
        inline = sweep_due and self.budget.interval() * factor >= SPELL_SWEEP_EVERY.total_seconds()
        floor = self.watermark
        if sweep_due and self.watermark is not None:
            self.next_sweep_at = now + SPELL_SWEEP_EVERY
            sweep_floor = (self.sweep_mark or self.watermark) - SPELL_OVERLAP
            if inline:
                floor = sweep_floor
            else:
                self._sweep = asyncio.create_task(self._sweep_read(sweep_floor, self.watermark))
        handed: set[str] = set()  # keys of the spell starts handed out page by page
        read = await self._read(floor, self.watermark, None if early is None else partial(
            self._hand_out_starts, early, floor, handed
        ))
        if inline:
            swept = read
        self.budget.record(self.salesforce.api_usage)
        self.next_poll_at = now + timedelta(seconds=self.budget.interval() * factor)
        polled = Polled()
        seen = dict(self.seen)
        for part in (read, swept) if swept is not None and swept is not read else (read,):
            polled.api_reads += part.api_reads
            polled.problems += part.problems
            # Keys seen before keep the time they have: a saved key's (the watermark) is never earlier.
            for key, observation in spell_observations(part.spells, self.agents_by_user, known=seen):
                # A spell read again only because it ended now: its start is older than the read, seen before.
                if key not in seen and (part.floor is None or observation.at > part.floor):
                    polled.seen_keys.append(key)
                    if key not in handed and not self._reported(observation):
                        polled.observations.append(observation)
                seen[key] = observation.at
        # Read up to: the newest spell, or at least our poll's start less the clock skew allowed
        # (Salesforce's clock may be that far behind ours; late commits are what the sweeps are for).
        known = [spell.latest for spell in read.spells] + ([self.watermark] if self.watermark is not None else [])
        watermark = max([*known, now - self.clock_skew])
        polled.cursors[SALESFORCE_CURSOR] = to_utc_iso(watermark)
        sweep_mark = self.sweep_mark
        if swept is not None or self.watermark is None:
            sweep_mark = swept.started_from if swept is not None else None
            # No later read starts before the next sweep's floor: forget the keys stamped before it.
            next_sweep_floor = (sweep_mark or watermark) - SPELL_OVERLAP
            seen = {key: at for key, at in seen.items() if at > next_sweep_floor}
        self._after_commit = _SourceState(seen, sweep_mark)
        return polled

    def _hand_out_starts(self, early: HandOut, floor: datetime | None, handed: set[str], spells: list[PresenceSpell]) -> None:
        """A page's new spell starts, handed out before the read ends. Current spells come first
        (`spell_query`), so what agents did just before a burst reaches the tick with the burst's first
        page, not its last. Log-outs wait for the whole read, which says whether a spell was followed."""
        polled = Polled()
        started = spells if floor is None else [spell for spell in spells if spell.start > floor]
        for key, observation in spell_observations(started, self.agents_by_user, known=self.seen, ends=False):
            handed.add(key)
            if not self._reported(observation):
                polled.observations.append(observation)
        if polled.observations:
            early(polled)

    def _reported(self, observation: Observation) -> bool:
        return self.already_reported is not None and self.already_reported(observation)

    def committed(self, polled: Polled) -> None:
        cursor = polled.cursors.get(SALESFORCE_CURSOR)
        if cursor is not None and self._after_commit is not None:
            self.watermark = parse_api_time(cursor, "the Salesforce watermark")
            self.seen, self.sweep_mark = self._after_commit
            self._after_commit = None

    def close(self) -> None:
        sweep, self._sweep = self._sweep, None
        if sweep is not None:
            if sweep.done() and not sweep.cancelled():
                sweep.exception()  # retrieved: a failure no later poll will report is not logged as lost
            sweep.cancel()

    async def _sweep_read(self, floor: datetime, started_from: datetime) -> _Read:
        # A poll's own read is bounded by the runner's poll deadline; a sweep runs outside it.
        async with asyncio.timeout(self.sweep_deadline_seconds):
            return await self._read(floor, started_from)

    async def _read(
        self, floor: datetime | None, started_from: datetime | None,
        on_page: Callable[[list[PresenceSpell]], None] | None = None,
    ) -> _Read:
        read = _Read(floor, started_from)
        async for page in spell_pages(self.salesforce, floor):
            read.api_reads += 1
            read.spells += page.records
            read.problems += page.problems
            if on_page is not None:
                on_page(page.records)
        return read

    def _finished_sweep(self) -> _Read | None:
        """A sweep's read once it is done. One that failed is logged and started again with the next
        poll (the polls from the watermark go on meanwhile; only late commits wait for a sweep)."""
        sweep = self._sweep
        if sweep is None or not sweep.done():
            return None
        self._sweep = None
        error = None if sweep.cancelled() else sweep.exception()
        if sweep.cancelled() or error is not None:
            self.next_sweep_at = None
            if isinstance(error, TimeoutError):
                error = DeadlineExceeded(
                    f"it took longer than {self.sweep_deadline_seconds:g} s (sync.poll_deadline_seconds)",
                    system=self.system,
                )
            if isinstance(error, ConnectorError):
                logger.warning("presence-sync: a sweep of Salesforce presence spells failed (%s); it is started "
                               "again with the next poll", error)
            elif error is not None:
                raise error
            return None
        return sweep.result()


_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class _Read:
    """What one spell query read, from `floor`; a sweep's `started_from` is the watermark it began at."""

    floor: datetime | None
    started_from: datetime | None
    spells: list[PresenceSpell] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    api_reads: int = 0


class _SourceState(NamedTuple):
    """What a Salesforce poll moves its source on to, once its batch is saved."""

    seen: dict[str, datetime]
    sweep_mark: datetime | None
