"""Sync policy: conflict resolution, flap detection, echo waiting and write retries.

Example:
    >>> policy = SyncPolicy(conflict=ConflictPolicy.CXONE_WINS, flap_threshold=4)
    >>> policy.retry_delay(attempt=3, command_id="ps-7-abc").total_seconds() <= policy.retry_cap_seconds
    True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from presence_sync.engine.errors import EngineError


class ConflictPolicy(StrEnum):
    """Who wins when both sides were changed by people since the last decide.

    Whatever the policy, a CXone contact state (on a contact, in ACW) always wins.
    """

    NEWEST_WINS = "newest_wins"
    CXONE_WINS = "cxone_wins"
    SALESFORCE_WINS = "salesforce_wins"


@dataclass(frozen=True, slots=True)
class SyncPolicy:
    conflict: ConflictPolicy = ConflictPolicy.NEWEST_WINS
    flap_threshold: int = 6  # more human changes than this inside the window is flapping
    flap_window_seconds: float = 60.0
    echo_timeout_seconds: float = 30.0  # how long a write waits for its echo before it is retried
    retry_base_seconds: float = 2.0
    retry_cap_seconds: float = 60.0
    max_attempts: int = 5
    remembered_sources: int = 16  # per agent, for de-duplicating replayed observations
    clock_skew_seconds: float = 1.0  # how far the systems' clocks may be off ours (echo matching)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "conflict", ConflictPolicy(self.conflict))
        except ValueError:
            choices = ", ".join(ConflictPolicy)
            raise EngineError(f"conflict policy {self.conflict!r} is unknown; use one of: {choices}") from None
        for name in ("flap_threshold", "max_attempts", "remembered_sources"):
            if getattr(self, name) < 1:
                raise EngineError(f"sync policy {name} must be at least 1 (got {getattr(self, name)})")
        if self.clock_skew_seconds < 0:
            raise EngineError(f"sync policy clock_skew_seconds must not be negative (got {self.clock_skew_seconds})")
        for name in ("flap_window_seconds", "echo_timeout_seconds", "retry_base_seconds", "retry_cap_seconds"):
            if getattr(self, name) <= 0:
                value = getattr(self, name)
                raise EngineError(f"sync policy {name} must be a positive number of seconds (got {value})")
        if self.retry_cap_seconds < self.retry_base_seconds:
            raise EngineError("sync policy retry_cap_seconds must not be smaller than retry_base_seconds")

    @property
    def echo_timeout(self) -> timedelta:
        return timedelta(seconds=self.echo_timeout_seconds)

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_seconds)

    @property
    def flap_window(self) -> timedelta:
        return timedelta(seconds=self.flap_window_seconds)

    def retry_delay(self, attempt: int, command_id: str) -> timedelta:
        """Exponential backoff with jitter after failed attempt number `attempt` (1-based).

        The jitter (50-100 % of the delay) is derived from the command id rather than a random
        source, so the engine stays deterministic while agents failing together spread their retries.
        """
        delay = min(self.retry_cap_seconds, self.retry_base_seconds * 2 ** max(0, attempt - 1))
        digest = hashlib.blake2b(f"{command_id}:{attempt}".encode(), digest_size=2).digest()
        fraction = 0.5 + int.from_bytes(digest, "big") / 0xFFFF / 2
        return timedelta(seconds=delay * fraction)
