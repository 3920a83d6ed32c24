"""Presence rules (publisher and subscriber rows), their assignment, and the agents they apply to.

Example:
    >>> from presence_sync.engine.states import PREVIOUS_STATE, CxoneTarget
    >>> rule = Rule(
    ...     name="Default Presence",
    ...     publisher={"Available": "Available_for_Chats", "Unavailable: Break": "On_Break"},
    ...     subscriber={"On_Break": CxoneTarget.unavailable("Break"), "Resume_Previous": PREVIOUS_STATE},
    ...     skip_unavailable_code_validation=True,
    ... )
    >>> book = RuleBook.build([rule], teams={11: "Default Presence"})
    >>> link = AgentLink(agent_id=7, sf_user_id="005A", team_id=11, team_codes=frozenset({"Break"}))
    >>> book.rule_for(link).name
    'Default Presence'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from presence_sync.engine.audit import Outcome
from presence_sync.engine.errors import RuleError, StateError
from presence_sync.engine.states import (
    AcdState,
    CxoneState,
    CxoneStateName,
    CxoneTarget,
    PreviousState,
    SubscriberTarget,
    display,
    parse_publisher_row,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Resolution(Generic[T]):
    """What a rule says one side should show: a target, or None with the outcome and reason why not."""

    target: T | None
    row: str | None
    reason: str
    outcome: Outcome = Outcome.WRITE


@dataclass(frozen=True, slots=True)
class AgentLink:
    """A CXone agent linked to its Salesforce user; `team_codes` are the codes the agent's team may use."""

    agent_id: int
    sf_user_id: str
    team_id: int | None
    team_codes: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "team_codes", frozenset(self.team_codes))


def _require_status_name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleError(f"{where}: {value!r} is not a Salesforce presence status; give its DeveloperName")
    return value.strip()


