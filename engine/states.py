"""The CXone state vocabulary and the presence rule's row syntax: every spelling of a CXone state, here.

A CXone state has three spellings, converted here and nowhere else:
- **rule text**, as the config and a stored rule write it: ``"Unavailable: Break"``, ``"ACW"``,
  ``"Previous State"`` (keywords ignore case, spaces, ``_`` and ``-``; codes keep their case);
- the **typed value** `AcdState`: ``AcdState.parse(text)``, and ``str(state)`` writes the text back;
- the **engine key**, ``"Unavailable:Break"``, by which publisher rows are looked up (``.key``).

What CXone shows is a `CxoneState` (the connectors build it from API records), what the Agent API can
set a `CxoneTarget`, and a subscriber row may say `PREVIOUS_STATE` instead. How any of them reads to
people (audit, reasons, CLI, reports) is `display()`.

    >>> state = AcdState.parse("unavailable:Break")
    >>> str(state), state.key
    ('Unavailable: Break', 'Unavailable:Break')
    >>> state.subscriber_target() == CxoneTarget.unavailable("Break")
    True
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias

from presence_sync.engine.errors import StateError, did_you_mean


class Side(StrEnum):
    """One of the two systems kept in sync."""

    CXONE = "cxone"
    SALESFORCE = "salesforce"

    @property
    def other(self) -> Side:
        return Side.SALESFORCE if self is Side.CXONE else Side.CXONE

    @property
    def label(self) -> str:
        return "CXone" if self is Side.CXONE else "Salesforce"


class CxoneStateName(StrEnum):
    """The names of CXone states: the nine agent state names of `GET /agents/states`, in the order of
    their API ids 0..8 (apis.md C2), then the two system-managed states, which CXone reports as an
    Unavailable with `isACW` (ACW) or with the code Refused."""

    LOGGED_OUT = "LoggedOut"
    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"
    INBOUND_CONTACT = "InboundContact"
    OUTBOUND_CONTACT = "OutboundContact"
    INBOUND_CONSULT = "InboundConsult"
    OUTBOUND_CONSULT = "OutboundConsult"
    DIALER = "Dialer"
    LOGGED_IN = "LoggedIn"
    ACW = "ACW"
    REFUSED = "Refused"


AGENT_STATE_NAMES: tuple[CxoneStateName, ...] = tuple(CxoneStateName)[:9]
STATE_NAME_BY_ID: Mapping[int, CxoneStateName] = dict(enumerate(AGENT_STATE_NAMES))
SYSTEM_MANAGED = frozenset({CxoneStateName.ACW, CxoneStateName.REFUSED})
CONTACT_STATES = frozenset(
    {
        CxoneStateName.INBOUND_CONTACT,
        CxoneStateName.OUTBOUND_CONTACT,
        CxoneStateName.INBOUND_CONSULT,
        CxoneStateName.OUTBOUND_CONSULT,
        CxoneStateName.DIALER,
    }
)
SETTABLE_STATES = frozenset({CxoneStateName.AVAILABLE, CxoneStateName.UNAVAILABLE})
# CXone reports the system-default Unavailable with an empty description or this word [apis.md C2].
_DEFAULT_UNAVAILABLE_DESCRIPTIONS = frozenset({"", "unavailable"})
_SYSTEM_MANAGED_FOLDED = frozenset(name.value.casefold() for name in SYSTEM_MANAGED)


@dataclass(frozen=True, slots=True)
class PreviousState:
    """Subscriber target "Previous State": return CXone to the state before the change that led here."""

    value: ClassVar[str] = "Previous State"

    @property
    def key(self) -> str:
        return self.value

    @property
    def rule_state(self) -> AcdState:
        return AcdState(self)


PREVIOUS_STATE = PreviousState()

AcdKind: TypeAlias = CxoneStateName | PreviousState
"""What a rule's ACD cell names: a CXone state name, or (subscriber side only) Previous State."""


def _code(description: str | None) -> str | None:
    """The unavailable code name, or None for the system-default Unavailable."""
    text = (description or "").strip()
    return None if text.lower() in _DEFAULT_UNAVAILABLE_DESCRIPTIONS else text


def _key(kind: AcdKind, code: str | None) -> str:
    """The engine key: the kind's name, `Unavailable:<code>` for an unavailable code."""
    return f"{kind.value}:{code}" if code else kind.value


def _rule_text(kind: AcdKind, code: str | None) -> str:
    """The rule text: the kind's name, `Unavailable: <code>` for an unavailable code."""
    return f"{kind.value}: {code}" if code else kind.value


# --- the rule-row syntax ------------------------------------------------------------------------------


