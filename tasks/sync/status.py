"""What `presence-sync status` and `presence-sync audit` show, read from the state store alone.

    report = read_status(store)                   # links, lease holder, lag, writes, API budget, consoles, shards
    rows = read_audit(store, agent="agent7@example.com", since=parse_since("2h"))
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from datetime import UTC, datetime, timedelta

from presence_sync.engine import AgentLink as EngineLink
from presence_sync.engine import Direction
from presence_sync.engine.shards import ALL, Shard
from presence_sync.models.store import AgentLink, AgentWrite, Audit, Store, WriteStatus
from presence_sync.tasks.sync.console_channel import CONSOLE_STATUS_CURSOR
from presence_sync.tasks.sync.runner import API_USAGE_CURSOR, REJECTED_RECORDS_CURSOR, rejected_records
from presence_sync.tasks.sync.rulebook import StoredRuleError, load_rulebook
from presence_sync.tasks.sync.shard_state import ShardActivity, shard_activity
from presence_sync.tasks.sync.sources import CXONE_CURSOR, SALESFORCE_CURSOR
from presence_sync.tasks.sync.summary import DIRECTIONS, percentile

LAG_WINDOW = timedelta(minutes=15)
LAG_SAMPLES = 1000
SHOWN_FAILURES = 10
SHOWN_WITHOUT_RULE = 20
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class StatusError(ValueError):
    """A status or audit request that can't be answered as asked (the message says how to ask)."""


@dataclass(frozen=True)
class Lag:
    """How long changes took to show on the other side, from the echoes of the last `LAG_WINDOW`."""

    direction: Direction
    carried: int  # changes that showed on the other side within the window
    p50_seconds: float | None  # of the newest `LAG_SAMPLES` of them
    p95_seconds: float | None
    last_decision_at: datetime | None


@dataclass(frozen=True)
class ApiBudget:
    used: int
    limit: int
    poll_interval_seconds: float
    read_at: str


@dataclass(frozen=True)
class ConsoleReport:
    """The console channel as the last tick saw it: consoles connected, and the poll they spare."""

    connected_agents: int
    linked_agents: int
    connected_consoles: int
    poll_relaxed: bool
    relaxed_poll_factor: float
    polls_saved: int  # UserServicePresence polls (each at least one API call) not made in the last window
    read_at: str


@dataclass(frozen=True)
class RuleCoverage:
    """Linked agents per rule (a user assignment over the team's), and those with none (not synced)."""

    agents_per_rule: dict[str, int]
    without_rule: list[str]  # "agent7@example.com (1000007, team Voice Team A)", at most SHOWN_WITHOUT_RULE
    without_rule_count: int
    problem: str | None = None  # the stored rules can't be read (the sync would say the same)


def rule_coverage(store: Store) -> RuleCoverage:
    """Which rule each linked agent is synced by, as the sync resolves it (three queries)."""
    try:
        book = load_rulebook(store)
    except StoredRuleError as error:
        return RuleCoverage({}, [], 0, problem=str(error))
    per_rule = dict.fromkeys(sorted(book.rules), 0)
    without: list[str] = []
    for link in store.setup.load_links():
        rule = book.rule_for(EngineLink(link.cxone_agent_id, link.sf_user_id, link.team_id))
        if rule is not None:
            per_rule[rule.name] += 1
            continue
        team = f", team {link.team_name or link.team_id}" if link.team_id is not None else ", no team"
        without.append(f"{link.cxone_email or link.cxone_username} ({link.cxone_agent_id}{team})")
    return RuleCoverage(per_rule, without[:SHOWN_WITHOUT_RULE], len(without))


@dataclass(frozen=True)
class ShardStatus:
    """One shard's row: its lease and last tick, and the lag of its agents' changes (`LAG_WINDOW`)."""

    activity: ShardActivity
    lag_p95_seconds: dict[Direction, float | None]


