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

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from presence_sync.engine.audit import Outcome, describe
from presence_sync.engine.errors import RuleError, StateError
from presence_sync.engine.logouts import (
    DEFAULT_ON_CXONE_LOGOUT,
    DEFAULT_ON_OMNI_LOGOUT,
    OMNI_OFFLINE,
    on_cxone_logout_text,
    on_omni_logout_text,
    salesforce_shows,
)
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
_REMEMBERED_ANSWERS = 4096


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
    """One presence rule: publisher rows (CXone key -> SF status) and subscriber rows (SF status -> target),
    and what a logout on either side does on the other (`engine.logouts`).

    Publisher rows are keyed by `AcdState`s or by their rule text ("Unavailable: Break"); they are
    kept by their engine keys ("Unavailable:Break"). A publisher row for LoggedOut, if any, is what a
    CXone logout does (it takes the place of `on_cxone_logout`).
    """

    name: str
    publisher: Mapping[str, str] | Mapping[AcdState, str]
    subscriber: Mapping[str, SubscriberTarget]
    skip_unavailable_code_validation: bool = False
    on_cxone_logout: str | None = DEFAULT_ON_CXONE_LOGOUT
    """The Salesforce target when the agent logs out of CXone: `OMNI_OFFLINE`, a status, or None (nothing)."""
    on_omni_logout: CxoneTarget | None = DEFAULT_ON_OMNI_LOGOUT
    """The CXone target when the agent logs out of Omni-Channel: Unavailable[: code], LoggedOut, or None."""
    unavailable_codes: frozenset[str] = field(init=False, default=frozenset(), compare=False)
    """Every unavailable code the rule names, on either side."""
    fingerprint: str = field(init=False, default="", compare=False)
    """A digest of everything the rule maps: equal for equal rules, whatever their row order."""
    _resolved: dict[tuple[object, ...], Resolution[object]] = field(
        init=False, default_factory=dict, repr=False, compare=False
    )
    """What `publish` and `subscribe` answered so far: few distinct questions, asked for every change."""

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
        self._check_logouts()
        if self.on_omni_logout is not None and self.on_omni_logout.code:
            codes.add(self.on_omni_logout.code)
        object.__setattr__(self, "publisher", MappingProxyType(publisher))
        object.__setattr__(self, "subscriber", MappingProxyType(subscriber))
        object.__setattr__(self, "unavailable_codes", frozenset(codes))
        object.__setattr__(self, "fingerprint", self._digest())

    def _check_logouts(self) -> None:
        if self.on_cxone_logout is not None and self.on_cxone_logout != OMNI_OFFLINE:
            _require_status_name(self.on_cxone_logout, f"rule {self.name!r} on_cxone_logout")
        target = self.on_omni_logout
        if target is not None and (
            not isinstance(target, CxoneTarget) or target.state is CxoneStateName.AVAILABLE
        ):
            raise RuleError(
                f"rule {self.name!r} on_omni_logout: {target!r} can't follow a logout of Omni-Channel; use the "
                "default Unavailable, an unavailable code, LoggedOut (end the CXone session) or nothing (None)"
            )

    def _digest(self) -> str:
        subscriber = sorted((status, target.key) for status, target in self.subscriber.items())
        parts = (
            self.name,
            sorted(self.publisher.items()),
            subscriber,
            self.skip_unavailable_code_validation,
            on_cxone_logout_text(self.on_cxone_logout),
            on_omni_logout_text(self.on_omni_logout),
        )
        return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()

    def missing_codes(self, team_codes: Iterable[str]) -> frozenset[str]:
        """Codes the rule names that a team lacks (assignment is refused without skip validation)."""
        return self.unavailable_codes - frozenset(team_codes)

    def publish(self, state: CxoneState) -> Resolution[str]:
        """The Salesforce status CXone `state` maps to."""
        return self._remembered(("publish", state), lambda: self._publish(state))  # type: ignore[return-value]

    def subscribe(
        self, status: str | None, team_codes: frozenset[str], previous: CxoneTarget | None
    ) -> Resolution[CxoneTarget]:
        """The CXone target Salesforce `status` maps to for an agent whose team has `team_codes`.

        `previous` is the agent's last settable CXone state before the current one (for Previous State).
        """
        key = ("subscribe", status, team_codes, previous)
        return self._remembered(key, lambda: self._subscribe(status, team_codes, previous))  # type: ignore[return-value]

    def _remembered(self, key: tuple[object, ...], resolve: Callable[[], Resolution[Any]]) -> Resolution[Any]:
        # The answers are frozen values of frozen inputs; the bound only guards against a caller that
        # would ask with ever-new team code sets.
        answer = self._resolved.get(key)
        if answer is None:
            if len(self._resolved) >= _REMEMBERED_ANSWERS:
                self._resolved.clear()
            answer = self._resolved[key] = resolve()
        return answer

    def _publish(self, state: CxoneState) -> Resolution[str]:
        status = self.publisher.get(state.key)
        shown = display(state)
        if status is not None:
            reason = f"rule {self.name!r} maps CXone {shown} to {status}"
            return Resolution(status, f"publisher: {shown} -> {status}", reason)
        if state.is_logged_out:
            return self._cxone_logged_out()
        return Resolution(
            None,
            None,
            f"rule {self.name!r} has no publisher row for CXone {shown}; Salesforce is left as is "
            "(add a publisher row to change that)",
            Outcome.UNMAPPED,
        )

    def _subscribe(
        self, status: str | None, team_codes: frozenset[str], previous: CxoneTarget | None
    ) -> Resolution[CxoneTarget]:
        if status is None:
            return self._omni_logged_out(team_codes)
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
            if previous.code is not None and previous.code not in team_codes:  # e.g. moved to another team since
                return self._default_unavailable(
                    status,
                    f"the agent's previous CXone state {display(previous)} is not one of their team's codes",
                    f"add {previous.code!r} to the team, or turn on skip validation to use the default Unavailable",
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

    def _cxone_logged_out(self) -> Resolution[str]:
        target = self.on_cxone_logout
        if target is None:
            return Resolution(
                None,
                None,
                f"the agent logged out of CXone; rule {self.name!r} leaves Salesforce as is (on_cxone_logout: nothing)",
                Outcome.LOGGED_OUT,
            )
        row = f"logout: CXone LoggedOut -> {describe(target)}"
        if target == OMNI_OFFLINE:
            return Resolution(target, row, f"the agent logged out of CXone; rule {self.name!r} logs them out of Omni-Channel")
        return Resolution(target, row, f"the agent logged out of CXone; rule {self.name!r} sets Salesforce to {target}")

    def _omni_logged_out(self, team_codes: frozenset[str]) -> Resolution[CxoneTarget]:
        target = self.on_omni_logout
        if target is None:
            return Resolution(
                None,
                None,
                f"the agent logged out of Omni-Channel; rule {self.name!r} leaves CXone as is (on_omni_logout: nothing)",
                Outcome.LOGGED_OUT,
            )
        if target.code is not None and target.code not in team_codes:
            return self._default_unavailable(
                describe(None),
                f"the agent's team has no unavailable code {target.code!r}",
                f"add {target.code!r} to the team, or turn on skip validation to use the default Unavailable",
            )
        row = f"logout: Omni-Channel Offline -> {display(target)}"
        if target.is_logout:
            reason = f"the agent logged out of Omni-Channel; rule {self.name!r} ends their CXone session"
        else:
            reason = f"the agent logged out of Omni-Channel; rule {self.name!r} sets CXone to {display(target)}"
        return Resolution(target, row, reason)

    def agreement(self, cxone: CxoneState, status: str | None, team_codes: frozenset[str]) -> tuple[bool, str]:
        """Whether CXone showing `cxone` and Salesforce showing `status` (None: logged out of Omni) agree
        with this rule, read both ways; with what the rule says when they do not.

        Either side may be the one a person changed last, so either mapping agreeing is enough; a
        state neither side maps agrees with anything.
        """
        published = self.publish(cxone)
        if published.target is not None and salesforce_shows(published.target, status):
            return True, published.reason
        subscribed = self.subscribe(status, team_codes, previous=None)
        if subscribed.target is not None:
            if subscribed.target.matches(cxone):
                return True, subscribed.reason
            if cxone.is_logged_out and published.target is None:
                return True, "the agent is logged out of CXone: no state can be set there"
            return False, f"Salesforce {describe(status)} → CXone {display(subscribed.target)}"
        if subscribed.row is not None:  # Previous State: whatever CXone state the agent returned to
            return cxone.is_settable, subscribed.reason
        if published.target is None:
            return True, "neither side's state is mapped"
        return False, f"CXone {display(cxone)} → Salesforce {describe(published.target)}"

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