def _word(text: str) -> str:
    return re.sub(r"[\s_-]+", "", text).casefold()


# The order in which fixes list the vocabulary.
_RULE_WORDS: tuple[AcdKind, ...] = (
    CxoneStateName.LOGGED_OUT,
    CxoneStateName.LOGGED_IN,
    CxoneStateName.AVAILABLE,
    CxoneStateName.UNAVAILABLE,
    CxoneStateName.INBOUND_CONTACT,
    CxoneStateName.OUTBOUND_CONTACT,
    CxoneStateName.INBOUND_CONSULT,
    CxoneStateName.OUTBOUND_CONSULT,
    CxoneStateName.DIALER,
    CxoneStateName.ACW,
    CxoneStateName.REFUSED,
    PREVIOUS_STATE,
)
_KIND_BY_WORD: Mapping[str, AcdKind] = {_word(kind.value): kind for kind in _RULE_WORDS}
ACD_SYNTAX = "Available, Unavailable, Unavailable: <code>, " + ", ".join(
    kind.value for kind in _RULE_WORDS if kind not in SETTABLE_STATES
)
"""How fixes describe the rule syntax."""


class AcdStateSyntaxError(StateError):
    """Rule text that is not an ACD state (or not one that a row may name), with the fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} -> {fix}")
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True, slots=True)
class AcdState:
    """A CXone state as a presence rule writes it: `Available`, `Unavailable` (CXone's system default),
    `Unavailable: Break`, `InboundContact`, `OutboundContact`, `InboundConsult`, `OutboundConsult`,
    `Dialer`, `LoggedOut`, `LoggedIn`, `ACW`, `Refused`, or `Previous State` (subscriber side only).

    Example:
        AcdState.parse("Unavailable: Break") == AcdState(CxoneStateName.UNAVAILABLE, "Break")
        str(AcdState.parse("unavailable:Break")) == "Unavailable: Break"
        AcdState.parse("acw").publisher_key() == "ACW"
    """

    kind: AcdKind
    code: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.kind, str) and not isinstance(self.kind, CxoneStateName):
            object.__setattr__(self, "kind", _KIND_BY_WORD.get(_word(self.kind), self.kind))
        if not isinstance(self.kind, CxoneStateName | PreviousState):
            raise StateError(f"{self.kind!r} is not an ACD state; use one of: {ACD_SYNTAX}")
        if self.code is not None and (self.kind is not CxoneStateName.UNAVAILABLE or not self.code.strip()):
            raise StateError("only Unavailable takes an unavailable code, and it must not be empty")

    @classmethod
    def parse(cls, text: str) -> AcdState:
        """Read rule text; `AcdStateSyntaxError` (with `problem` and `fix`) when it is not an ACD state."""
        head, colon, code = str(text).strip().partition(":")
        kind = _KIND_BY_WORD.get(_word(head))
        if colon:
            return cls._unavailable_with_code(kind, head, code.strip())
        if kind is None:
            raise cls._unknown(head.strip())
        return cls(kind)

    @classmethod
    def _unavailable_with_code(cls, kind: AcdKind | None, head: str, code: str) -> AcdState:
        if kind is not CxoneStateName.UNAVAILABLE:
            raise AcdStateSyntaxError(
                f"'{head.strip()}' does not take a code after ':'",
                "only Unavailable does, e.g. 'Unavailable: Break'",
            )
        if not code:
            raise AcdStateSyntaxError(
                "'Unavailable:' has no code after the colon",
                "write e.g. 'Unavailable: Break', or just 'Unavailable' for CXone's default Unavailable",
            )
        system_kind = _KIND_BY_WORD.get(_word(code))
        if system_kind in SYSTEM_MANAGED:
            raise AcdStateSyntaxError(
                f"'{code}' is a system-managed state, not an unavailable code",
                f"write '{system_kind}'",
            )
        return cls(CxoneStateName.UNAVAILABLE, code)

    @staticmethod
    def _unknown(text: str) -> AcdStateSyntaxError:
        if _word(text) == "open":
            return AcdStateSyntaxError(
                "'Open' is how Agent Embedded shows the Available state",
                "write 'Available'",
            )
        suggestion = did_you_mean(text, [kind.value for kind in _RULE_WORDS])
        code_hint = f"; an unavailable code is written 'Unavailable: {text}'" if text else ""
        return AcdStateSyntaxError(f"'{text}' is not an ACD state", f"{suggestion}use {ACD_SYNTAX}{code_hint}")

    def __str__(self) -> str:
        return _rule_text(self.kind, self.code)

    @property
    def key(self) -> str:
        """The engine key: "Unavailable:Break", "ACW", "Previous State"."""
        return _key(self.kind, self.code)

    @property
    def is_contact(self) -> bool:
        """A state CXone sets while the agent handles a contact (a live contact is the truth)."""
        return self.kind in CONTACT_STATES

    @property
    def is_system_managed(self) -> bool:
        """ACW or Refused: publisher side only."""
        return self.kind in SYSTEM_MANAGED

    @property
    def is_subscriber_target(self) -> bool:
        """Something a Salesforce status may set CXone to: Available, Unavailable[: code], Previous State."""
        return self.kind in SETTABLE_STATES or isinstance(self.kind, PreviousState)

    def publisher_key(self) -> str:
        """The engine key a publisher row maps; `AcdStateSyntaxError` for Previous State."""
        if isinstance(self.kind, PreviousState):
            raise AcdStateSyntaxError(
                "'Previous State' is only a subscriber target",
                "name a CXone state here, e.g. Available",
            )
        return self.key

    def subscriber_target(self) -> SubscriberTarget:
        """What a subscriber row sets CXone to; `AcdStateSyntaxError` for a state CXone sets itself."""
        if isinstance(self.kind, PreviousState):
            return PREVIOUS_STATE
        if self.is_system_managed:
            raise AcdStateSyntaxError(
                f"'{self}' is system-managed and can't be a subscriber target",
                "map it on the publisher side only and remove this row",
            )
        if not self.is_subscriber_target:
            raise AcdStateSyntaxError(
                f"'{self}' is not a subscriber target: a state CXone sets itself can't be a subscriber target",
                "use Available, Unavailable: <code> or Previous State",
            )
        return CxoneTarget(self.kind, self.code)


def parse_publisher_row(text: str) -> AcdState:
    """The ACD state of a publisher row's rule text; `StateError` when a publisher row can't map it.

    >>> parse_publisher_row("Unavailable: Break").key
    'Unavailable:Break'
    """
    try:
        state = AcdState.parse(text)
        state.publisher_key()
    except AcdStateSyntaxError as error:
        raise StateError(f"{text!r} is not a CXone state a publisher row can map: {error}") from None
    return state


def parse_subscriber_target(text: str) -> SubscriberTarget:
    """The target of a subscriber row's rule text: "Available", "Unavailable: Break", "Previous State".

    >>> parse_subscriber_target("Unavailable: Lunch")
    CxoneTarget(state=<CxoneStateName.UNAVAILABLE: 'Unavailable'>, code='Lunch')
    """
    return AcdState.parse(text).subscriber_target()


# --- what CXone shows, and what the Agent API can set ---------------------------------------------------


def _agent_state_name(value: object) -> CxoneStateName:
    """An agent state name of the API (a name or its id 0..8)."""
    if isinstance(value, int) and not isinstance(value, bool) and value in STATE_NAME_BY_ID:
        return STATE_NAME_BY_ID[value]
    try:
        name = CxoneStateName(str(value).strip())
    except ValueError:
        name = None
    if name is None or name in SYSTEM_MANAGED:
        known = ", ".join(AGENT_STATE_NAMES)
        raise StateError(f"unknown CXone agent state {value!r}; expected one of: {known}")
    return name


@dataclass(frozen=True, slots=True)
class CxoneState:
    """What CXone shows for an agent: agent state name, unavailable code (or None), ACW flag.

    Normalised on construction: only `Unavailable` carries a code or the ACW flag, and the
    system-default description ("" or "Unavailable") becomes ``code=None``. The connectors build it
    from an API record (`presence_sync.connectors.presence`).

    >>> CxoneState("Unavailable", "Break").key
    'Unavailable:Break'
    """

    name: CxoneStateName
    code: str | None = None
    is_acw: bool = False

    def __post_init__(self) -> None:
        name = _agent_state_name(self.name)
        unavailable = name is CxoneStateName.UNAVAILABLE
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "code", _code(self.code) if unavailable else None)
        object.__setattr__(self, "is_acw", bool(self.is_acw) and unavailable)

    @property
    def is_refused(self) -> bool:
        return self.code is not None and self.code.casefold() == CxoneStateName.REFUSED.casefold()

    def _kind(self) -> tuple[CxoneStateName, str | None]:
        """This state in the rule's vocabulary: ACW and Refused by their own names."""
        if self.is_acw:
            return CxoneStateName.ACW, None
        if self.is_refused:
            return CxoneStateName.REFUSED, None
        return self.name, self.code

    @property
    def key(self) -> str:
        """The engine key of this state (the publisher row that maps it has the same key)."""
        return _key(*self._kind())

    @property
    def rule_state(self) -> AcdState:
        """This state as a rule names it."""
        return AcdState(*self._kind())

    @property
    def is_contact(self) -> bool:
        """On a call, consult or dialer contact, or in after-call work: CXone owns the agent."""
        return self.name in CONTACT_STATES or self.is_acw

    @property
    def is_logged_out(self) -> bool:
        return self.name is CxoneStateName.LOGGED_OUT

    @property
    def is_settable(self) -> bool:
        """Whether the Agent API could set this state (Available, Unavailable[+code], not ACW/Refused)."""
        return self.name in SETTABLE_STATES and not self.is_acw and not self.is_refused

    def as_target(self) -> CxoneTarget | None:
        """The target that would put an agent back in this state, or None if not settable."""
        return _target_of(self)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.name.value, "code": self.code, "acw": self.is_acw}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CxoneState:
        return cls(_agent_state_name(data["state"]), data.get("code"), bool(data.get("acw", False)))