@dataclass
class StatusReport:
    agents_linked: int
    lease_holder: str | None  # None: no sync run holds the lease now
    lease_expires_at: datetime | None
    cursors: dict[str, str | None]
    lags: list[Lag]
    write_counts: dict[WriteStatus, int]
    failures: list[AgentWrite] = field(default_factory=list)
    budget: ApiBudget | None = None
    rejected_records: dict[str, int] = field(default_factory=dict)  # malformed API records skipped, by system
    consoles: ConsoleReport | None = None  # None: platform events, or no tick with the gateway yet
    coverage: RuleCoverage | None = None
    shards: list[ShardStatus] = field(default_factory=list)  # every shard with a lease or a tick, unsharded too

    @property
    def running(self) -> bool:
        return self.lease_holder is not None

    @property
    def sharded(self) -> bool:
        return any(row.activity.shard.sharded for row in self.shards)


@dataclass(frozen=True, slots=True)
class SyncActivity:
    """Who holds the sync lease now, who waits to take it over, and who held it last.

    Running while a window holds the lease, or while it is free for a moment with a window registered
    to take it at its next tick (the holder died and the next window is due): no grace by seconds.
    """

    holder: str | None
    last_holder: str | None = None
    successor: str | None = None  # a window registered as the next holder while the lease is free

    @property
    def running(self) -> bool:
        return self.holder is not None or self.successor is not None


def sync_activity(store: Store, now: datetime | None = None, agent_id: int | None = None) -> SyncActivity:
    """Whether a sync window holds a lease right now (every running window renews it each tick) or is
    taking one over: any shard's, or with `agent_id` the lease of a shard that owns the agent (of
    whichever shard count the store's leases and ticks show)."""
    now = now or datetime.now(UTC)
    shards = [a for a in shard_activity(store, now) if agent_id is None or a.shard.owns(agent_id)]
    holding = next((a for a in shards if a.running), None)
    if holding is not None:
        return SyncActivity(holding.holder)
    for activity in shards:  # free for a moment, with the next window registered to take it over
        lease = store.leases.get(activity.shard.lease_name)
        if lease is not None and lease.next_holder is not None and lease.next_until is not None and lease.next_until > now:
            return SyncActivity(None, lease.holder, lease.next_holder)
    ended = sorted((a for a in shards if a.last_holder), key=lambda a: a.last_tick_at or datetime.min.replace(tzinfo=UTC))
    return SyncActivity(None, ended[-1].last_holder if ended else None)


def shard_statuses(store: Store, now: datetime) -> list[ShardStatus]:
    """Every shard's row, the lag split by shard of the newest echoes' agents."""
    activities = shard_activity(store, now)
    samples = {
        direction: store.reports.echo_latencies_by_agent(
            direction.value, now - LAG_WINDOW, LAG_SAMPLES * max(1, len(activities))
        )
        for direction in DIRECTIONS
    }
    rows = []
    for activity in activities:
        lag = {
            direction: percentile(sorted(ms / 1000 for agent, ms in pairs if activity.shard.owns(agent))[:LAG_SAMPLES], 95)
            for direction, pairs in samples.items()
        }
        rows.append(ShardStatus(activity, lag))
    return rows


def _shard_cursors(store: Store, name: str, shards: list[Shard]) -> list[dict[str, Any]]:
    """A per-shard JSON cursor (API usage, console status) of every shard that saved one."""
    saved = [store.sync.get_cursor(shard.cursor(name)) for shard in shards]
    return [json.loads(text) for text in saved if text is not None]


