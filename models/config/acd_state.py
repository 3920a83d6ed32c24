"""ACD states as a presence rule writes them, parsed in one place: `AcdState.parse("Unavailable: Break")`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from presence_sync.models.errors import config_problem, did_you_mean

class AcdStateKind(StrEnum):
    """The CXone states a presence rule can name: the agent state names of apis.md C2, the two
    system-managed states, and the subscriber-only Previous State."""

    LOGGED_OUT = "LoggedOut"
    LOGGED_IN = "LoggedIn"
    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"
    INBOUND_CONTACT = "InboundContact"
    OUTBOUND_CONTACT = "OutboundContact"
    INBOUND_CONSULT = "InboundConsult"
    OUTBOUND_CONSULT = "OutboundConsult"
    DIALER = "Dialer"
    ACW = "ACW"
    REFUSED = "Refused"
    PREVIOUS_STATE = "Previous State"


CONTACT_STATE_KINDS = frozenset(
    {AcdStateKind.INBOUND_CONTACT, AcdStateKind.OUTBOUND_CONTACT, AcdStateKind.INBOUND_CONSULT,
     AcdStateKind.OUTBOUND_CONSULT, AcdStateKind.DIALER}
)
SYSTEM_MANAGED_KINDS = frozenset({AcdStateKind.ACW, AcdStateKind.REFUSED})
SUBSCRIBER_TARGET_KINDS = frozenset(
    {AcdStateKind.AVAILABLE, AcdStateKind.UNAVAILABLE, AcdStateKind.PREVIOUS_STATE},
)


def _kind_key(text: str) -> str:
    return re.sub(r"[\s_-]+", "", text).casefold()


_KIND_BY_KEY = {_kind_key(kind.value): kind for kind in AcdStateKind}
_ACD_SYNTAX = "Available, Unavailable, Unavailable: <code>, " + ", ".join(
    kind.value for kind in AcdStateKind if kind not in (AcdStateKind.AVAILABLE, AcdStateKind.UNAVAILABLE)
)
"""How the rule syntax is described in fixes."""


class AcdStateSyntaxError(ValueError):
    """Text that is not an ACD state, with the fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} -> {fix}")
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True, slots=True)
class AcdState:
    """A CXone agent state as a presence rule writes it: `Available`, `Unavailable`, `Unavailable: Break`,
    `InboundContact`, `OutboundContact`, `InboundConsult`, `OutboundConsult`, `Dialer`, `LoggedOut`,
    `LoggedIn`, `ACW`, `Refused`, or `Previous State` (subscriber side only). `Unavailable` alone is
    CXone's system-default Unavailable.

    Example:
        AcdState.parse("Unavailable: Break") == AcdState(AcdStateKind.UNAVAILABLE, "Break")
        str(AcdState.parse("unavailable:Break")) == "Unavailable: Break"
    """

    kind: AcdStateKind
    code: str | None = None

    def __post_init__(self) -> None:
        if self.code is not None and (self.kind is not AcdStateKind.UNAVAILABLE or not self.code.strip()):
            raise ValueError("only Unavailable takes an unavailable code, and it must not be empty")

    @classmethod
    def parse(cls, text: str) -> AcdState:
        """Parse the rule syntax (keywords are case- and space-insensitive; codes keep their case)."""
        head, colon, code = text.strip().partition(":")
        kind = _KIND_BY_KEY.get(_kind_key(head))
        if colon:
            return cls._unavailable_with_code(kind, head, code.strip())
        if kind is None:
            raise cls._unknown(head.strip())
        return cls(kind)

    @classmethod
    def _unavailable_with_code(cls, kind: AcdStateKind | None, head: str, code: str) -> AcdState:
        if kind is not AcdStateKind.UNAVAILABLE:
            raise AcdStateSyntaxError(
                f"'{head.strip()}' does not take a code after ':'",
                "only Unavailable does, e.g. 'Unavailable: Break'",
            )
        if not code:
            raise AcdStateSyntaxError(
                "'Unavailable:' has no code after the colon",
                "write e.g. 'Unavailable: Break', or just 'Unavailable' for CXone's default Unavailable",
            )
        system_kind = _KIND_BY_KEY.get(_kind_key(code))
        if system_kind in SYSTEM_MANAGED_KINDS:
            raise AcdStateSyntaxError(
                f"'{code}' is a system-managed state, not an unavailable code",
                f"write '{system_kind}'",
            )
        return cls(AcdStateKind.UNAVAILABLE, code)

    @staticmethod
    def _unknown(text: str) -> AcdStateSyntaxError:
        if _kind_key(text) == "open":
            return AcdStateSyntaxError(
                "'Open' is how Agent Embedded shows the Available state",
                "write 'Available'",
            )
        suggestion = did_you_mean(text, [kind.value for kind in AcdStateKind])
        code_hint = f"; an unavailable code is written 'Unavailable: {text}'" if text else ""
        return AcdStateSyntaxError(f"'{text}' is not an ACD state", f"{suggestion}use {_ACD_SYNTAX}{code_hint}")

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.code}" if self.code else self.kind.value

    @property
    def is_contact(self) -> bool:
        """A state CXone sets while the agent handles a contact (a live contact is the truth)."""
        return self.kind in CONTACT_STATE_KINDS

    @property
    def is_system_managed(self) -> bool:
        """ACW or Refused: publisher side only."""
        return self.kind in SYSTEM_MANAGED_KINDS

    @property
    def is_subscriber_target(self) -> bool:
        """Something a Salesforce status may set CXone to: Available, Unavailable[: code], Previous State."""
        return self.kind in SUBSCRIBER_TARGET_KINDS

    @classmethod
    def __get_pydantic_core_schema__(
        cls,
        source: type[Any],
        handler: GetCoreSchemaHandler,
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.to_string_ser_schema(),
            json_schema_input_schema=core_schema.str_schema(),
        )

    @classmethod
    def _validate(cls, value: Any) -> AcdState:
        if isinstance(value, AcdState):
            return value
        if not isinstance(value, str):
            raise config_problem("must be an ACD state as text", f"use {_ACD_SYNTAX}")
        try:
            return cls.parse(value)
        except AcdStateSyntaxError as error:
            raise config_problem(error.problem, error.fix) from None