@dataclass(frozen=True, slots=True)
class CxoneTarget:
    """A state the Agent API can set: Available, or Unavailable with an optional code (apis.md C3); or
    LoggedOut, which ends the agent's session (a rule's answer to an Omni-Channel logout, never a row).

    >>> CxoneTarget.unavailable("Break").to_api()
    {'state': 'Unavailable', 'reason': 'Break'}
    >>> CxoneTarget.logged_out().matches(CxoneState("LoggedOut"))
    True
    """

    state: CxoneStateName
    code: str | None = None

    def __post_init__(self) -> None:
        state = _agent_state_name(self.state)
        if state is CxoneStateName.LOGGED_OUT and self.code is None:
            object.__setattr__(self, "state", state)
            return
        if state not in SETTABLE_STATES:
            raise StateError(
                f"CXone state {state.value!r} can't be set through the Agent API; "
                "use Available or Unavailable (with an optional unavailable code)"
            )
        code = _code(self.code)
        if state is CxoneStateName.AVAILABLE and code is not None:
            raise StateError(f"Available takes no unavailable code (got {code!r}); use Unavailable:{code}")
        if code is not None and code.casefold() in _SYSTEM_MANAGED_FOLDED:
            raise StateError(
                f"{code!r} is system-managed in CXone and can't be a target; "
                "map it on the publisher side only"
            )
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "code", code)

    @classmethod
    def available(cls) -> CxoneTarget:
        return cls(CxoneStateName.AVAILABLE)

    @classmethod
    def unavailable(cls, code: str | None = None) -> CxoneTarget:
        return cls(CxoneStateName.UNAVAILABLE, code)

    @classmethod
    def logged_out(cls) -> CxoneTarget:
        """End the agent's session (`POST /agents/{agentId}/logout`, apis.md C3)."""
        return cls(CxoneStateName.LOGGED_OUT)

    @property
    def is_logout(self) -> bool:
        return self.state is CxoneStateName.LOGGED_OUT

    @property
    def key(self) -> str:
        return _key(self.state, self.code)

    @property
    def rule_state(self) -> AcdState:
        """This target as a rule names it."""
        return AcdState(self.state, self.code)

    def matches(self, shown: CxoneState) -> bool:
        """Whether CXone showing `shown` means this target is in place."""
        if self.is_logout:
            return shown.is_logged_out
        return shown.is_settable and shown.name is self.state and shown.code == self.code

    def to_api(self) -> dict[str, str]:
        """The body of `POST /agent-sessions/{sessionId}/state`; a logout has none (it is its own call)."""
        if self.is_logout:
            raise StateError("a logout is not a state to set: end the session (POST /agents/{agentId}/logout)")
        body = {"state": self.state.value}
        if self.code is not None:
            body["reason"] = self.code
        return body

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state.value, "code": self.code}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CxoneTarget:
        return cls(_agent_state_name(data["state"]), data.get("code"))


SubscriberTarget: TypeAlias = CxoneTarget | PreviousState


@functools.lru_cache(maxsize=1024)
def _target_of(state: CxoneState) -> CxoneTarget | None:
    return CxoneTarget(state.name, state.code) if state.is_settable else None


@functools.lru_cache(maxsize=1024)  # few distinct states; every audit record and reason names some
def display(value: CxoneState | CxoneTarget | PreviousState) -> str:
    """How a CXone state reads to people: audit records, decision reasons, the CLI, reports.

    Written as the config writes it ("Unavailable: Lunch"), so what people read matches what they wrote;
    the engine key ("Unavailable:Lunch") stays internal.
    """
    return str(value.rule_state)
