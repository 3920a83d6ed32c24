"""CXone agent states, the targets the Agent API can set, and their publisher keys.

A *publisher key* is how a presence rule names a CXone state on its publisher side:
``"Available"``, ``"Unavailable"`` (the system default), ``"Unavailable:<code>"``, ``"ACW"``,
``"Refused"``, ``"InboundContact"``, ... ``"LoggedOut"``. It is computed in one place
(`CxoneState.key`) and parsed in one place (`parse_publisher_key`).

Example:
    >>> state = CxoneState.from_api({"agentStateName": "Unavailable", "outStateDescription": "Break",
    ...                              "isACW": False})
    >>> state.key, state.is_settable
    ('Unavailable:Break', True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from presence_sync.engine.errors import StateError


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
    """CXone agent state names, declared in the order of their API ids 0..8 (apis.md C2)."""

    LOGGED_OUT = "LoggedOut"
    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"
    INBOUND_CONTACT = "InboundContact"
    OUTBOUND_CONTACT = "OutboundContact"
    INBOUND_CONSULT = "InboundConsult"
    OUTBOUND_CONSULT = "OutboundConsult"
    DIALER = "Dialer"
    LOGGED_IN = "LoggedIn"


STATE_NAME_BY_ID: Mapping[int, CxoneStateName] = dict(enumerate(CxoneStateName))

ACW_KEY = "ACW"
REFUSED_KEY = "Refused"
PREVIOUS_STATE_KEY = "Previous State"
SYSTEM_MANAGED_KEYS = frozenset({ACW_KEY, REFUSED_KEY})
# CXone reports the system-default Unavailable with an empty description or this word [apis.md C2].
_DEFAULT_UNAVAILABLE_DESCRIPTIONS = frozenset({"", "unavailable"})
_LIVE_CONTACT_STATES = frozenset(
    {
        CxoneStateName.INBOUND_CONTACT,
        CxoneStateName.OUTBOUND_CONTACT,
        CxoneStateName.INBOUND_CONSULT,
        CxoneStateName.OUTBOUND_CONSULT,
        CxoneStateName.DIALER,
    }
)
_SETTABLE_STATES = frozenset({CxoneStateName.AVAILABLE, CxoneStateName.UNAVAILABLE})


def _state_name(value: object) -> CxoneStateName:
    if isinstance(value, CxoneStateName):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value in STATE_NAME_BY_ID:
        return STATE_NAME_BY_ID[value]
    try:
        return CxoneStateName(str(value).strip())
    except ValueError:
        known = ", ".join(CxoneStateName)
        raise StateError(f"unknown CXone agent state {value!r}; expected one of: {known}") from None


def _code(description: str | None) -> str | None:
    """The unavailable code name, or None for the system-default Unavailable."""
    text = (description or "").strip()
    return None if text.lower() in _DEFAULT_UNAVAILABLE_DESCRIPTIONS else text


def _unavailable_key(code: str | None) -> str:
    return "Unavailable" if code is None else f"Unavailable:{code}"


@dataclass(frozen=True, slots=True)
class CxoneState:
    """What CXone shows for an agent: state name, unavailable code (or None), ACW flag.

    Normalised on construction: only `Unavailable` carries a code or the ACW flag, and the
    system-default description ("" or "Unavailable") becomes ``code=None``.
    """

    name: CxoneStateName
    code: str | None = None
    is_acw: bool = False

    def __post_init__(self) -> None:
        name = _state_name(self.name)
        unavailable = name is CxoneStateName.UNAVAILABLE
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "code", _code(self.code) if unavailable else None)
        object.__setattr__(self, "is_acw", bool(self.is_acw) and unavailable)

    @classmethod
    def from_api(cls, agent_state: Mapping[str, Any]) -> CxoneState:
        """Build from one `agentStates[]` item of `GET /agents/states` (apis.md C2).

        >>> CxoneState.from_api({"agentStateId": 2, "outStateDescription": "ACW", "isACW": True}).key
        'ACW'
        """
        raw_name = agent_state.get("agentStateName")
        if raw_name in (None, ""):
            raw_name = agent_state.get("agentStateId")
        if raw_name in (None, ""):
            raise StateError(
                "CXone agent state has neither 'agentStateName' nor 'agentStateId'; "
                "pass an item of the 'agentStates' list from GET /agents/states"
            )
        return cls(
            name=_state_name(raw_name),
            code=agent_state.get("outStateDescription"),
            is_acw=bool(agent_state.get("isACW", False)),
        )

    @property
    def is_refused(self) -> bool:
        return self.code is not None and self.code.lower() == REFUSED_KEY.lower()

    @property
    def key(self) -> str:
        """The publisher key of this state (see the module docstring)."""
        if self.name is not CxoneStateName.UNAVAILABLE:
            return self.name.value
        if self.is_acw:
            return ACW_KEY
        if self.is_refused:
            return REFUSED_KEY
        return _unavailable_key(self.code)

    @property
    def is_contact(self) -> bool:
        """On a call, consult or dialer contact, or in after-call work: CXone owns the agent."""
        return self.name in _LIVE_CONTACT_STATES or self.is_acw

    @property
    def is_logged_out(self) -> bool:
        return self.name is CxoneStateName.LOGGED_OUT

    @property
    def is_settable(self) -> bool:
        """Whether the Agent API could set this state (Available, Unavailable[+code], not ACW/Refused)."""
        return self.name in _SETTABLE_STATES and not self.is_acw and not self.is_refused

    def as_target(self) -> CxoneTarget | None:
        """The target that would put an agent back in this state, or None if not settable."""
        if not self.is_settable:
            return None
        return CxoneTarget(self.name, self.code)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.name.value, "code": self.code, "acw": self.is_acw}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CxoneState:
        return cls(_state_name(data["state"]), data.get("code"), bool(data.get("acw", False)))


@dataclass(frozen=True, slots=True)
class CxoneTarget:
    """A state the Agent API can set: Available, or Unavailable with an optional code (apis.md C3).

    >>> CxoneTarget.unavailable("Break").to_api()
    {'state': 'Unavailable', 'reason': 'Break'}
    """

    state: CxoneStateName
    code: str | None = None

    def __post_init__(self) -> None:
        state = _state_name(self.state)
        if state not in _SETTABLE_STATES:
            raise StateError(
                f"CXone state {state.value!r} can't be set through the Agent API; "
                "use Available or Unavailable (with an optional unavailable code)"
            )
        code = _code(self.code)
        if state is CxoneStateName.AVAILABLE and code is not None:
            raise StateError(f"Available takes no unavailable code (got {code!r}); use Unavailable:{code}")
        if code is not None and code.upper() in {k.upper() for k in SYSTEM_MANAGED_KEYS}:
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

    @property
    def key(self) -> str:
        return self.state.value if self.state is CxoneStateName.AVAILABLE else _unavailable_key(self.code)

    def matches(self, shown: CxoneState) -> bool:
        """Whether CXone showing `shown` means this target is in place."""
        return shown.is_settable and shown.name is self.state and shown.code == self.code

    def to_api(self) -> dict[str, str]:
        """The body of `POST /agent-sessions/{sessionId}/state`."""
        body = {"state": self.state.value}
        if self.code is not None:
            body["reason"] = self.code
        return body

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state.value, "code": self.code}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CxoneTarget:
        return cls(_state_name(data["state"]), data.get("code"))


@dataclass(frozen=True, slots=True)
class PreviousState:
    """Subscriber target "Previous State": return CXone to the state before the change that led here."""

    @property
    def key(self) -> str:
        return PREVIOUS_STATE_KEY


PREVIOUS_STATE = PreviousState()

SubscriberTarget: TypeAlias = CxoneTarget | PreviousState


def _split_unavailable(text: str) -> tuple[str, str | None] | None:
    head, sep, tail = text.partition(":")
    if head.strip().lower() != "unavailable":
        return None
    return "Unavailable", (tail.strip() if sep else None)


def parse_publisher_key(text: str) -> str:
    """Canonical publisher key from rule text: "Available", "Unavailable: Break", "ACW", "InboundContact", ...

    >>> parse_publisher_key("Unavailable: Break")
    'Unavailable:Break'
    """
    cleaned = str(text).strip()
    for special in SYSTEM_MANAGED_KEYS:
        if cleaned.lower() == special.lower():
            return special
    unavailable = _split_unavailable(cleaned)
    if unavailable is not None:
        return _unavailable_key(_code(unavailable[1]))
    try:
        return CxoneStateName(cleaned).value
    except ValueError:
        known = ", ".join([*CxoneStateName, "Unavailable: <code>", *sorted(SYSTEM_MANAGED_KEYS)])
        raise StateError(f"{text!r} is not a CXone state a publisher row can map; use one of: {known}") from None


def parse_subscriber_target(text: str) -> SubscriberTarget:
    """Subscriber target from rule text: "Available", "Unavailable", "Unavailable: Break", "Previous State".

    >>> parse_subscriber_target("Unavailable: Lunch")
    CxoneTarget(state=<CxoneStateName.UNAVAILABLE: 'Unavailable'>, code='Lunch')
    """
    cleaned = str(text).strip()
    if cleaned.lower() == PREVIOUS_STATE_KEY.lower():
        return PREVIOUS_STATE
    if cleaned.upper() in {k.upper() for k in SYSTEM_MANAGED_KEYS}:
        raise StateError(
            f"{cleaned!r} is system-managed and can't be a subscriber target; map it on the publisher side only"
        )
    unavailable = _split_unavailable(cleaned)
    if unavailable is not None:
        return CxoneTarget.unavailable(unavailable[1])
    if cleaned.lower() == "available":
        return CxoneTarget.available()
    raise StateError(
        f"{text!r} is not a subscriber target; use Available, Unavailable, 'Unavailable: <code>' or Previous State"
    )
