"""What onboarding sets up and the sync reads: the account mapping, presence rules and their
assignments, agent links, and the outcome of each onboarding step."""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
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
        rule_table, assignment_table = table_of(PresenceRule), table_of(RuleAssignment)
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
