"""The ``Store``: onboarding records, the sync's durable state, leases and audit queries.

Every method is one short transaction with a fixed number of statements, whatever the
number of agents (bulk ``executemany`` upserts; never one query per agent). Methods are
synchronous and thread-safe; the async sync loop calls them through ``asyncio.to_thread``.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self, TypeVar

from pydantic import SecretStr
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col

from presence_sync.models.store.connection import (
    create_store_engine,
    normalise_store_url,
    redact,
    transaction,
)
from presence_sync.models.store.errors import LeaseLostError, StoreConflictError
from presence_sync.models.store.migrations import current_version, migrate
from presence_sync.models.store.rows import AgentStateRow, AuditRow, InflightWriteRow
from presence_sync.models.store.tables import (
    AccountMapping,
    AgentLink,
    AgentState,
    AssignmentKind,
    Audit,
    Cursor,
    CxoneSession,
    InflightWrite,
    OnboardingStep,
    PresenceRule,
    RuleAssignment,
    SeenSpell,
    StepOutcome,
    SyncLease,
    WriteStatus,
)

Clock = Callable[[], datetime]
M = TypeVar("M", bound=SQLModel)

# A released lease expires at the epoch: free for the next holder, fencing token kept.
_RELEASED_AT = datetime(1970, 1, 1, tzinfo=UTC)
_NEWEST_FIRST = (col(Audit.at).desc(), col(Audit.id).desc())
# How many conflicting links an error message lists before saying "and N more".
_SHOWN_CONFLICTS = 5


def utc_now() -> datetime:
    """The store's default clock."""
    return datetime.now(UTC)


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


@dataclass(frozen=True, slots=True)
class Lease:
    """A held sync lease; ``fencing_token`` tells this holding apart from every other one."""

    name: str
    holder: str
    fencing_token: int
    acquired_at: datetime


@dataclass(frozen=True, slots=True)
class LinkChanges:
    """What ``upsert_links`` changed, in agents."""

    created: int
    updated: int
    unchanged: int
    removed: int

    @property
    def outcome(self) -> StepOutcome:
        if self.updated or self.removed:
            return StepOutcome.UPDATED
        return StepOutcome.CREATED if self.created else StepOutcome.UNCHANGED


@dataclass(frozen=True, slots=True)
class RuleChange:
    """What ``replace_rule`` did; ``taken_over`` are assignments moved here from other rules."""

    outcome: StepOutcome
    taken_over: tuple[RuleAssignment, ...]