@dataclass(frozen=True)
class Rule:
    """One presence rule: publisher rows (CXone key -> SF status) and subscriber rows (SF status -> target).

    Publisher rows are keyed by `AcdState`s or by their rule text ("Unavailable: Break"); they are
    kept by their engine keys ("Unavailable:Break").
    """

    name: str
    publisher: Mapping[str, str] | Mapping[AcdState, str]
    subscriber: Mapping[str, SubscriberTarget]
    skip_unavailable_code_validation: bool = False
    unavailable_codes: frozenset[str] = field(init=False, default=frozenset(), compare=False)
    """Every unavailable code the rule names, on either side."""

    def __post_init__(self) -> None:
        if not str(self.name).strip():
            raise RuleError("a presence rule needs a name")
        publisher: dict[str, str] = {}
        codes: set[str] = set()
        for raw_key, status in self.publisher.items():
            where = f"rule {self.name!r} publisher row {str(raw_key)!r}"
            try:
                state = raw_key if isinstance(raw_key, AcdState) else parse_publisher_row(raw_key)
                key = state.publisher_key()
            except StateError as error:
                raise RuleError(f"{where}: {error}") from None
            if state.kind is CxoneStateName.UNAVAILABLE and state.code:
                codes.add(state.code)
            if key in publisher:
                raise RuleError(f"{where}: CXone state {key!r} is mapped twice; keep one publisher row for it")
            publisher[key] = _require_status_name(status, where)
        subscriber: dict[str, SubscriberTarget] = {}
        for raw_status, target in self.subscriber.items():
            status = _require_status_name(raw_status, f"rule {self.name!r} subscriber row")
            if not isinstance(target, CxoneTarget | PreviousState):
                raise RuleError(
                    f"rule {self.name!r} subscriber row {status!r}: {target!r} can't be a subscriber target; "
                    "use Available, Unavailable (optionally with a code) or Previous State "
                    "(ACW and Refused are system-managed: publisher side only)"
                )
            if status in subscriber:
                raise RuleError(f"rule {self.name!r}: Salesforce status {status!r} has two subscriber rows; keep one")
            subscriber[status] = target
            if isinstance(target, CxoneTarget) and target.code:
                codes.add(target.code)
        object.__setattr__(self, "publisher", MappingProxyType(publisher))
        object.__setattr__(self, "subscriber", MappingProxyType(subscriber))
        object.__setattr__(self, "unavailable_codes", frozenset(codes))

    def missing_codes(self, team_codes: Iterable[str]) -> frozenset[str]:
        """Codes the rule names that a team lacks (assignment is refused without skip validation)."""
        return self.unavailable_codes - frozenset(team_codes)

    def publish(self, state: CxoneState) -> Resolution[str]:
        """The Salesforce status CXone `state` maps to."""
        status = self.publisher.get(state.key)
        shown = display(state)
        if status is not None:
            reason = f"rule {self.name!r} maps CXone {shown} to {status}"
            return Resolution(status, f"publisher: {shown} -> {status}", reason)
        if state.is_logged_out:
            return Resolution(
                None, None, "the agent logged out of CXone; Salesforce is left as is", Outcome.LOGGED_OUT
            )
        return Resolution(
            None,
            None,
            f"rule {self.name!r} has no publisher row for CXone {shown}; Salesforce is left as is "
            "(add a publisher row to change that)",
            Outcome.UNMAPPED,
        )

    def subscribe(
        self, status: str | None, team_codes: frozenset[str], previous: CxoneTarget | None
    ) -> Resolution[CxoneTarget]:
        """The CXone target Salesforce `status` maps to for an agent whose team has `team_codes`.

        `previous` is the agent's last settable CXone state before the current one (for Previous State).
        """
        if status is None:
            return Resolution(
                None, None, "the agent logged out of Omni-Channel; CXone is left as is", Outcome.LOGGED_OUT
            )
        target = self.subscriber.get(status)
        if target is None:
            return self._default_unavailable(
                status,
                f"rule {self.name!r} has no subscriber row for {status}",
                "add a subscriber row, or turn on skip validation to use the default Unavailable",
            )
        row = f"subscriber: {status} -> {display(target)}"
        if isinstance(target, PreviousState):
            if previous is None:
                return Resolution(
                    None, row, "no earlier CXone state is known for Previous State; CXone is left as is", Outcome.NOOP
                )
            reason = f"rule {self.name!r} returns CXone to {display(previous)}"
            return Resolution(previous, f"{row} ({display(previous)})", reason)
        if target.code is not None and target.code not in team_codes:
            return self._default_unavailable(
                status,
                f"the agent's team has no unavailable code {target.code!r}",
                f"add {target.code!r} to the team, or turn on skip validation to use the default Unavailable",
            )
        return Resolution(target, row, f"rule {self.name!r} maps {status} to CXone {display(target)}")

    def _default_unavailable(self, status: str, problem: str, fix: str) -> Resolution[CxoneTarget]:
        if self.skip_unavailable_code_validation:
            return Resolution(
                CxoneTarget.unavailable(),
                f"skip validation: {status} -> Unavailable",
                f"{problem}; skip validation puts CXone in the system-default Unavailable",
            )
        return Resolution(None, None, f"{problem}; nothing is written ({fix})", Outcome.UNMAPPED)


@dataclass(frozen=True)
class RuleBook:
    """Rules by name and their assignments; a user assignment overrides the team's.

    Build with `RuleBook.build(rules, teams={team_id: rule_name}, users={agent_id: rule_name})`.
    """

    rules: Mapping[str, Rule]
    teams: Mapping[int, str]
    users: Mapping[int, str]

    def __post_init__(self) -> None:
        for name, rule in self.rules.items():
            if name != rule.name:
                raise RuleError(f"rule book: rule {rule.name!r} is filed under {name!r}; file it under its own name")
        for kind, assignments in (("team", self.teams), ("agent", self.users)):
            for target, rule_name in assignments.items():
                if rule_name not in self.rules:
                    known = ", ".join(sorted(self.rules)) or "none"
                    raise RuleError(
                        f"{kind} {target} is assigned rule {rule_name!r}, which does not exist (rules: {known})"
                    )
        for name in ("rules", "teams", "users"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @classmethod
    def build(
        cls, rules: Iterable[Rule], teams: Mapping[int, str] | None = None, users: Mapping[int, str] | None = None
    ) -> RuleBook:
        by_name: dict[str, Rule] = {}
        for rule in rules:
            if rule.name in by_name:
                raise RuleError(f"two rules are named {rule.name!r}; give each rule its own name")
            by_name[rule.name] = rule
        return cls(by_name, teams or {}, users or {})

    def rule_for(self, link: AgentLink) -> Rule | None:
        name = self.users.get(link.agent_id)
        if name is None and link.team_id is not None:
            name = self.teams.get(link.team_id)
        return None if name is None else self.rules[name]
