"""Typed errors of the sync engine, and the "did you mean" hint that every message in the product uses.

Every message names what is wrong and how to fix it, and never carries a secret (the engine
never sees one).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EngineError(ValueError):
    """Base class: the engine was given something it cannot use."""


class StateError(EngineError):
    """A CXone state, target or publisher key that does not exist or cannot be used where given."""


class RuleError(EngineError):
    """A presence rule or rule book that contradicts the seed's rule semantics."""


class ObservationError(EngineError):
    """An observation the sync tick built wrongly (wrong value type, naive timestamp, ...)."""


class MemoryFormatError(EngineError):
    """Stored per-agent memory that cannot be read back (corrupt, or written by a newer version)."""


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option that `word` most likely misspells, compared case-insensitively, or None."""
    by_folded = {option.casefold(): option for option in options}
    match = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[match[0]] if match else None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`"did you mean 'x'? "` when a close option exists, else an empty string (prefix for a fix)."""
    match = closest(word, options)
    return f"did you mean '{match}'? " if match else ""
