"""Typed errors of the sync engine.

Every message names what is wrong and how to fix it, and never carries a secret (the engine
never sees one).
"""

from __future__ import annotations


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
