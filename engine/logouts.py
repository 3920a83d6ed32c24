"""What a logout in one system does in the other: each rule's two logout settings and their syntax.

A rule says what a CXone logout does in Salesforce (`on_cxone_logout`) and what an Omni-Channel logout
does in CXone (`on_omni_logout`); by default the agent is logged out of Omni-Channel, and put in CXone's
system-default Unavailable. The settings are written as the config writes them:

- `on_cxone_logout`: ``Offline`` (log the agent out of Omni-Channel), a status DeveloperName (e.g.
  ``On_Break``), or ``nothing``;
- `on_omni_logout`: ``Unavailable`` (CXone's default), ``Unavailable: <code>``, ``LoggedOut`` (end the
  agent's CXone session), or ``nothing``.

Logging out of Omni-Channel is itself a Salesforce target, `OMNI_OFFLINE`, which the presence applier
applies as statusId "0" (apis.md S4).

    >>> parse_on_cxone_logout("offline") == OMNI_OFFLINE
    True
    >>> parse_on_omni_logout("Unavailable: Lunch")
    CxoneTarget(state=<CxoneStateName.UNAVAILABLE: 'Unavailable'>, code='Lunch')
    >>> parse_on_omni_logout("nothing") is None
    True
"""

from __future__ import annotations

from presence_sync.engine.errors import StateError
from presence_sync.engine.states import AcdState, AcdStateSyntaxError, CxoneStateName, CxoneTarget

OMNI_OFFLINE = "(Offline)"
"""The Salesforce target "logged out of Omni-Channel". Never a DeveloperName (those start with a letter)."""

OFFLINE_WORD = "Offline"
NOTHING = "nothing"
DEFAULT_ON_CXONE_LOGOUT: str | None = OMNI_OFFLINE
DEFAULT_ON_OMNI_LOGOUT: CxoneTarget | None = CxoneTarget.unavailable()
ON_CXONE_LOGOUT_SYNTAX = f"{OFFLINE_WORD} (log out of Omni-Channel), a status developer name, or {NOTHING}"
ON_OMNI_LOGOUT_SYNTAX = f"Unavailable, 'Unavailable: <code>', LoggedOut (end the CXone session), or {NOTHING}"


def salesforce_shows(target: str, shown: str | None) -> bool:
    """Whether Salesforce showing `shown` (None: logged out of Omni) means `target` is in place."""
    return shown is None if target == OMNI_OFFLINE else shown == target


def salesforce_value(target: str) -> str | None:
    """What Salesforce shows once `target` is in place (None: logged out of Omni)."""
    return None if target == OMNI_OFFLINE else target


def parse_on_cxone_logout(text: str) -> str | None:
    """`OMNI_OFFLINE`, a status DeveloperName, or None for "nothing"; `StateError` for an empty value."""
    word = str(text).strip()
    if not word:
        raise StateError(f"on_cxone_logout is empty; use {ON_CXONE_LOGOUT_SYNTAX}")
    if word.casefold() == NOTHING:
        return None
    if word.casefold() == OFFLINE_WORD.casefold():
        return OMNI_OFFLINE
    return word


def parse_on_omni_logout(text: str) -> CxoneTarget | None:
    """The CXone target an Omni-Channel logout sets, or None for "nothing".

    `AcdStateSyntaxError` (with `problem` and `fix`) for anything else, e.g. Available.
    """
    word = str(text).strip()
    if word.casefold() == NOTHING:
        return None
    state = AcdState.parse(word)
    if state.kind is CxoneStateName.LOGGED_OUT:
        return CxoneTarget.logged_out()
    if state.kind is not CxoneStateName.UNAVAILABLE:
        raise AcdStateSyntaxError(
            f"'{word}' can't follow a logout of Omni-Channel",
            f"use {ON_OMNI_LOGOUT_SYNTAX}",
        )
    return CxoneTarget.unavailable(state.code)


def on_cxone_logout_text(target: str | None) -> str:
    """The config's spelling of an `on_cxone_logout` value (the inverse of `parse_on_cxone_logout`)."""
    if target is None:
        return NOTHING
    return OFFLINE_WORD if target == OMNI_OFFLINE else target


def on_omni_logout_text(target: CxoneTarget | None) -> str:
    """The config's spelling of an `on_omni_logout` value (the inverse of `parse_on_omni_logout`)."""
    return NOTHING if target is None else str(target.rule_state)
