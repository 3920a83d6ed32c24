"""The sync tick: poll both systems, decide, record, hand the writes over; plain async, no Prefect per change.

One `SyncRunner` is one holder of the store's sync lease (a sync window, or a standalone reconcile).
It loads what it needs once (links, rules, team codes, status ids, every agent's memory, cursors)
and then each tick does a fixed number of store queries and API reads, however many agents:

1. renew the lease; fold in the results of writes that finished since the last tick;
2. poll CXone and Salesforce concurrently, each as its own unit under `poll_deadline_seconds`, each
   taken in as soon as it answers: a slow read of one (a burst's pages) does not hold the other's
   changes back, and a system whose poll fails or runs out of time is simply polled again next tick;
3. `decide` on the observations plus the agents whose echo or retry is due, `TICK_CHUNK_AGENTS`
   agents at a time (what the polls brought and the due first, then any left over from earlier ticks;
   those left over are decided while a poll is out, too), and per chunk:
4. save memory, audit, in-flight writes and the cursors of the polls whose agents are all decided
   by now in ONE transaction (fenced by the lease), in a thread, while the next chunk is decided (each
   chunk's save waits for the one before; a tick's last is waited for before the tick ends);
5. once saved, hand the writes to the system's `Applier` (tasks/sync/apply.py), which applies them in the
   background, each unit (a CXone state, a batch of Salesforce commands) under
   `write_deadline_seconds`. Once the interval is used up, the agents not decided yet wait for the
   next tick (a burst of 10,000 takes a few), so that polling keeps its interval; the tick waits for
   its writes for what is left of it. Results are folded into memory by the tick that sees them,
   saved by its transaction.

A tick therefore takes at most `poll_deadline_seconds`, its interval, and one chunk's decide and
store transaction, whatever either system does; what could not be done is retried by a later tick.

What runs concurrently, and why each agent's order still holds: the two polls; the two systems'
appliers; within an applier, writes of different agents; a chunk's save and the next chunk's decide
(different agents; the save's rows are built before the decide starts). Per agent and system there is
at most one write in flight: a later decision for a busy agent waits in the applier behind the earlier
write and replaces any write still waiting there (it supersedes it, so only the newest decision is sent).
Polls are not ordered against writes, and need not be: the engine recognises the echo of a write
from the observation, whenever it arrives, and a late write result for a superseded command is
ignored (`record_write_results` matches by command id).

Saving before handing over is what makes a crash harmless: a restart finds every write it may have
made in memory as in flight, so its echo is recognised and nothing is written twice; a write that
never left is retried after the echo timeout. Cursors never run ahead of the decisions they cover:
a restart reads again what was polled but not decided, and the engine drops what it already knew.

    runner = SyncRunner(ctx, holder="flow-run-123")
    if await runner.acquire():
        await runner.tick()
        await runner.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import itertools
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from presence_sync.connectors import (
    ConnectorError,
    CxoneAgentState,
    DeadlineExceeded,
    MalformedResponse,
    PresenceSpell,
    RequestLimitExceeded,
    SalesforceClient,
    current_spells,
    is_transient,
)
from presence_sync.engine import (
    AgentLink,
    AgentMemory,
    AuditRecord,
    ConflictPolicy,
    MemoryFormatError,
    Observation,
    Outcome,
    RuleBook,
    Side,
    SyncPolicy,
    WakeQueue,
    Write,
    WriteOutcome,
    WriteResult,
    decide,
    reconcile,
    record_write_results,
)
from presence_sync.connectors.salesforce import COMPOSITE_LIMIT
from presence_sync.engine.audit import describe
from presence_sync.engine.shards import ALL, SYNC_LEASE, Shard
from presence_sync.models.config import SyncSettings
from presence_sync.models.store import ContactCenter, Lease, LeaseLostError, Store
from presence_sync.tasks.context import Context
from presence_sync.tasks.sync.apply import Applier, WriteTargets, publish_commands, set_cxone_states
from presence_sync.tasks.sync.budget import PollBudget
from presence_sync.tasks.sync.console_channel import CONSOLE_CURSOR, ConsoleChannel, open_console_channel
from presence_sync.tasks.sync.observations import cxone_observation, no_spell_observation, spell_observations
from presence_sync.tasks.sync.record import agent_row, audit_rows
from presence_sync.tasks.sync.rulebook import load_rulebook
from presence_sync.tasks.sync.sessions import join_sessions_ahead
from presence_sync.tasks.sync.setup_watch import SetupWatch
from presence_sync.tasks.sync.shard_state import LAST_TICK_CURSOR, last_tick_value, other_count_holders
from presence_sync.tasks.sync.sources import (
    CXONE_CURSOR,
    SALESFORCE_CURSOR,
    ChangeSource,
    CxonePollSource,
    HandOut,
    Polled,
    SalesforcePollSource,
)
from presence_sync.tasks.sync.summary import Anomaly, WindowStats

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")
AnomalyHook = Callable[[Anomaly], Awaitable[None]]

LEASE_NAME = SYNC_LEASE  # the unsharded sync's; shard i/n holds "sync:i/n" (engine/shards.py)
MIN_LEASE_TTL_SECONDS = 15.0
API_USAGE_CURSOR = "salesforce-api-usage"
REJECTED_RECORDS_CURSOR = "rejected-records"  # {"CXone": n, "Salesforce": n, "last": problem}: for status
PROBLEMS_REMEMBERED = 10_000  # a record read again (poll overlap, reconcile) is logged and counted once
RECONCILE_REQUEST_CURSOR = "reconcile-request"
RECONCILE_DONE_CURSOR = "reconcile-done"
RECONCILE_REPORT_CURSOR = "reconcile-report"
SEEN_SPELLS_KEPT = timedelta(hours=1)  # far beyond the poll overlap; older keys can't come back
# Agents decided and saved at a time: a burst's first writes leave while the rest are decided.
TICK_CHUNK_AGENTS = 1000
# The cyclic collector's thresholds in the sync's process (CPython's are 700, 10, 10): see `settle_heap`.
GC_THRESHOLDS = (50_000, 20, 10)
# The spare joins ahead wait at most this long for the CXone writes to drain before they join anyway
# (Applier.wait's timeout: a center that always has a write in flight still gets its sessions joined).
JOIN_IDLE_WAIT_SECONDS = 5.0
_NOTABLE = frozenset({Outcome.FAILED, Outcome.GAVE_UP, Outcome.FLAP})


def utc_now() -> datetime:
    return datetime.now(UTC)


def sync_policy(settings: SyncSettings) -> SyncPolicy:
    """The engine's policy from the config's `sync` section."""
    return SyncPolicy(
        conflict=ConflictPolicy(settings.conflict_policy.value),
        flap_threshold=settings.flap_threshold,
        flap_window_seconds=settings.flap_window_seconds,
        echo_timeout_seconds=settings.echo_timeout_seconds,
    )


def lease_ttl_seconds(interval_seconds: float) -> float:
    """Long enough to outlast a slow tick; short enough that a crashed holder is replaced quickly."""
    return max(MIN_LEASE_TTL_SECONDS, 5 * interval_seconds)


@dataclass(frozen=True)
class SyncSetup:
    """What a holder reads once: rules, links (with their team's codes) and Salesforce status ids."""

    rulebook: RuleBook
    links: dict[int, AgentLink]
    agents_by_user: dict[str, int]
    targets: WriteTargets


async def load_setup(ctx: Context, shard: Shard = ALL) -> SyncSetup:
    """Links (of `shard`'s agents) and rules from the store, team codes from CXone, status ids from
    Salesforce (one read each)."""
    stored_links = [
        link for link in await asyncio.to_thread(ctx.store.setup.load_links) if shard.owns(link.cxone_agent_id)
    ]
    rulebook = await asyncio.to_thread(load_rulebook, ctx.store)
    team_ids = sorted({link.team_id for link in stored_links if link.team_id is not None})
    team_codes, statuses = await asyncio.gather(
        asyncio.gather(*(ctx.cxone.team_unavailable_codes(team_id) for team_id in team_ids)),
        ctx.salesforce.query("SELECT Id, DeveloperName FROM ServicePresenceStatus"),
    )
    codes_of = {
        team_id: frozenset(str(c["outStateName"]) for c in codes if c.get("isActive", True))
        for team_id, codes in zip(team_ids, team_codes, strict=True)
    }
    links = {
        link.cxone_agent_id: AgentLink(
            link.cxone_agent_id,
            link.sf_user_id,
            link.team_id,
            codes_of.get(link.team_id, frozenset()) if link.team_id is not None else frozenset(),
        )
        for link in stored_links
    }
    return SyncSetup(
        rulebook=rulebook,
        links=links,
        agents_by_user={link.sf_user_id: agent_id for agent_id, link in links.items()},
        targets=WriteTargets(
            sf_user_of={agent_id: link.sf_user_id for agent_id, link in links.items()},
            status_ids={str(s["DeveloperName"]): str(s["Id"]) for s in statuses},
        ),
    )


async def claim_store(ctx: Context) -> None:
    """Refuse a store of another contact center (`StoreOwnedElsewhereError`); claim an unclaimed one.

    Both connectors are logged in by then (`load_setup` read through them). Without a tenant id
    (configured API URLs and a token that names none) the store can't be told apart: it is left as is.
    """
    tenant = ctx.cxone.tenant_id or await ctx.cxone.authenticate()  # the token's id_token names it
    if tenant is None:
        logger.info("CXone did not say which tenant this is: the store's contact center is not checked")
        return
    center = ContactCenter(tenant, ctx.salesforce.org_id)
    await asyncio.to_thread(ctx.store.identity.claim, center)


@dataclass(frozen=True)
class Repair:
    """One write a reconcile pass made to heal drift, and how it went."""

    agent_id: int
    system: str  # the system written to: "CXone" | "Salesforce"
    shown: str  # what that system showed
    target: str
    rule_row: str | None
    result: str  # "ok", or why it failed

    def as_row(self) -> dict[str, Any]:
        return {
            "agent": self.agent_id, "system": self.system, "was": self.shown, "set to": self.target,
            "rule row": self.rule_row or "", "result": self.result,
        }


@dataclass
class ReconcileReport:
    """What a reconcile pass compared and repaired."""

    agents_checked: int = 0
    drift_seen: int = 0  # states a full read showed that the polls had not
    repairs: list[Repair] = field(default_factory=list)
    held_by: str = ""  # the run that did the pass

    @property
    def failed(self) -> list[Repair]:
        return [repair for repair in self.repairs if repair.result != "ok"]

    @property
    def headline(self) -> str:
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return (
            f"reconciled {self.agents_checked} agents: {self.drift_seen} missed changes seen, "
            f"{len(self.repairs)} writes to repair drift{failed}"
        )

    def to_json(self) -> str:
        return json.dumps({
            "agents_checked": self.agents_checked, "drift_seen": self.drift_seen, "held_by": self.held_by,
            "repairs": [repair.__dict__ for repair in self.repairs],
        })

    @classmethod
    def from_json(cls, text: str) -> ReconcileReport:
        data = json.loads(text)
        return cls(data["agents_checked"], data["drift_seen"], [Repair(**r) for r in data["repairs"]], data["held_by"])


@dataclass
class _Pending:
    """What the next commit saves: agents whose memory changed, audit records, the sources' cursor
    state (cursors, spell keys), and the CXone sessions the connector joined or found ended."""

    agents: set[int] = field(default_factory=set)
    audit: list[AuditRecord] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    seen_keys: list[str] = field(default_factory=list)
    sessions: dict[int, str | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.agents or self.audit or self.cursors or self.seen_keys or self.sessions)


@dataclass
class _Held:
    """A tick's polls' cursor state, saved once every agent they observed has been decided."""

    undecided: set[int]
    cursors: dict[str, str] = field(default_factory=dict)
    seen_keys: list[str] = field(default_factory=list)


class _PagesIn:
    """The pages that reads still out handed a tick (`ChangeSource.fetch`'s `early`), each with whether
    it is decided in whole chunks as it comes (a read that asks for its pages at once), and the one
    quarter chunk each other read allows before it ends: its first page's (see `SyncRunner.tick`)."""

    def __init__(self) -> None:
        self.handed: deque[tuple[Polled, bool]] = deque()  # taken before the batch of the read they came from
        self.arrived = asyncio.Event()
        self._reading: set[ChangeSource] = set()  # sources whose read holds its pages back and is still out
        self._allowed = 0

    def hand_out(self, source: ChangeSource, polled: Polled) -> None:
        self.handed.append((polled, source.pages_at_once))
        if not source.pages_at_once and source not in self._reading:
            self._reading.add(source)
            self._allowed += 1
        self.arrived.set()

    def ended(self, source: ChangeSource) -> None:
        self._reading.discard(source)

    def allow_chunk(self) -> bool:
        """Whether a quarter chunk may be decided now: while no read is out, or once for each read that is."""
        return not self._reading or self._allowed > 0

    def chunk_taken(self) -> None:
        if self._reading:
            self._allowed -= 1


class SyncRunner:
    """One lease holder's sync state and its ticks (see the module docstring).

    `budget` paces the Salesforce source and is what the runner reports as the API budget
    (default: the config's reserve, polling every `interval_seconds` while the budget allows).
    `write_wait_seconds` is how long a tick waits for the writes it handed to the appliers
    (default: what is left of its interval, so that waiting never holds the next poll back, while an
    ordinary tick still folds its writes' results in, acknowledgements included, before the next
    decides; reconcile and `close` wait for all of theirs).
    `shard` (default: every agent) limits the runner to that shard's agents, under the shard's own
    lease and cursor names (`Shard.lease_name`, `Shard.cursor`); `_guard_shard` enforces it on every
    save and write.
    """

    def __init__(
        self,
        ctx: Context,
        *,
        holder: str,
        run_id: str | None = None,
        shard: Shard = ALL,
        clock: Clock = utc_now,
        on_anomaly: AnomalyHook | None = None,
        interval_seconds: float | None = None,
        budget: PollBudget | None = None,
        write_wait_seconds: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.store: Store = ctx.store
        self.settings = ctx.config.sync
        self.interval_seconds = interval_seconds or self.settings.interval_seconds
        self.budget = budget or PollBudget(self.interval_seconds, self.settings.budget_reserve_fraction)
        self.policy = sync_policy(self.settings)
        self.holder = holder
        self.run_id = run_id or holder
        self.shard = shard
        self.lease_name = shard.lease_name
        self.blocked_by: list[str] = []  # runs of another shard count that kept this one from its lease
        self.clock = clock
        self.on_anomaly = on_anomaly
        self.lease_ttl = lease_ttl_seconds(self.interval_seconds)
        # How long a tick waits for the writes it handed over (None: the rest of its interval): the
        # rest is the background's, and the next tick folds their results in, so polling keeps its
        # interval through a burst.
        self.write_wait_seconds = write_wait_seconds
        self.stats = WindowStats()
        self.lease: Lease | None = None
        self.setup: SyncSetup | None = None
        self.memory: dict[int, AgentMemory] = {}
        self._wake = WakeQueue()
        self._pending = _Pending()
        self._backlog: dict[int, list[Observation]] = {}  # polled, not yet decided; oldest first
        self._echoing: dict[int, None] = {}  # backlog agents whose every observation looks like our echo
        self._due: set[int] = set()  # agents due (echo, retry) not yet decided
        self._held: deque[_Held] = deque()  # polls whose cursor state waits for their agents' decisions
        self._changed_at: dict[int, float] = {}  # agent -> when its newest undecided change was made
        self._sources: list[ChangeSource] = []
        self._appliers: dict[Side, Applier] = {}
        self._problems_seen: dict[tuple[str, str], None] = {}  # insertion-ordered: oldest forgotten first
        self._rejected: dict[str, int] = {}  # malformed records skipped, by system, over the store's life
        self._reconciled_request: str | None = None
        self._anomaly_kinds: set[str] = set()
        self._notable: list[AuditRecord] = []
        self._joining: asyncio.Task[int] | None = None  # CXone sessions joined ahead (tasks/sync/sessions.py)
        self._saving: asyncio.Task[None] | None = None  # a chunk's save, then its writes handed over (_decide_chunk)
        self.console: ConsoleChannel | None = None
        self._setup_watch = SetupWatch(self.store)

    # -- lease ---------------------------------------------------------------------------------

    @property
    def held(self) -> bool:
        return self.lease is not None

    async def acquire(self, queue: bool = True) -> bool:
        """Take the lease if it is free, expired or handed to this run, and load the state to sync from;
        False while held elsewhere (with `queue`, this run is then next: the holder's release hands it
        over), or while a run of another shard count holds a lease (its agents overlap this shard's).

        The other counts are checked before and again after taking the lease: of two runs racing, the
        later sees the earlier and backs off, so two counts never sync at once (`blocked_by` says who).
        """
        if await self._other_counts_syncing():
            return False
        lease = await asyncio.to_thread(
            partial(self.store.leases.acquire, queue=queue),
            self.lease_name, self.holder, self.lease_ttl, self.clock(),
        )
        if lease is None:
            return False
        if await self._other_counts_syncing():
            await asyncio.to_thread(self.store.leases.release, lease)
            return False
        self.lease = lease
        try:
            await self._load()
        except BaseException:
            await self.release()
            raise
        return True

    async def _other_counts_syncing(self) -> bool:
        self.blocked_by = await asyncio.to_thread(other_count_holders, self.store, self.shard, self.clock())
        return bool(self.blocked_by)

    async def release(self) -> None:
        with contextlib.suppress(Exception):  # a chunk's save still in flight (its failure was reported)
            await self._saved()
        appliers, self._appliers = self._appliers, {}
        for applier in appliers.values():
            await applier.aclose()
        if self.lease is None:  # a run that stopped waiting is nobody's next holder
            await asyncio.to_thread(self.store.leases.withdraw, self.lease_name, self.holder)
            return
        lease, self.lease = self.lease, None
        successor = await asyncio.to_thread(self.store.leases.release, lease, self.clock())
        if successor is not None:
            logger.info("handed the sync lease %r to %s", self.lease_name, successor)

    async def close(self) -> None:
        """Save what the last writes came to, then hand the lease over at once."""
        if self._joining is not None:
            self._joining.cancel()
        try:
            if self.lease is not None:
                await self._saved()
                await self._wait_for_writes(self.settings.write_deadline_seconds)
                self._fold_results()
                self._release_held([])  # a last poll that brought no agents: its cursors
                self._pending.sessions.update(self.ctx.cxone.session_changes())
                if self._pending:
                    await self._commit()
        finally:
            for source in self._sources:
                if isinstance(source, SalesforcePollSource):
                    source.close()
            if self.console is not None:
                await self.console.close()
            await self.release()

    # -- the tick ------------------------------------------------------------------------------

    async def tick(self) -> None:
        """One poll-decide-record-apply round (see the module docstring). Raises `LeaseLostError`
        when another run took over."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        setup = self._require_setup()
        now = self.clock()
        await self._renew(now)
        if await self._setup_watch.changed(now):
            setup = await self._reload_setup()
        self.stats.ticks += 1
        self._fold_results()
        writes: list[Write] = []
        late_results: list[WriteResult] = []
        due = self._wake.pop_due(now)
        self._due |= due
        for agent_id in due:
            self._backlog.setdefault(agent_id, [])
        fresh = dict.fromkeys(sorted(due))  # this tick's agents, decided first: what the polls brought, and the due
        brought_more = False  # a poll brought agents since the last chunk: they go in a whole chunk
        chunks = 0

        def time_left() -> bool:
            return loop.time() - started < self.interval_seconds

        async def decide(chunk: list[int]) -> None:
            nonlocal late_results, brought_more, chunks
            writes.extend(await self._decide_chunk(setup, chunk, late_results, first=chunks == 0))
            late_results, brought_more, chunks = [], False, chunks + 1

        def take(polled: Polled, whole: bool = True) -> None:
            nonlocal fresh, brought_more
            brought = self._queue(polled)
            if brought:
                fresh = {**dict.fromkeys(brought), **fresh}
                brought_more = brought_more or whole

        # Each system's poll is taken in as soon as it answers, and a read of many pages (a burst's) as the
        # source hands its pages out: a slow read does not hold back the other's changes. While a poll is out
        # and the interval lasts, what a finished poll brought is decided, then the agents earlier ticks left
        # over, in quarter chunks: what a poll brings waits for at most one of those. While a Salesforce read is
        # out, one quarter chunk of what it brought is decided, with its first page (current spells first: what
        # people did just before a burst), and the rest once it ended: it asks for each page once the one before
        # is in, its pages are parsed on this loop, and decided as they came (in whole chunks), a burst's read
        # of 16,000 spells took 1.8 s, which every change made meanwhile waited for. A CXone read asks for its
        # pages after the first at once, so its pages are decided as they come, like finished polls: a burst's
        # first 1,000 agents while the other nine pages are out (the sync's CPU idled through the 0.3 s read).
        pages = _PagesIn()

        def take_pages() -> None:
            while pages.handed:
                take(*pages.handed.popleft())

        polls = {
            asyncio.ensure_future(self._fetch(source, now, partial(pages.hand_out, source))): source
            for source in self._sources if source.ready(now)
        }
        waiting: asyncio.Future[Any] | None = None
        try:
            await asyncio.sleep(0)  # the polls' requests leave before a chunk left over is decided
            while polls:
                pages.arrived.clear()
                for answered in [future for future in polls if future.done()]:
                    source = polls.pop(answered)
                    pages.ended(source)
                    polled = await self._polled(source, answered)
                    take_pages()  # a read's pages go before its batch, whose cursor state covers them (_Held)
                    if polled is not None:
                        take(polled)
                        late_results += polled.write_results
                take_pages()
                if not polls:
                    break
                chunk = []
                if time_left() and (brought_more or pages.allow_chunk()):
                    chunk = self._next_chunk(fresh, TICK_CHUNK_AGENTS if brought_more else TICK_CHUNK_AGENTS // 4)
                if chunk:
                    if not brought_more:
                        pages.chunk_taken()
                    await decide(chunk)
                else:
                    waiting = asyncio.ensure_future(pages.arrived.wait())
                    await asyncio.wait([*polls, waiting], return_when=asyncio.FIRST_COMPLETED)
                    waiting.cancel()
        except BaseException:
            if waiting is not None:
                waiting.cancel()
            for future in polls:
                future.cancel()
            await asyncio.gather(*polls, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._saved()
            raise
        # Then one chunk whatever the time, and more until the interval is used: a burst's first writes leave
        # while the rest is decided, and the agents left over wait for the next tick, after what its own polls
        # bring.
        await decide(self._next_chunk(fresh, TICK_CHUNK_AGENTS))
        while (fresh or self._backlog) and time_left():
            await decide(self._next_chunk(fresh, TICK_CHUNK_AGENTS))
        await self._saved()
        # Only this tick's writes are waited for: one stuck earlier does not hold every later tick.
        await self._wait_for_writes(self._write_wait(started), {w.command_id for w in writes})
        self._fold_results()
        await self._report_notable()

    def _queue(self, polled: Polled) -> list[int]:
        """Take a poll's observations (this shard's: every shard reads the whole page) into the backlog;
        return the agents with a person's change, newest and oldest change in turn: what people did just
        after and just before a burst goes ahead of the burst's middle. Agents whose observations all
        look like our own writes landing are left to `_next_chunk`, last: a burst's first echoes would
        otherwise hold up the rest of the burst, and an echo that waits a tick changes nothing."""
        observations = [o for o in polled.observations if self.shard.owns(o.agent_id)]
        self.stats.observed(observations)
        fresh: dict[int, None] = {}
        for observation in _both_ends(sorted(observations, key=lambda o: o.at)):
            agent_id = observation.agent_id
            known = self.memory.get(agent_id)
            if known is not None and known.awaits_echo(observation.side, observation.value):
                if agent_id not in self._backlog:
                    self._echoing[agent_id] = None
            else:
                self._echoing.pop(agent_id, None)
                fresh[agent_id] = None
            self._backlog.setdefault(agent_id, []).append(observation)
            self._changed_at[agent_id] = max(observation.at.timestamp(), self._changed_at.get(agent_id, 0.0))
        self._held.append(_Held(
            undecided={o.agent_id for o in observations}, cursors=dict(polled.cursors), seen_keys=list(polled.seen_keys)
        ))
        return list(fresh)

    def _next_chunk(self, fresh: dict[int, None], size: int) -> list[int]:
        """The next agents to decide: up to `size` of this tick's `fresh` (taken from it), else of the backlog.
        A chunk of fresh agents is topped up to a quarter chunk from the backlog, so that a quiet tick's
        echoes go with its changes, while a burst's leftovers still wait behind what the polls just brought."""
        chunk = _pop_first(fresh, size)
        room = (TICK_CHUNK_AGENTS // 4 if chunk else size) - len(chunk)
        if room <= 0:
            return chunk
        # People's changes left over (oldest first), then our echoes; never an agent already in the chunk.
        taken = set(chunk)
        people = (a for a in self._backlog if a not in self._echoing and a not in taken)
        return chunk + list(itertools.islice(itertools.chain(people, (a for a in self._echoing if a not in taken)), room))

    async def _decide_chunk(
        self, setup: SyncSetup, chunk: list[int], late_results: list[WriteResult], first: bool
    ) -> list[Write]:
        """Decide `chunk`'s agents on all their observations; save; hand the writes over."""
        now = self.clock()
        observations = [o for agent_id in chunk for o in self._backlog.pop(agent_id, ())]
        for agent_id in chunk:
            self._echoing.pop(agent_id, None)
        due = [agent_id for agent_id in chunk if agent_id in self._due]
        self._due.difference_update(due)
        decision = decide(setup.rulebook, setup.links, self.memory, observations, now, self.policy, due_agents=due)
        self._take(decision.memory, decision.audit)
        # What became of earlier console commands (failed, lost) reaches the engine like any write result.
        if late_results:
            self._take(*record_write_results(self.memory, late_results, now, self.policy))
        self._wake.update({agent_id: self.memory[agent_id] for agent_id in due if agent_id in self.memory})
        self._release_held(chunk)
        if first:
            self._pending.cursors[LAST_TICK_CURSOR] = last_tick_value(now, self.holder, len(setup.links))
        changed_at = {agent_id: self._changed_at.pop(agent_id) for agent_id in chunk if agent_id in self._changed_at}
        # Saved by a thread while the next chunk is decided; its writes are handed over once saved.
        await self._saved()
        self._saving = asyncio.ensure_future(self._submit_once_saved(self._start_save(), decision.writes, changed_at))
        return decision.writes

    async def _submit_once_saved(
        self, saving: Awaitable[None], writes: list[Write], changed_at: Mapping[int, float]
    ) -> None:
        await self._run_save(saving)
        self._submit(writes, changed_at)

    async def _saved(self) -> None:
        """Until the chunk save in flight is done and its writes handed over; raises what it failed with."""
        saving, self._saving = self._saving, None
        if saving is not None:
            await saving

    def _release_held(self, decided: list[int]) -> None:
        """A poll's cursor state goes into the next save once every agent it observed is decided, and
        only after every earlier poll's: a saved cursor never runs ahead of what is decided."""
        if not self._held:
            return
        agents = set(decided)
        for held in self._held:
            held.undecided -= agents
        while self._held and not self._held[0].undecided:
            held = self._held.popleft()
            self._pending.cursors.update(held.cursors)
            self._pending.seen_keys.extend(held.seen_keys)

    def _write_wait(self, tick_started: float) -> float:
        if self.write_wait_seconds is not None:
            return self.write_wait_seconds
        left = self.interval_seconds - (asyncio.get_running_loop().time() - tick_started)
        return max(0.0, min(self.settings.write_deadline_seconds, left))

    async def _polled(self, source: ChangeSource, answered: asyncio.Future[Polled]) -> Polled | None:
        """A poll's answer, counted, its source moved on; None when the read failed in a way the next tick's
        read may not see again (transiently, out of time, garbled): that tick simply reads it again."""
        error = answered.exception()
        if isinstance(error, ConnectorError) and _passing(error):
            self.stats.reads_failed += 1
            await self._anomaly("poll-failed", f"reading {source.system} failed and is retried next tick: {error}")
            return None
        polled = answered.result()
        if polled.api_reads:
            self.stats.api_reads[source.system] += polled.api_reads
        await self._skipped(source.system, polled.problems)
        if source.system == "Salesforce":
            await self._note_budget()
        source.committed(polled)  # the next poll reads on from here; the saved cursors wait (_Held)
        return polled

    async def _fetch(self, source: ChangeSource, now: datetime, early: HandOut) -> Polled:
        deadline = self.settings.poll_deadline_seconds
        try:
            async with asyncio.timeout(deadline):
                return await source.fetch(now, early)
        except TimeoutError:
            raise DeadlineExceeded(
                f"polling {source.system} took longer than its {deadline:g} s deadline "
                "(sync.poll_deadline_seconds); it is polled again next tick",
                system=source.system,
            ) from None

    async def _skipped(self, system: str, problems: list[str]) -> None:
        """Malformed records were skipped (the rest of their page used): log and count each one once."""
        new = [problem for problem in dict.fromkeys(problems) if (system, problem) not in self._problems_seen]
        for problem in new:
            self._problems_seen[(system, problem)] = None
            await self._anomaly("record-rejected", f"{system}: skipped a malformed record: {problem}")
        while len(self._problems_seen) > PROBLEMS_REMEMBERED:
            del self._problems_seen[next(iter(self._problems_seen))]
        if new:
            self.stats.rejected[system] += len(new)
            self._rejected[system] = self._rejected.get(system, 0) + len(new)
            self._pending.cursors[REJECTED_RECORDS_CURSOR] = json.dumps(
                {**self._rejected, "last": f"{system}: {new[-1]}", "at": self.clock().isoformat()}
            )

    def _submit(self, writes: list[Write], changed_at: Mapping[int, float] | None = None) -> None:
        """Hand the writes (already saved as in flight) to their system's applier, newest change first
        (`Applier.submit`): a write answering no change just polled (a retry, a repair) counts as now."""
        self._guard_shard((write.agent_id for write in writes), "a write")
        now, changed_at = self.clock().timestamp(), changed_at or {}
        newness = {write.agent_id: changed_at.get(write.agent_id, now) for write in writes}
        for side, applier in self._appliers.items():
            applier.submit((write for write in writes if write.side is side), newness)

    async def _wait_for_writes(self, timeout: float, commands: set[str] | None = None) -> None:
        """Until the appliers have applied `commands` (all they hold when None), at most `timeout`
        seconds; the lease is renewed meanwhile, so that no other run takes over in the middle."""
        def busy() -> list[Applier]:
            return [
                applier for applier in self._appliers.values()
                if (applier.in_flight_commands() & commands if commands is not None else applier.in_flight)
            ]

        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        step = self.lease_ttl / 3
        while (waiting := busy()) and (left := until - loop.time()) > 0:
            await asyncio.gather(*(applier.wait(min(step, left), commands) for applier in waiting))
            if busy():
                await self._renew(self.clock())

    def _fold_results(self) -> list[WriteResult]:
        """Fold the results of finished writes into memory (saved by the next commit)."""
        finished = [pair for applier in self._appliers.values() for pair in applier.collect()]
        if not finished:
            return []
        writes = [write for write, _ in finished]
        results = [result for _, result in finished]
        self.stats.applied(writes, results)
        changed, audit = record_write_results(self.memory, results, self.clock(), self.policy)
        self._take(changed, audit)
        return results

    async def _apply(self, writes: list[Write]) -> list[WriteResult]:
        """Apply the writes through the appliers and wait for every one of their results (reconcile)."""
        if not writes:
            return []
        commands = {write.command_id for write in writes}
        self._submit(writes)
        results: dict[str, WriteResult] = {}
        while True:
            for result in self._fold_results():
                if result.command_id in commands:
                    results[result.command_id] = result
            if commands <= results.keys():
                return [results[write.command_id] for write in writes]
            if not self._appliers:
                raise LeaseLostError(f"this run ({self.holder}) released the sync lease while applying")
            await self._wait_for_writes(self.lease_ttl / 3, commands - results.keys())

    # -- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, request: str | None = None) -> ReconcileReport:
        """Compare a full read of both systems with the rule and repair drift through the same apply path.

        With `request` (a reconcile run asked the lease holder for this pass), the report is saved for it.
        """
        setup = self._require_setup()
        now = self.clock()
        await self._renew(now)
        states, spells = await asyncio.gather(self.ctx.cxone.agent_states(), current_spells(self.ctx.salesforce))
        self.stats.api_reads["CXone"] += 1
        self.stats.api_reads["Salesforce"] += 1
        await self._skipped("CXone", states.problems)
        await self._skipped("Salesforce", spells.problems)
        snapshot = self._snapshot(setup, states.states, spells.records)
        decision = reconcile(setup.rulebook, setup.links, self.memory, snapshot, now, self.policy)
        report = ReconcileReport(
            agents_checked=len({o.agent_id for o in snapshot}),
            drift_seen=sum(1 for r in decision.audit if r.observed_at is not None),
            held_by=f"{self.holder} (shard {self.shard})" if self.shard.sharded else self.holder,
        )
        self._take(decision.memory, decision.audit)
        self._pending.seen_keys.extend(spell.id for spell in spells.records if spell.user_id in setup.agents_by_user)
        await self._commit()
        shown = {w.command_id: _shown(self.memory.get(w.agent_id), w.side) for w in decision.writes}
        results = await self._apply(decision.writes)
        by_command = {result.command_id: result for result in results}
        for write in decision.writes:
            result = by_command[write.command_id]
            report.repairs.append(Repair(
                agent_id=write.agent_id,
                system=write.side.label,
                shown=shown[write.command_id],
                target=describe(write.target),
                rule_row=write.rule_row,
                result="ok" if result.outcome is WriteOutcome.OK else f"{result.outcome.value}: {result.reason}",
            ))
        if request is not None:
            self._reconciled_request = request
            self._pending.cursors[RECONCILE_DONE_CURSOR] = request
            self._pending.cursors[RECONCILE_REPORT_CURSOR] = report.to_json()
        await self._commit()
        await self._report_notable()
        return report

    async def reconcile_if_requested(self) -> ReconcileReport | None:
        """Run the pass a reconcile run asked for while this run held the lease (one cheap read per call)."""
        request = await asyncio.to_thread(self.store.sync.get_cursor, self.shard.cursor(RECONCILE_REQUEST_CURSOR))
        if request is None or request == self._reconciled_request:
            return None
        return await self.reconcile(request)

    def _snapshot(
        self, setup: SyncSetup, states: list[CxoneAgentState], spells: list[PresenceSpell]
    ) -> list[Observation]:
        """One observation per linked agent and side, built as the polls build theirs."""
        snapshot = [cxone_observation(record) for record in states if record.agent_id in setup.links]
        with_spell = {spell.user_id for spell in spells}
        snapshot += [o for _, o in spell_observations(spells, setup.agents_by_user)]
        snapshot += [
            no_spell_observation(agent_id, link.sf_user_id)
            for agent_id, link in setup.links.items()
            if link.sf_user_id not in with_spell
        ]
        return snapshot

    # -- state -----------------------------------------------------------------------------------

    async def _reload_setup(self) -> SyncSetup:
        """Onboarding or refresh-users changed rules, assignments or links: sync by them from now on,
        and reconcile, so that every agent is synced by the rule it has now."""
        setup = self.setup = await load_setup(self.ctx, self.shard)
        for source in self._sources:
            if isinstance(source, SalesforcePollSource):
                source.agents_by_user = setup.agents_by_user
        logger.info("presence-sync: the setup changed (rules, assignments or links); reloaded, reconciling")
        await self.reconcile()
        return setup

    async def _load(self) -> None:
        """Everything a holder starts from, read once, after the lease is ours."""
        await self._setup_watch.start(self.clock())
        setup = self.setup = await load_setup(self.ctx, self.shard)
        await claim_store(self.ctx)
        store = self.store.sync
        # A shard reads its own agents' memory only; memory is per agent, so a new shard count carries it over.
        own_agents = list(setup.links) if self.shard.sharded else None
        raw_memory = await asyncio.to_thread(store.load_agent_memory, own_agents)
        for agent_id, data in raw_memory.items():
            try:
                self.memory[agent_id] = AgentMemory.from_json(data)
            except MemoryFormatError as error:
                await self._anomaly("memory-unreadable", f"agent {agent_id}: {error}; starting it afresh")
        self._wake = WakeQueue(self.memory)
        settle_heap()
        bound, deadline = self.settings.max_concurrency, self.settings.write_deadline_seconds
        cxone, salesforce = self.ctx.cxone, self.ctx.salesforce
        self._appliers = {
            Side.CXONE: Applier(
                "CXone", lambda batch: set_cxone_states(batch, cxone, bound),
                batch_size=1, deadline_seconds=deadline, concurrency=bound,
            ),
            Side.SALESFORCE: Applier(
                "Salesforce", lambda batch: self._to_consoles(batch, salesforce, self._require_setup().targets),
                batch_size=COMPOSITE_LIMIT, deadline_seconds=deadline, concurrency=bound,
            ),
        }
        await asyncio.to_thread(store.prune_seen_spells, self.clock() - SEEN_SPELLS_KEPT)
        cursor = self.shard.cursor
        cx_cursor, sf_cursor, seen, done, sessions, rejected, console_cursor = await asyncio.gather(
            asyncio.to_thread(store.get_cursor, cursor(CXONE_CURSOR)),
            asyncio.to_thread(store.get_cursor, cursor(SALESFORCE_CURSOR)),
            asyncio.to_thread(store.seen_spells),
            asyncio.to_thread(store.get_cursor, cursor(RECONCILE_DONE_CURSOR)),
            asyncio.to_thread(store.cxone_sessions),
            asyncio.to_thread(store.get_cursor, cursor(REJECTED_RECORDS_CURSOR)),
            asyncio.to_thread(store.get_cursor, cursor(CONSOLE_CURSOR)),
        )
        self._rejected = rejected_records(rejected)
        # The last window's agent sessions: its successor's first write to an agent needs no join.
        self.ctx.cxone.adopt_sessions({a: s for a, s in sessions.items() if self.shard.owns(a)})
        # The others are joined now, in the background: a burst then costs one request per agent.
        cxone_writes = self._appliers[Side.CXONE]
        self._joining = join_sessions_ahead(
            self.ctx.cxone,
            [agent_id for agent_id, link in setup.links.items() if setup.rulebook.rule_for(link) is not None],
            concurrency=self.settings.max_concurrency,
            until_idle=lambda: cxone_writes.wait(JOIN_IDLE_WAIT_SECONDS),
        )
        self._reconciled_request = done
        self.console = await open_console_channel(
            self.ctx.config.console, setup.agents_by_user, setup.targets.status_ids, console_cursor,
            known={agent: (m.salesforce, m.salesforce_at) for agent, m in self.memory.items() if m.salesforce_at})
        self._sources = [
            CxonePollSource(self.ctx.cxone, cx_cursor),
            SalesforcePollSource(
                self.ctx.salesforce, sf_cursor, seen, self.budget, setup.agents_by_user, self.policy.clock_skew,
                interval_factor=self.console.source.poll_factor if self.console is not None else None,
                already_reported=self.console.source.reported if self.console is not None else None,
                sweep_deadline_seconds=self.settings.poll_deadline_seconds,
            ),
        ]
        if self.console is not None:
            self._sources.append(self.console.source)

    async def _to_consoles(
        self, batch: list[Write], salesforce: SalesforceClient, targets: WriteTargets
    ) -> list[WriteResult]:
        """Salesforce writes go to the agents' consoles: through the console gateway's broker when the
        config chooses it (its outcomes come back later as events), else as platform events."""
        if self.console is not None:
            return await self.console.writer.submit(batch, targets)
        return await publish_commands(batch, salesforce, targets)

    def _take(self, changed: Mapping[int, AgentMemory], audit: Iterable[AuditRecord]) -> None:
        """Fold changed memory and new audit records in; both are saved by the next commit."""
        self.memory.update(changed)
        self._wake.update(changed)
        self._pending.agents.update(changed)
        records = list(audit)
        self._pending.audit.extend(records)
        self.stats.decided(records)
        self._notable += [r for r in records if r.outcome in _NOTABLE]

    async def _report_notable(self) -> None:
        """Writes that failed or were given up, and flapping agents, as anomalies."""
        notable, self._notable = self._notable, []
        for record in notable:
            await self._anomaly(record.outcome.value.replace("_", "-"), f"agent {record.agent_id}: {record.reason}")

    async def _commit(self) -> None:
        """Save the pending outcome in one transaction, fenced by the lease; cursors under this shard's names.
        Saves happen in the order they are asked for: a chunk's save in flight goes first."""
        await self._saved()
        await self._run_save(self._start_save())

    def _start_save(self) -> asyncio.Future[None]:
        """The pending outcome's rows, built now (memory changes after this go into the next save), saved by a
        thread started now too: a task would only start when the loop next waits, after the next decide."""
        pending, self._pending = self._pending, _Pending()
        pending.sessions.update(self.ctx.cxone.session_changes())
        self._guard_shard([*pending.agents, *(record.agent_id for record in pending.audit)], "a save")
        save = partial(
            self.store.sync.commit_tick,
            agents=[agent_row(agent_id, self.memory[agent_id]) for agent_id in sorted(pending.agents)],
            audit=audit_rows(pending.audit, self.run_id),
            cursors={self.shard.cursor(name): value for name, value in pending.cursors.items()},
            seen_spells=pending.seen_keys,
            cxone_sessions=pending.sessions,
            lease=self.lease,
        )
        return asyncio.get_running_loop().run_in_executor(None, contextvars.copy_context().run, save)

    async def _run_save(self, saving: Awaitable[None]) -> None:
        try:
            await saving
        except LeaseLostError:
            self.lease = None
            raise

    def _guard_shard(self, agent_ids: Iterable[int], what: str) -> None:
        """The last line between shards: nothing of another shard's agent is saved or written, whatever
        filtered (or failed to filter) before. Raises `ForeignAgentError`, which ends the window."""
        if not self.shard.sharded:
            return
        foreign = sorted({agent_id for agent_id in agent_ids if not self.shard.owns(agent_id)})
        if foreign:
            message = (
                f"shard {self.shard} ({self.holder}) was about to make {what} for agents of other shards "
                f"({', '.join(map(str, foreign[:10]))}); refused, nothing of them was saved or written"
            )
            logger.error("presence-sync foreign-agent: %s", message)
            self.stats.anomalies.append(Anomaly("foreign-agent", message))
            raise ForeignAgentError(message)

    async def _renew(self, now: datetime) -> None:
        if self.lease is None:
            raise LeaseLostError(f"this run ({self.holder}) does not hold the sync lease {self.lease_name!r}")
        renewed = await asyncio.to_thread(self.store.leases.renew, self.lease, self.lease_ttl, now)
        if not renewed:
            self.lease = None
            raise LeaseLostError(
                f"the sync lease {self.lease_name!r} was taken over by another run while this one "
                f"({self.holder}) held it; this run stops and the other carries on from the saved cursors"
            )

    async def _note_budget(self) -> None:
        budget = self.budget
        if budget.usage is None:
            return
        self._pending.cursors[API_USAGE_CURSOR] = json.dumps({
            "used": budget.usage.used, "limit": budget.usage.limit,
            "poll_interval_seconds": round(budget.interval(), 3), "at": self.clock().isoformat(),
        })
        if budget.stretched:
            await self._anomaly("budget-stretched", budget.describe())

    async def _anomaly(self, kind: str, message: str) -> None:
        """Count it; tell the hook about the first of each kind in this run (artifacts, not a flood)."""
        logger.warning("presence-sync %s: %s", kind, message)
        anomaly = Anomaly(kind, message)
        if kind not in self._anomaly_kinds:
            self.stats.anomalies.append(anomaly)
            self._anomaly_kinds.add(kind)
            if self.on_anomaly is not None:
                await self.on_anomaly(anomaly)

    def _require_setup(self) -> SyncSetup:
        if self.setup is None or self.lease is None:
            raise LeaseLostError(
                f"this run ({self.holder}) does not hold the sync lease {self.lease_name!r}; call acquire() first"
            )
        return self.setup


class ForeignAgentError(RuntimeError):
    """A shard's run was about to save or write another shard's agent (a bug: the window stops)."""


def _pop_first(agents: dict[int, None], count: int) -> list[int]:
    """The first `count` of `agents`, removed from it."""
    taken = list(itertools.islice(agents, count))
    for agent_id in taken:
        del agents[agent_id]
    return taken


def _both_ends(items: list[T]) -> Iterator[T]:
    """The last, the first, the last but one, the second, ... of `items`."""
    low, high = 0, len(items) - 1
    while low <= high:
        yield items[high]
        high -= 1
        if low <= high:
            yield items[low]
            low += 1


def settle_heap() -> None:
    """Collect what is garbage now, exempt everything still alive (modules, config, every agent's memory
    just loaded) from the cyclic collector's passes, and let those passes come far less often.

    The sync changes memory for thousands of agents a minute, and each full pass walked every object
    of the process: at 10,000 agents one took 0.1-0.6 s of the event loop, some 13 s in a
    100 s window. Frozen objects are still freed by reference counting as memory is replaced.
    Even so, with CPython's default thresholds a morning publish and two bursts each way at 10,000
    agents ran 8,600 young, 780 middle and 71 full passes (0.06 s each): 6.3 s, a fifth of the sync's
    CPU. With `GC_THRESHOLDS`, 250 passes and 1.1 s. What the sync allocates dies by reference
    counting; the collector is there for cycles, which the rarer passes still find. The bench settles
    the process that serves its emulators the same way (`bench/center.py`).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def rejected_records(saved: str | None) -> dict[str, int]:
    """Malformed records skipped so far, by system, from the saved `REJECTED_RECORDS_CURSOR`."""
    if not saved:
        return {}
    try:
        data = json.loads(saved)
    except ValueError:
        return {}
    return {system: int(data[system]) for system in ("CXone", "Salesforce") if isinstance(data.get(system), int)}


def _shown(memory: AgentMemory | None, side: Side) -> str:
    """What `side` showed for an agent, as far as its memory knows."""
    if memory is None:
        return "unknown"
    return describe(memory.cxone if side is Side.CXONE else memory.salesforce)


def _passing(error: ConnectorError) -> bool:
    """A read failure that the next tick may not see again (the read is simply repeated then)."""
    return is_transient(error) or isinstance(error, MalformedResponse | RequestLimitExceeded)


__all__ = [
    "API_USAGE_CURSOR",
    "LEASE_NAME",
    "RECONCILE_DONE_CURSOR",
    "RECONCILE_REPORT_CURSOR",
    "RECONCILE_REQUEST_CURSOR",
    "REJECTED_RECORDS_CURSOR",
    "ForeignAgentError",
    "ReconcileReport",
    "claim_store",
    "Repair",
    "SyncRunner",
    "SyncSetup",
    "load_setup",
    "lease_ttl_seconds",
    "rejected_records",
    "settle_heap",
    "sync_policy",
]