def read_status(store: Store, now: datetime | None = None) -> StatusReport:
    """The sync's state as the store knows it (a few queries per shard, however many agents)."""
    now = now or datetime.now(UTC)
    shards = shard_statuses(store, now)
    known = [row.activity.shard for row in shards] or [ALL]
    holders = [row.activity for row in shards if row.activity.running]
    lags = []
    for direction in DIRECTIONS:
        since = now - LAG_WINDOW
        samples = sorted(ms / 1000 for ms in store.reports.echo_latencies(direction.value, since, LAG_SAMPLES))
        last = store.reports.last_audit(direction.value)
        lags.append(Lag(direction, store.reports.count_echoes(direction.value, since), percentile(samples, 50),
                        percentile(samples, 95), None if last is None else last.at))
    failures = [
        *store.reports.list_writes(WriteStatus.FAILED, limit=SHOWN_FAILURES),
        *store.reports.list_writes(WriteStatus.GAVE_UP, limit=SHOWN_FAILURES),
    ]
    # Every shard reads the one org's API usage: the newest reading is the org's.
    usages = sorted(_shard_cursors(store, API_USAGE_CURSOR, known), key=lambda data: str(data["at"]))
    budget = None
    if usages:
        data = usages[-1]
        budget = ApiBudget(int(data["used"]), int(data["limit"]), float(data["poll_interval_seconds"]), str(data["at"]))
    rejected: dict[str, int] = {}
    for shard in known:
        for system, count in rejected_records(store.sync.get_cursor(shard.cursor(REJECTED_RECORDS_CURSOR))).items():
            rejected[system] = rejected.get(system, 0) + count
    return StatusReport(
        agents_linked=store.setup.count_links(),
        lease_holder=", ".join(str(a.holder) for a in holders) or None,
        lease_expires_at=min((a.expires_at for a in holders if a.expires_at is not None), default=None),
        cursors={
            shard.cursor(name): store.sync.get_cursor(shard.cursor(name))
            for shard in known for name in (CXONE_CURSOR, SALESFORCE_CURSOR)
        },
        lags=lags,
        write_counts=store.reports.write_counts(),
        failures=failures[:SHOWN_FAILURES],
        budget=budget,
        rejected_records=rejected,
        consoles=_consoles(_shard_cursors(store, CONSOLE_STATUS_CURSOR, known)),
        coverage=rule_coverage(store),
        shards=shards,
    )


def _consoles(saved: list[dict[str, Any]]) -> ConsoleReport | None:
    """The console channel over all shards: each reports its own agents' consoles, and every connection
    to the gateway (the same count in each)."""
    if not saved:
        return None
    return ConsoleReport(
        sum(int(d["connected_agents"]) for d in saved), sum(int(d["linked_agents"]) for d in saved),
        max(int(d["connected_consoles"]) for d in saved), all(bool(d["poll_relaxed"]) for d in saved),
        float(saved[0]["relaxed_poll_factor"]), sum(int(d["polls_saved"]) for d in saved),
        max(str(d["at"]) for d in saved),
    )


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`15m`, `2h`, `1d`, `30s` ago, or an ISO date/time (UTC unless it says otherwise).

    >>> parse_since("2026-01-05T09:00:00Z").isoformat()
    '2026-01-05T09:00:00+00:00'
    """
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(text)
    if relative:
        return now - timedelta(seconds=float(relative[1]) * _UNIT_SECONDS[relative[2].lower()])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise StatusError(
            f"--since {text!r} is neither a duration nor a date: write e.g. 15m, 2h, 1d, or 2026-01-05T09:00"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def find_agent(links: Sequence[AgentLink], reference: str) -> AgentLink | None:
    """The linked agent a CXone agent id, email or user name (CXone or Salesforce) names."""
    wanted = reference.strip()
    if wanted.isdigit():
        return next((link for link in links if link.cxone_agent_id == int(wanted)), None)
    folded = wanted.casefold()
    return next(
        (
            link
            for link in links
            if any(name and name.casefold() == folded for name in (link.cxone_email, link.cxone_username, link.sf_username))
        ),
        None,
    )


def read_audit(store: Store, agent: str | None = None, since: datetime | None = None, limit: int = 50) -> list[Audit]:
    """The latest `limit` decisions (of one agent, from `since` on), oldest first: a story to read down."""
    agent_id = None
    if agent is not None:
        if agent.strip().isdigit():
            agent_id = int(agent)
        else:
            link = find_agent(store.setup.load_links(), agent)
            if link is None:
                raise StatusError(
                    f"no linked agent is called {agent!r}: give the CXone agent id, or the email/user name as "
                    "linked (run `presence-sync refresh-users CONFIG` if the agent is new)"
                )
            agent_id = link.cxone_agent_id
    return list(reversed(store.reports.audit_for(agent_id, since=since, limit=limit)))