class Store:
    """The presence-sync state store on SQLite or PostgreSQL.

    Usage::

        with Store.open("sqlite:///.presence-sync/state.db") as store:
            store.commit_tick(agents=[AgentStateRow(agent_id=7, memory={...}, ...)],
                              cursors={"cxone": poll_time})
            memory = store.load_agent_memory()
    """

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        """Wrap an engine whose schema is already migrated; use ``Store.open`` instead."""
        self._engine = engine
        self._clock = clock
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert: Callable[[Table], Any] = dialect.insert

    @classmethod
    def open(cls, url: str | SecretStr, *, clock: Clock = utc_now) -> Self:
        """Open the store at ``url`` (a secret when it carries a password), creating or
        migrating its schema. Raises ``InvalidStoreUrlError``, ``StoreUnavailableError``,
        ``SchemaTooNewError`` or ``MigrationError``, each with the fix in its message.
        """
        raw = url.get_secret_value() if isinstance(url, SecretStr) else url
        engine = create_store_engine(normalise_store_url(raw))
        try:
            migrate(engine, now=clock())
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock=clock)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({redact(self._engine.url)!r})"

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and diagnostics)."""
        return self._engine

    def schema_version(self) -> int:
        """The database's schema version."""
        with self._read() as conn:
            return current_version(conn)

    # --- onboarding --------------------------------------------------------------------

    def upsert_account_mapping(self, mapping: AccountMapping) -> StepOutcome:
        """Create or update the mapping of ``mapping.cxone_tenant_id``.

        A new ``verified_at`` alone is stored but reported as unchanged, so that re-running
        onboarding (which re-verifies) reports nothing changed.
        """
        table = _table(AccountMapping)
        values = _values(mapping, table)
        with self._write() as conn:
            existing = _first(conn, table, cxone_tenant_id=mapping.cxone_tenant_id)
            outcome = _outcome(existing, values, ignore={"updated_at", "verified_at"})
            unchanged = existing is not None and outcome is StepOutcome.UNCHANGED
            values["updated_at"] = existing["updated_at"] if unchanged else self._clock()
            conn.execute(self._upsert(table, "cxone_tenant_id"), values)
        return outcome

    def get_account_mapping(self, cxone_tenant_id: str) -> AccountMapping | None:
        """The stored mapping of a CXone tenant, or None."""
        stmt = select(AccountMapping).where(AccountMapping.cxone_tenant_id == cxone_tenant_id)
        return next(iter(self._models(stmt)), None)

    def replace_rule(
        self,
        rule: PresenceRule,
        *,
        teams: Mapping[int, str] | None = None,
        users: Mapping[int, str] | None = None,
    ) -> RuleChange:
        """Store ``rule`` and make ``teams`` / ``users`` ({CXone id: name}) its whole
        assignment list. A team or user assigned to another rule moves to this one (the
        config is the truth) and is reported in ``RuleChange.taken_over``.
        """
        rule_table, assignment_table = _table(PresenceRule), _table(RuleAssignment)
        rule_values = _values(rule, rule_table)
        wanted = {
            (kind, target_id): {
                "kind": kind,
                "target_id": target_id,
                "rule_name": rule.name,
                "target_name": name,
            }
            for kind, targets in ((AssignmentKind.TEAM, teams), (AssignmentKind.USER, users))
            for target_id, name in (targets or {}).items()
        }
        with self._write() as conn:
            existing_rule = _first(conn, rule_table, name=rule.name)
            assigned = [dict(row) for row in conn.execute(select(assignment_table)).mappings()]
            mine = {(a["kind"], a["target_id"]): a for a in assigned if a["rule_name"] == rule.name}
            taken = tuple(
                RuleAssignment(**a)
                for a in assigned
                if a["rule_name"] != rule.name and (a["kind"], a["target_id"]) in wanted
            )
            outcome = _outcome(existing_rule, rule_values, ignore={"updated_at"})
            if outcome is StepOutcome.UNCHANGED and (mine != wanted or taken):
                outcome = StepOutcome.UPDATED
            if outcome is StepOutcome.UNCHANGED:
                return RuleChange(outcome, ())
            rule_values["updated_at"] = self._clock()
            conn.execute(self._upsert(rule_table, "name"), rule_values)
            stale = [*mine, *((a.kind, a.target_id) for a in taken)]
            if stale:
                conn.execute(
                    delete(assignment_table).where(
                        assignment_table.c.kind == bindparam("k"),
                        assignment_table.c.target_id == bindparam("t"),
                    ),
                    [{"k": kind, "t": target_id} for kind, target_id in stale],
                )
            if wanted:
                conn.execute(assignment_table.insert(), list(wanted.values()))
        return RuleChange(outcome, taken)

    def get_rule(self, name: str) -> PresenceRule | None:
        """A stored rule by name, or None."""
        return next(iter(self._models(select(PresenceRule).where(PresenceRule.name == name))), None)

    def list_rule_assignments(self, rule_name: str | None = None) -> list[RuleAssignment]:
        """Assignments of one rule, or of all rules."""
        stmt = select(RuleAssignment).order_by(RuleAssignment.kind, RuleAssignment.target_id)
        if rule_name is not None:
            stmt = stmt.where(RuleAssignment.rule_name == rule_name)
        return self._models(stmt)

    def upsert_links(self, links: Iterable[AgentLink], *, prune: bool = False) -> LinkChanges:
        """Create or update agent links in bulk; with ``prune``, ``links`` is the whole list
        and links of agents not in it are removed. Raises ``StoreConflictError`` (and
        changes nothing) if an agent appears twice or two agents would share a Salesforce user.
        """
        table = _table(AgentLink)
        incoming: dict[int, dict[str, Any]] = {}
        for link in links:
            if link.cxone_agent_id in incoming:
                raise StoreConflictError(
                    f"CXone agent {link.cxone_agent_id} is linked twice in one update; "
                    "keep one link per agent (check the links overrides in the config)"
                )
            incoming[link.cxone_agent_id] = _values(link, table)
        with self._write() as conn:
            rows = conn.execute(select(table)).mappings()
            existing = {row["cxone_agent_id"]: dict(row) for row in rows}
            created = [v for agent, v in incoming.items() if agent not in existing]
            updated = [
                v
                for agent, v in incoming.items()
                if _outcome(existing.get(agent), v, {"updated_at"}) is StepOutcome.UPDATED
            ]
            removed = [agent for agent in existing if agent not in incoming] if prune else []
            _check_one_agent_per_user(incoming if prune else existing | incoming)
            now = self._clock()
            # Delete-then-insert, so that two agents swapping Salesforce users never
            # trip the unique index half-way through.
            gone = [v["cxone_agent_id"] for v in updated] + removed
            if gone:
                conn.execute(
                    delete(table).where(table.c.cxone_agent_id == bindparam("agent")),
                    [{"agent": agent} for agent in gone],
                )
            if created or updated:
                conn.execute(table.insert(), [{**v, "updated_at": now} for v in created + updated])
        return LinkChanges(
            created=len(created),
            updated=len(updated),
            unchanged=len(incoming) - len(created) - len(updated),
            removed=len(removed),
        )

    def load_links(self) -> list[AgentLink]:
        """Every agent link, by CXone agent id."""
        return self._models(select(AgentLink).order_by(AgentLink.cxone_agent_id))

    def count_links(self) -> int:
        """How many agents are linked."""
        with self._read() as conn:
            return conn.execute(select(func.count()).select_from(_table(AgentLink))).scalar_one()

    def record_step(self, step: OnboardingStep) -> OnboardingStep:
        """Record an onboarding step's outcome; returns it with ``id`` and ``at`` filled in."""
        table = _table(OnboardingStep)
        values = _values(step, table, skip=("id",))
        values["at"] = step.at or self._clock()
        with self._write() as conn:
            step_id = conn.execute(table.insert().returning(table.c.id), values).scalar_one()
        return OnboardingStep(id=step_id, **values)

    def list_steps(self, run_id: str) -> list[OnboardingStep]:
        """The steps of one onboarding run, in the order they were recorded."""
        stmt = select(OnboardingStep).where(OnboardingStep.run_id == run_id)
        return self._models(stmt.order_by(OnboardingStep.id))

    # --- sync --------------------------------------------------------------------------

    def load_agent_memory(
        self, agent_ids: Iterable[int] | None = None
    ) -> dict[int, dict[str, Any]]:
        """The engine's stored memory per agent: all agents, or those of ``agent_ids``
        (unknown ids are simply absent). One statement, however many ids.
        """
        table = _table(AgentState)
        stmt = select(table.c.agent_id, table.c.memory)
        if agent_ids is not None:
            ids = sorted({int(agent_id) for agent_id in agent_ids})
            if not ids:
                return {}
            # Inlined integers: no bound-parameter limit (SQLite 32766, PostgreSQL 65535).
            stmt = stmt.where(
                table.c.agent_id.in_(bindparam("ids", ids, expanding=True, literal_execute=True))
            )
        with self._read() as conn:
            return {agent_id: memory for agent_id, memory in conn.execute(stmt)}

    def commit_tick(
        self,
        *,
        agents: Iterable[AgentStateRow] = (),
        audit: Iterable[AuditRow] = (),
        inflight_upserts: Iterable[InflightWriteRow] = (),
        inflight_deletes: Iterable[str] = (),
        cursors: Mapping[str, str] | None = None,
        seen_spells: Iterable[str] = (),
        cxone_sessions: Mapping[int, str | None] | None = None,
        lease: Lease | None = None,
    ) -> None:
        """Save one tick's outcome in ONE transaction: agent memory, audit rows, in-flight
        writes (upserted by command id, or deleted when settled), cursors, seen
        Salesforce spells and CXone sessions joined (None: ended, forgotten). Cursors thus
        never run ahead of the changes they cover.

        With ``lease``, the commit only happens while that lease is still ours (checked
        and row-locked in the same transaction); otherwise ``LeaseLostError`` and nothing
        is saved. At most ten statements, however many agents.
        """
        now = self._clock()
        agent_rows = [{**row, "updated_at": now} for row in agents]
        audit_rows = list(audit)
        inflight_rows = list(inflight_upserts)
        settled = [{"command_id": command_id} for command_id in inflight_deletes]
        cursor_rows = [
            {"name": name, "value": value, "updated_at": now}
            for name, value in (cursors or {}).items()
        ]
        spell_rows = [{"spell_id": spell_id, "seen_at": now} for spell_id in seen_spells]
        sessions = cxone_sessions or {}
        session_rows = [
            {"agent_id": agent_id, "session_id": session_id, "updated_at": now}
            for agent_id, session_id in sessions.items()
            if session_id is not None
        ]
        ended_sessions = sorted(agent_id for agent_id, session_id in sessions.items() if session_id is None)
        with self._write() as conn:
            if lease is not None:
                self._fence(conn, lease)
            if agent_rows:
                conn.execute(self._upsert(_table(AgentState), "agent_id"), agent_rows)
            if audit_rows:
                conn.execute(_table(Audit).insert(), audit_rows)
            if inflight_rows:
                conn.execute(self._upsert(_table(InflightWrite), "command_id"), inflight_rows)
            if settled:
                inflight = _table(InflightWrite)
                conn.execute(
                    delete(inflight).where(inflight.c.command_id == bindparam("command_id")),
                    settled,
                )
            if cursor_rows:
                conn.execute(self._upsert(_table(Cursor), "name"), cursor_rows)
            if spell_rows:
                seen = self._insert(_table(SeenSpell))
                conn.execute(seen.on_conflict_do_nothing(index_elements=["spell_id"]), spell_rows)
            if session_rows:
                conn.execute(self._upsert(_table(CxoneSession), "agent_id"), session_rows)
            if ended_sessions:
                table = _table(CxoneSession)
                conn.execute(delete(table).where(table.c.agent_id.in_(ended_sessions)))

    def cxone_sessions(self) -> dict[int, str]:
        """The CXone session last joined per agent (sessions are long-lived; a stale one answers 404)."""
        table = _table(CxoneSession)
        with self._read() as conn:
            return {int(agent_id): str(session_id) for agent_id, session_id in conn.execute(
                select(table.c.agent_id, table.c.session_id)
            )}

    def get_cursor(self, name: str) -> str | None:
        """A cursor's saved value, or None before the first tick saved it."""
        table = _table(Cursor)
        stmt = select(table.c.value).where(table.c.name == name)
        with self._read() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    def seen_spells(self) -> set[str]:
        """Ids of the Salesforce spells already processed (kept until pruned)."""
        with self._read() as conn:
            return set(conn.execute(select(_table(SeenSpell).c.spell_id)).scalars())

    def prune_seen_spells(self, older_than: datetime) -> int:
        """Forget spells seen before ``older_than``; returns how many."""
        return self._delete_before(_table(SeenSpell).c.seen_at, older_than)

    def prune_audit(self, older_than: datetime) -> int:
        """Delete audit rows from before ``older_than``; returns how many."""
        return self._delete_before(_table(Audit).c.at, older_than)

    # --- leases ------------------------------------------------------------------------

    def acquire_lease(
        self, name: str, holder: str, ttl_seconds: float, now: datetime | None = None
    ) -> Lease | None:
        """Take the lease ``name`` for ``ttl_seconds`` if it is free, expired or already
        ``holder``'s; None while someone else holds it. Every acquisition gets a new
        fencing token. ``holder`` must be unique per run (e.g. the flow run id).
        Atomic (a single conditional upsert), so racing callers get one winner. Expiry
        is judged by the callers' clocks: keep hosts NTP-synced and the TTL well above
        any skew between them.
        """
        _check_ttl(ttl_seconds)
        now = now or self._clock()
        table = _table(SyncLease)
        stmt = self._insert(table).values(
            name=name,
            holder=holder,
            fencing_token=1,
            acquired_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "holder": stmt.excluded.holder,
                "fencing_token": table.c.fencing_token + 1,
                "acquired_at": stmt.excluded.acquired_at,
                "expires_at": stmt.excluded.expires_at,
            },
            where=or_(table.c.expires_at <= now, table.c.holder == holder),
        ).returning(table.c.fencing_token)
        with self._write() as conn:
            token = conn.execute(stmt).scalar_one_or_none()
        return None if token is None else Lease(name, holder, token, now)

    def renew_lease(self, lease: Lease, ttl_seconds: float, now: datetime | None = None) -> bool:
        """Extend a held lease to ``now + ttl_seconds``; False if another holder took it over."""
        _check_ttl(ttl_seconds)
        now = now or self._clock()
        with self._write() as conn:
            result = conn.execute(
                _lease_update(lease).values(expires_at=now + timedelta(seconds=ttl_seconds))
            )
        return result.rowcount == 1

    def release_lease(self, lease: Lease) -> None:
        """Hand the lease back at once (a no-op if it was already taken over)."""
        with self._write() as conn:
            conn.execute(_lease_update(lease).values(expires_at=_RELEASED_AT))

    def get_lease(self, name: str) -> SyncLease | None:
        """The lease row ``name`` (its holder, token and expiry), or None if never taken."""
        return next(iter(self._models(select(SyncLease).where(SyncLease.name == name))), None)

    # --- status and audit queries --------------------------------------------------------

    def write_counts(self) -> dict[WriteStatus, int]:
        """How many in-flight writes are pending, failed and given up."""
        table = _table(InflightWrite)
        stmt = select(table.c.status, func.count()).group_by(table.c.status)
        with self._read() as conn:
            counts = {status: count for status, count in conn.execute(stmt)}
        return {status: counts.get(status, 0) for status in WriteStatus}

    def list_inflight(
        self, status: WriteStatus | None = None, limit: int = 100
    ) -> list[InflightWrite]:
        """In-flight writes (of one status), oldest first."""
        _check_limit(limit)
        stmt = select(InflightWrite).order_by(InflightWrite.issued_at, InflightWrite.command_id)
        if status is not None:
            stmt = stmt.where(InflightWrite.status == status)
        return self._models(stmt.limit(limit))

    def last_audit(self, direction: str) -> Audit | None:
        """The newest audit row of one direction (e.g. ``"cxone->salesforce"``), or None."""
        stmt = select(Audit).where(Audit.direction == direction)
        return next(iter(self._models(stmt.order_by(*_NEWEST_FIRST).limit(1))), None)

    def echo_latencies(self, direction: str, since: datetime, limit: int = 1000) -> list[float]:
        """Latencies (ms) of the newest echoes of one direction from ``since`` on: how long a
        change took to show on the other side. At most ``limit``, newest first."""
        _check_limit(limit)
        table = _table(Audit)
        stmt = select(table.c.latency_ms).where(*_timed_echoes(table, direction, since))
        with self._read() as conn:
            return [float(value) for value in conn.execute(stmt.order_by(table.c.at.desc()).limit(limit)).scalars()]

    def count_echoes(self, direction: str, since: datetime) -> int:
        """How many changes of one direction showed on the other side from ``since`` on (timed echoes)."""
        table = _table(Audit)
        stmt = select(func.count()).select_from(table).where(*_timed_echoes(table, direction, since))
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def audit_for(
        self, agent_id: int | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[Audit]:
        """Audit rows, newest first: of one agent and/or from ``since`` on, at most ``limit``."""
        _check_limit(limit)
        stmt = select(Audit)
        if agent_id is not None:
            stmt = stmt.where(Audit.agent_id == agent_id)
        if since is not None:
            stmt = stmt.where(Audit.at >= since)
        return self._models(stmt.order_by(*_NEWEST_FIRST).limit(limit))

    # --- plumbing ------------------------------------------------------------------------

    def _read(self) -> AbstractContextManager[Connection]:
        return transaction(self._engine, write=False)

    def _write(self) -> AbstractContextManager[Connection]:
        return transaction(self._engine, write=True)

    def _models(self, stmt: Select[tuple[M]]) -> list[M]:
        with self._read() as conn, Session(conn) as session:
            return list(session.scalars(stmt).all())

    def _upsert(self, table: Table, key: str) -> Insert:
        stmt = self._insert(table)
        others = [column.name for column in table.columns if column.name != key]
        return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
            index_elements=[key], set_={name: stmt.excluded[name] for name in others}
        )

    def _delete_before(self, column: Column[datetime], older_than: datetime) -> int:
        with self._write() as conn:
            return conn.execute(delete(column.table).where(column < older_than)).rowcount

    @staticmethod
    def _fence(conn: Connection, lease: Lease) -> None:
        # A no-op UPDATE that matches only while the lease is ours; on PostgreSQL it also
        # row-locks the lease, so a takeover waits for this commit instead of racing it.
        held = _lease_update(lease).values(fencing_token=_table(SyncLease).c.fencing_token)
        if conn.execute(held).rowcount != 1:
            raise LeaseLostError(
                f"the sync lease {lease.name!r} was taken over by another run (this run, "
                f"{lease.holder!r}, held fencing token {lease.fencing_token}); this tick was not "
                "saved and the new holder carries on from the last saved cursors"
            )


