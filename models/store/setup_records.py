"""What onboarding sets up and the sync reads: the account mapping, presence rules and their
assignments, agent links, and the outcome of each onboarding step."""

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, func, select
from sqlmodel import SQLModel

from presence_sync.models.store.errors import StoreConflictError
from presence_sync.models.store.part import StorePart, table_of
from presence_sync.models.store.tables import (
    AccountMapping,
    AgentLink,
    AssignmentKind,
    OnboardingStep,
    PresenceRule,
    RuleAssignment,
    SetupRevision,
    StepOutcome,
)

# How many conflicting links an error message lists before saying "and N more".
_SHOWN_CONFLICTS = 5


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


@dataclass(frozen=True, slots=True)
class RulesChange:
    """What ``replace_rules`` did, by rule name; ``taken_over`` are assignments moved from rules left alone."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    assignments_changed: int = 0  # teams and users given a rule, moved to another, or left without one
    taken_over: tuple[RuleAssignment, ...] = ()

    @property
    def outcome(self) -> StepOutcome:
        if self.updated or self.removed:
            return StepOutcome.UPDATED
        if self.created:
            return StepOutcome.CREATED
        changed = self.assignments_changed or self.taken_over
        return StepOutcome.UPDATED if changed else StepOutcome.UNCHANGED


SETUP_REVISION = "setup"


class SetupRecords(StorePart):
    """The records onboarding writes (``store.setup``); each write reports what it changed.

    Usage::

        changes = store.setup.upsert_links(links, prune=True)   # LinkChanges(created=..., ...)
        rule = store.setup.get_rule("Default Presence")
    """

    def upsert_account_mapping(self, mapping: AccountMapping) -> StepOutcome:
        """Create or update the mapping of ``mapping.cxone_tenant_id``.

        A new ``verified_at`` alone is stored but reported as unchanged, so that re-running
        onboarding (which re-verifies) reports nothing changed.
        """
        table = table_of(AccountMapping)
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
        assignments = [
            RuleAssignment(kind=kind, target_id=target_id, rule_name=rule.name, target_name=name)
            for kind, targets in ((AssignmentKind.TEAM, teams), (AssignmentKind.USER, users))
            for target_id, name in (targets or {}).items()
        ]
        change = self.replace_rules([rule], assignments)
        return RuleChange(change.outcome, change.taken_over)

    def replace_rules(
        self,
        rules: Sequence[PresenceRule],
        assignments: Iterable[RuleAssignment],
        *,
        remove: Collection[str] = (),
    ) -> RulesChange:
        """Store ``rules`` and make ``assignments`` their whole assignment list, and delete the rules
        named in ``remove`` with their assignments; in one transaction, which changes nothing (and
        bumps no revision) when everything is already so.

        A team or user assigned to a rule not in ``rules`` moves to its rule here (the config is
        the truth) and is reported in ``RulesChange.taken_over``. Raises ``StoreConflictError``
        (changing nothing) when a team or user is given two rules, or an assignment names a rule
        that is not in ``rules``.
        """
        rule_table, assignment_table = table_of(PresenceRule), table_of(RuleAssignment)
        names = {rule.name for rule in rules}
        wanted: dict[tuple[AssignmentKind, int], dict[str, Any]] = {}
        for assignment in assignments:
            key = (assignment.kind, assignment.target_id)
            if assignment.rule_name not in names:
                raise StoreConflictError(
                    f"{assignment.kind.value} {assignment.target_name} is assigned to rule {assignment.rule_name!r}, "
                    "which is not among the rules stored with it; store the rule with its assignments"
                )
            if key in wanted and wanted[key]["rule_name"] != assignment.rule_name:
                raise StoreConflictError(
                    f"{assignment.kind.value} {assignment.target_name} is assigned to two rules "
                    f"({wanted[key]['rule_name']!r} and {assignment.rule_name!r}); assign it to one"
                )
            wanted[key] = _values(assignment, assignment_table)
        with self._write() as conn:
            stored = {row["name"]: dict(row) for row in conn.execute(select(rule_table)).mappings()}
            assigned = {(a["kind"], a["target_id"]): dict(a) for a in conn.execute(select(assignment_table)).mappings()}
            created, updated, upserts = [], [], []
            for rule in rules:
                values = _values(rule, rule_table)
                outcome = _outcome(stored.get(rule.name), values, ignore={"updated_at"})
                if outcome is not StepOutcome.UNCHANGED:
                    (created if outcome is StepOutcome.CREATED else updated).append(rule.name)
                    upserts.append({**values, "updated_at": self._clock()})
            removed = sorted(name for name in remove if name in stored and name not in names)
            replaced = names | set(removed)
            stale = [
                key
                for key, a in assigned.items()
                if (a["rule_name"] in replaced or key in wanted) and wanted.get(key) != a
            ]
            taken = tuple(
                RuleAssignment(**assigned[key]) for key in stale if key in wanted and assigned[key]["rule_name"] not in replaced
            )
            fresh_keys = [key for key, values in wanted.items() if assigned.get(key) != values]
            fresh = [wanted[key] for key in fresh_keys]
            changed_keys = len(set(stale) | set(fresh_keys))
            change = RulesChange(tuple(created), tuple(updated), tuple(removed), changed_keys, taken)
            if not (upserts or removed or stale or fresh):
                return change
            if upserts:
                conn.execute(self._upsert(rule_table, "name"), upserts)
            if stale:
                conn.execute(
                    delete(assignment_table).where(
                        assignment_table.c.kind == bindparam("k"),
                        assignment_table.c.target_id == bindparam("t"),
                    ),
                    [{"k": kind, "t": target_id} for kind, target_id in stale],
                )
            if fresh:
                conn.execute(assignment_table.insert(), fresh)
            if removed:
                conn.execute(delete(rule_table).where(rule_table.c.name.in_(removed)))
            self._bump_revision(conn)
        return change

    def get_rule(self, name: str) -> PresenceRule | None:
        """A stored rule by name, or None."""
        return next(iter(self._models(select(PresenceRule).where(PresenceRule.name == name))), None)

    def list_rules(self) -> list[PresenceRule]:
        """Every stored rule, by name."""
        return self._models(select(PresenceRule).order_by(PresenceRule.name))

    def setup_revision(self) -> int:
        """How many times rules, assignments or links have changed (0: never); one cheap query.

        A running sync compares it now and then with the revision it loaded, and reloads on a change.
        """
        table = table_of(SetupRevision)
        with self._read() as conn:
            value = conn.execute(select(table.c.revision).where(table.c.name == SETUP_REVISION)).scalar()
        return int(value or 0)

    def _bump_revision(self, conn: Connection) -> None:
        table = table_of(SetupRevision)
        now = self._clock()
        stmt = self._insert(table).values(name=SETUP_REVISION, revision=1, updated_at=now)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["name"], set_={"revision": table.c.revision + 1, "updated_at": now}
        ))

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
        table = table_of(AgentLink)
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
            if created or updated or removed:
                self._bump_revision(conn)
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
            return conn.execute(select(func.count()).select_from(table_of(AgentLink))).scalar_one()

    def record_step(self, step: OnboardingStep) -> OnboardingStep:
        """Record an onboarding step's outcome; returns it with ``id`` and ``at`` filled in."""
        table = table_of(OnboardingStep)
        values = _values(step, table, skip=("id",))
        values["at"] = step.at or self._clock()
        with self._write() as conn:
            step_id = conn.execute(table.insert().returning(table.c.id), values).scalar_one()
        return OnboardingStep(id=step_id, **values)

    def list_steps(self, run_id: str) -> list[OnboardingStep]:
        """The steps of one onboarding run, in the order they were recorded."""
        stmt = select(OnboardingStep).where(OnboardingStep.run_id == run_id)
        return self._models(stmt.order_by(OnboardingStep.id))


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