def _lease_update(lease: Lease) -> Update:
    table = _table(SyncLease)
    return update(table).where(
        table.c.name == lease.name,
        table.c.holder == lease.holder,
        table.c.fencing_token == lease.fencing_token,
    )


def _values(row: SQLModel, table: Table, skip: Sequence[str] = ()) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in table.columns if c.name not in skip}


def _first(conn: Connection, table: Table, **key: Any) -> dict[str, Any] | None:
    stmt = select(table).where(*(table.c[name] == value for name, value in key.items()))
    row = conn.execute(stmt).mappings().first()
    return None if row is None else dict(row)


def _outcome(
    existing: Mapping[str, Any] | None, values: Mapping[str, Any], ignore: set[str]
) -> StepOutcome:
    if existing is None:
        return StepOutcome.CREATED
    same = all(existing[name] == value for name, value in values.items() if name not in ignore)
    return StepOutcome.UNCHANGED if same else StepOutcome.UPDATED


def _check_one_agent_per_user(links: Mapping[int, Mapping[str, Any]]) -> None:
    agents_of: defaultdict[str, list[int]] = defaultdict(list)
    for agent, link in sorted(links.items()):
        agents_of[link["sf_user_id"]].append(agent)
    shared = [(user, agents) for user, agents in agents_of.items() if len(agents) > 1]
    if not shared:
        return
    clashes = "; ".join(
        f"Salesforce user {user} <- CXone agents {', '.join(map(str, agents))}"
        for user, agents in shared[:_SHOWN_CONFLICTS]
    )
    more = f" (and {len(shared) - _SHOWN_CONFLICTS} more)" if len(shared) > _SHOWN_CONFLICTS else ""
    raise StoreConflictError(
        f"each Salesforce user can be linked to one CXone agent only: {clashes}{more}. "
        "Fix the email/username of these users, or set explicit links in the config"
    )


def _check_ttl(ttl_seconds: float) -> None:
    if not ttl_seconds > 0:
        raise ValueError(f"a lease needs a positive ttl_seconds, got {ttl_seconds!r}")


def _timed_echoes(table: Any, direction: str, since: datetime) -> tuple[Any, ...]:
    return (
        table.c.direction == direction,
        table.c.at >= since,
        table.c.outcome == "echo",
        table.c.latency_ms.is_not(None),
    )


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
